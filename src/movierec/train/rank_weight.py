"""The ranking score's weights, chosen on validation data carved out of the training ratings."""

from __future__ import annotations

import numpy as np

from movierec.data.ratings import Ratings
from movierec.evaluate.protocol import evaluate_ranking
from movierec.models.factors import FactorModel

RANK_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 1000.0)
WATCH_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 1000.0)


def choose_rank_weight(model: FactorModel, train: Ratings, valid: Ratings, max_users: int = 2000) -> FactorModel:
    """Pick the weights of the ranking score's popularity prior and "likely to watch" part by NDCG@10 on
    validation data (never the test set)."""
    users = np.unique(valid.users[valid.ratings >= 4.0])
    if users.size == 0:
        return model
    if users.size > max_users:
        users = np.random.default_rng(0).choice(users, max_users, replace=False)
    subset = valid.take(np.isin(valid.users, users))
    grid = [(w, 0.0) for w in RANK_WEIGHTS]
    if model.params.has_watch:
        grid += [(w, v) for w in (0.0, 0.25, 1.0) for v in WATCH_WEIGHTS]
    best, best_ndcg = (0.0, 0.0), -1.0
    for weight, watch in grid:
        candidate = model.with_rank_weight(weight, watch)
        ndcg = evaluate_ranking(candidate.rank_scores, train, subset, k=10)["ndcg@10"]
        if ndcg > best_ndcg + 1e-9:
            best, best_ndcg = (weight, watch), ndcg
    return model.with_rank_weight(*best)
