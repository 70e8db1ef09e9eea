"""`GET /onboarding`: movies to ask a new user to rate first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from movierec.serve.forms import onboarding_form
from movierec.serve.routes.common import current, responses
from movierec.serve.schemas import MAX_N, OnboardingListOut

router = APIRouter(tags=["recommendations"])


@router.get("/onboarding", response_model=OnboardingListOut, responses=responses(422))
async def onboarding(
    request: Request,
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"How many movies (1 to {MAX_N}).")] = 15,
) -> OnboardingListOut:
    """Widely seen, divisive and mutually different movies: each answer teaches the fold-in something new."""
    return onboarding_form(current(request).recommender.onboarding(n))
