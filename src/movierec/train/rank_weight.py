"""The ranking score's weights, chosen on validation data carved out of the training ratings."""

from __future__ import annotations

import numpy as np

from movierec.data.ratings import Ratings
from movierec.evaluate.protocol import evaluate_ranking
from movierec.models.factors import FactorModel

RANK_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 1000.0)
WATCH_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 1000.0)


NDCG_TOLERANCE = 0.02
"""Weights whose validation NDCG@10 is within this share of the best count as accurate; among them the one whose
lists follow people's genre mix best (lowest miscalibration) wins."""


def choose_rank_weight(
    model: FactorModel, train: Ratings, valid: Ratings, genres: np.ndarray | None = None, max_users: int = 2000
) -> FactorModel:
    """Pick the weights of the ranking score's popularity prior and "likely to watch" part on validation data
    (never the test set), for people and not only for a hold-out: among the weights whose NDCG@10 is within
    ``NDCG_TOLERANCE`` of the best, the one with the lowest genre miscalibration (Steck 2018: the genre mix of a
    list against that of the movies the person liked), given the movies x ``genres`` matrix; without it, the
    best NDCG@10."""
    users = np.unique(valid.users[valid.ratings >= 4.0])
    if users.size == 0:
        return model
    if users.size > max_users:
        users = np.random.default_rng(0).choice(users, max_users, replace=False)
    subset = valid.take(np.isin(valid.users, users))
    grid = [(w, 0.0) for w in RANK_WEIGHTS]
    if model.params.has_watch:
        grid += [(w, v) for w in (0.0, 0.25, 1.0) for v in WATCH_WEIGHTS]
    scored = []
    for weights in grid:
        result = evaluate_ranking(model.with_rank_weight(*weights).rank_scores, train, subset, k=10, genres=genres)
        scored.append((weights, result["ndcg@10"], result.get("miscalibration@10")))
    best_ndcg = max(ndcg for _, ndcg, _ in scored)
    chosen = next(weights for weights, ndcg, _ in scored if ndcg == best_ndcg)
    calibrated = [
        (miscalibration, weights)
        for weights, ndcg, miscalibration in scored
        if miscalibration is not None and ndcg >= (1 - NDCG_TOLERANCE) * best_ndcg
    ]
    if calibrated:  # min keeps the first of equals: grid order breaks ties
        chosen = min(calibrated, key=lambda pair: pair[0])[1]
    return model.with_rank_weight(*chosen)
