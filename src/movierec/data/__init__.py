"""MovieLens data: releases, parsers, the Ratings container, caching, splits and synthetic data."""

from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary

__all__ = ["Dataset", "RatingScale", "Ratings", "Vocabulary"]
