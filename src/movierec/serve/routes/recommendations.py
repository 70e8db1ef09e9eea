"""`POST /recommendations`: top-N for a new user from a handful of ratings (fold-in, no retraining)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from movierec.serve.forms import new_user_form
from movierec.serve.routes.common import check_ratings, current, filters, responses
from movierec.serve.schemas import RecommendationsOut, RecommendIn

router = APIRouter(tags=["recommendations"])


@router.post("/recommendations", response_model=RecommendationsOut, responses=responses(413, 422))
async def recommend_new_user(request: Request, body: RecommendIn) -> RecommendationsOut:
    """Fold the ratings into a user vector, then list the top ``n`` movies they did not rate, with why.

    Unknown movieIds are listed in ``ignored``; with no usable rating the list is the popular-and-well-rated
    fallback (``fallback: true``)."""
    loaded = current(request)
    pairs = check_ratings(loaded, body.ratings)
    chosen = filters(loaded, "body", body.genres, body.exclude_genres, body.years, body.min_ratings)
    return new_user_form(pairs, loaded.recommender.recommend_new_user(pairs, body.n, chosen))
