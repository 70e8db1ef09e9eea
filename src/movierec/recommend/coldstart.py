"""Lists for people the model knows nothing about: the popular-and-well-rated fallback, and onboarding picks.

* ``popular_scores``: a damped mean, ``(n·mean + m·global) / (n + m)``. A movie needs many ratings to move far
  from the global mean, so the top holds movies that are both well rated and widely seen.
* ``choose_onboarding``: which movies to ask a new user to rate. Each should be widely known (many ratings),
  informative (people disagree about it: a high spread of ratings) and unlike the ones already chosen (far
  apart in factor space, covering new genres), so that every answer teaches the fold-in something new.
"""

from __future__ import annotations

import numpy as np

from movierec.recommend.catalog import Catalog

ONBOARDING_POOL_PER_PICK = 20
SIMILARITY_PENALTY = 0.5
GENRE_BONUS = 0.35


def prior_strength(counts: np.ndarray) -> float:
    """How many ratings' worth of the global mean every movie starts with: the 90th percentile of the rating
    counts of rated movies (at least 5), so only movies seen more than most rank on their own average."""
    rated = counts[counts > 0]
    return max(5.0, float(np.percentile(rated, 90))) if rated.size else 5.0


def popular_scores(counts: np.ndarray, means: np.ndarray, global_mean: float, strength: float) -> np.ndarray:
    """Damped mean rating in stars per movie (the global mean for movies without ratings)."""
    sums = np.where(counts > 0, np.nan_to_num(means) * counts, 0.0)
    return np.asarray((sums + strength * global_mean) / (counts + strength), dtype=np.float64)


def choose_onboarding(catalog: Catalog, item_factors: np.ndarray, n: int, candidates: np.ndarray) -> list[int]:
    """``n`` item indices to ask about, chosen greedily from the most-rated ``candidates``.

    Each pick maximises ``informativeness + GENRE_BONUS · (share of its genres not yet covered)
    - SIMILARITY_PENALTY · (highest cosine similarity to a pick so far)``, where informativeness is
    ``log(1 + count) / log(1 + max count)`` times the rating spread over the pool's largest spread.
    """
    pool = np.flatnonzero(candidates)
    if pool.size == 0 or n < 1:
        return []
    pool = pool[np.argsort(-catalog.counts[pool], kind="stable")[: max(n * ONBOARDING_POOL_PER_PICK, 50)]]
    counts = catalog.counts[pool].astype(np.float64)
    spread = catalog.spreads[pool]
    informative = np.log1p(counts) / np.log1p(counts.max()) * spread / max(float(spread.max()), 1e-9)
    genres = catalog.genre_matrix[pool]
    n_genres = np.maximum(genres.sum(axis=1), 1)
    factors = item_factors[pool].astype(np.float64)
    norms = np.linalg.norm(factors, axis=1, keepdims=True) if factors.shape[1] else np.ones((pool.size, 1))
    unit = np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
    covered = np.zeros(genres.shape[1], dtype=bool)
    closest = np.full(pool.size, 0.0)
    free = np.ones(pool.size, dtype=bool)
    picks: list[int] = []
    for _ in range(min(n, pool.size)):
        new_genres = (genres & ~covered).sum(axis=1) / n_genres
        value = informative + GENRE_BONUS * new_genres - SIMILARITY_PENALTY * closest
        value[~free] = -np.inf
        best = int(np.argmax(value))
        picks.append(int(pool[best]))
        free[best] = False
        covered |= genres[best]
        if unit.shape[1]:
            closest = np.maximum(closest, unit @ unit[best])
    return picks
