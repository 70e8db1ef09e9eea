"""The JSON form of what the ``Recommender`` answers, shared by the HTTP routes and the CLI's ``--json``.

The API's response models (``schemas``) are the schema; these functions are the one mapping from the
Recommender's result dataclasses onto them, so the CLI and the API give the same JSON for the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields

from movierec.recommend import NewUserResult, OnboardingMovie, Recommendation, SimilarMovie
from movierec.recommend.catalog import MovieInfo
from movierec.serve.schemas import (
    MovieOut,
    OnboardingListOut,
    OnboardingOut,
    RecommendationOut,
    RecommendationsOut,
    SimilarListOut,
    SimilarOut,
    UserRecommendationsOut,
)


def movie_form(info: MovieInfo) -> MovieOut:
    return MovieOut.model_validate(info, from_attributes=True)


def recommendation_form(rec: Recommendation) -> RecommendationOut:
    """One recommendation, its explanation flattened to ``kind``, ``explanation`` (the text), ``summary`` and
    ``because``."""
    why = rec.explanation
    values = {field.name: getattr(rec, field.name) for field in fields(rec)}
    values.update(kind=why.kind, explanation=why.text, summary=why.summary, because=why.because)
    return RecommendationOut.model_validate(values, from_attributes=True)


def known_user_form(user_id: int, recs: Iterable[Recommendation]) -> UserRecommendationsOut:
    """A trained user's list (``GET /users/{userId}/recommendations``, `movierec recommend --user`)."""
    return UserRecommendationsOut(userId=user_id, recommendations=[recommendation_form(r) for r in recs])


def new_user_form(ratings: Sequence[tuple[int, float]], result: NewUserResult) -> RecommendationsOut:
    """A new user's list from their (movieId, stars) ``ratings`` (``POST /recommendations``, `movierec recommend
    --ratings`). ``fallback``: no given movie could be used, so the list is the popular-and-well-rated one."""
    distinct = {movie for movie, _ in ratings}
    return RecommendationsOut(
        recommendations=[recommendation_form(r) for r in result.recommendations],
        ignored=result.ignored,
        fallback=len(result.ignored) == len(distinct),
    )


def similar_form(movie: MovieInfo, found: Iterable[SimilarMovie]) -> SimilarListOut:
    """The movies like ``movie`` (``GET /movies/{movieId}/similar``, `movierec similar`)."""
    similar = [SimilarOut.model_validate(s, from_attributes=True) for s in found]
    return SimilarListOut(movie=movie_form(movie), similar=similar)


def onboarding_form(picks: Iterable[OnboardingMovie]) -> OnboardingListOut:
    """Movies to ask a new user about (``GET /onboarding``, ``POST /onboarding/next``, `movierec onboard`)."""
    return OnboardingListOut(movies=[OnboardingOut.model_validate(p, from_attributes=True) for p in picks])
