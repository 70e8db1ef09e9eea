"""Recommendations from a trained run: top-N for known and new users, similar movies, onboarding, explanations."""

from movierec.recommend.batch import TopN, batch_top_n
from movierec.recommend.filters import DEFAULT_MIN_RATINGS, NO_FILTERS, Filters, parse_years
from movierec.recommend.recommender import (
    NewUserResult,
    OnboardingMovie,
    Prediction,
    Recommendation,
    Recommender,
    SimilarMovie,
)

__all__ = [
    "DEFAULT_MIN_RATINGS",
    "NO_FILTERS",
    "Filters",
    "NewUserResult",
    "OnboardingMovie",
    "Prediction",
    "Recommendation",
    "Recommender",
    "SimilarMovie",
    "TopN",
    "batch_top_n",
    "parse_years",
]
