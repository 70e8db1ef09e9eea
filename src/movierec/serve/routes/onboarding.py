"""`GET /onboarding`: movies to ask a new user to rate first; `POST /onboarding/next`: the next ones to ask, chosen
from the answers so far; `POST /onboarding/recommendations`: the list the answers lead to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from movierec.serve.forms import new_user_form, onboarding_form
from movierec.serve.routes.common import current, filters, responses
from movierec.serve.schemas import MAX_N, InterviewIn, InterviewListIn, OnboardingListOut, RecommendationsOut

router = APIRouter(tags=["recommendations"])


@router.get("/onboarding", response_model=OnboardingListOut, responses=responses(422))
async def onboarding(
    request: Request,
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"How many movies (1 to {MAX_N}).")] = 15,
) -> OnboardingListOut:
    """Widely seen, divisive and mutually different movies: each answer teaches the fold-in something new."""
    return onboarding_form(current(request).recommender.onboarding(n))


@router.post("/onboarding/next", response_model=OnboardingListOut, responses=responses(413, 422))
async def next_questions(request: Request, body: InterviewIn) -> OnboardingListOut:
    """The ``n`` movies best asked about next, given the answers so far (``rating: null``: "I haven't seen it"):
    those whose answers should tell the most about this person, weighted by the chance they have seen them.
    Never a movie already answered.

    A movieId the model does not know, a rating outside the model's scale or more answers than the limit is a
    422 that says so."""
    answers = [(answer.movieId, answer.rating) for answer in body.answers]
    return onboarding_form(current(request).recommender.next_questions(answers, body.n))


@router.post("/onboarding/recommendations", response_model=RecommendationsOut, responses=responses(413, 422))
async def recommend_after_interview(request: Request, body: InterviewListIn) -> RecommendationsOut:
    """The top ``n`` movies the answers lead to, with why: the stars folded in as by ``POST /recommendations``,
    and each "haven't seen it" lowering the "likely to watch" score of the movies watched alike. The filters
    are those of ``POST /recommendations``; with no rated answer the list is the popular-and-well-rated fallback.

    The answers are checked as by ``POST /onboarding/next``: an unknown movieId, a rating outside the model's
    scale or more answers than the limit is a 422 that says so."""
    loaded = current(request)
    chosen = filters(loaded, "body", body.genres, body.exclude_genres, body.years, body.min_ratings)
    answers = [(answer.movieId, answer.rating) for answer in body.answers]
    result = loaded.recommender.recommend_after_interview(answers, body.n, chosen)
    latest = dict(answers)  # a later answer about a movie wins, as in the fold-in
    return new_user_form([(movie, stars) for movie, stars in latest.items() if stars is not None], result)
