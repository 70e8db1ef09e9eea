"""`GET /onboarding`: movies to ask a new user to rate first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from movierec.serve.routes.common import current, responses
from movierec.serve.schemas import MAX_N, OnboardingListOut

router = APIRouter(tags=["recommendations"])


@router.get("/onboarding", response_model=OnboardingListOut, responses=responses(422))
async def onboarding(
    request: Request,
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"How many movies (1 to {MAX_N}).")] = 15,
) -> dict[str, Any]:
    """Widely seen, divisive and mutually different movies: each answer teaches the fold-in something new."""
    picks = current(request).recommender.onboarding(n)
    return {"movies": [{**p.to_dict()} for p in picks]}
