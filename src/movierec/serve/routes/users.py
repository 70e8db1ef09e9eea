"""`GET /users/{userId}/recommendations`: top-N for a user the model was trained on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from movierec.serve.forms import known_user_form
from movierec.serve.routes.common import current, filters, responses, user_index
from movierec.serve.schemas import (
    MAX_GENRE_CHARS,
    MAX_GENRES,
    MAX_ID,
    MAX_MIN_RATINGS,
    MAX_N,
    UserRecommendationsOut,
)

router = APIRouter(tags=["recommendations"])
GenreList = Annotated[
    list[Annotated[str, Query(min_length=1, max_length=MAX_GENRE_CHARS)]],
    Query(max_length=MAX_GENRES),
]


@router.get("/users/{userId}/recommendations", response_model=UserRecommendationsOut, responses=responses(404, 422))
async def user_recommendations(
    request: Request,
    userId: Annotated[int, Path(ge=1, le=MAX_ID, description="A userId from the training data.")],
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"How many movies (1 to {MAX_N}).")] = 10,
    genre: GenreList = [],  # noqa: B006
    exclude_genre: GenreList = [],  # noqa: B006
    years: Annotated[str | None, Query(max_length=20, description="1990-2000, 1990-, -2000 or 1995.")] = None,
    min_ratings: Annotated[int | None, Query(ge=0, le=MAX_MIN_RATINGS)] = None,
) -> UserRecommendationsOut:
    """The user's top-``n`` unseen movies with explanations, optionally restricted by genre and years."""
    loaded = current(request)
    user_index(loaded, userId)
    chosen = filters(loaded, "query", genre, exclude_genre, years, min_ratings, names=("genre", "exclude_genre"))
    return known_user_form(userId, loaded.recommender.recommend_user(userId, n, chosen))
