"""`GET /onboarding`: movies to ask a new user to rate first; `POST /onboarding/next`: the next ones to ask, chosen
from the answers so far."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from movierec.serve.forms import onboarding_form
from movierec.serve.routes.common import current, responses
from movierec.serve.schemas import MAX_N, InterviewIn, OnboardingListOut

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
