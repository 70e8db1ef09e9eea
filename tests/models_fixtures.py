"""Tiny datasets with known answers, shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, RatingScale
from movierec.data.synthetic import LowRankData, generate_low_rank


def low_rank_dataset(seed: int = 0, noise: float = 0.2) -> tuple[Dataset, LowRankData]:
    """200 users x 100 movies, 8,000 ratings from ``mean + biases + rank-3 interaction + noise``."""
    truth = generate_low_rank(200, 100, 8_000, rank=3, noise_std=noise, seed=seed, interaction_std=0.8)
    ratings = truth.ratings
    low, high = float(ratings.ratings.min()), float(ratings.ratings.max())
    movies = align_movies(None, ratings.item_vocab)
    dataset = Dataset("low-rank", ratings, movies, None, RatingScale(low, high, 0.5))
    return dataset, truth


def as_frame(dataset: Dataset) -> pd.DataFrame:
    return dataset.ratings.to_frame()


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))
