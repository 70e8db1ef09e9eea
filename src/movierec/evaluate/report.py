"""Score a fitted model on a test split beside the baselines, on the same split."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.ratings import Ratings, RatingScale
from movierec.errors import DataError
from movierec.evaluate.protocol import evaluate_ranking, evaluate_ratings, popularity_scores
from movierec.models.baselines import bias_params, global_mean_params
from movierec.models.factors import FactorModel

RANK_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 1000.0)
WATCH_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 1000.0)
RANKED_USERS = 10_000
"""Ranking metrics are computed on at most this many test users (a seeded sample, the same for every model)."""


def evaluate_model(model: FactorModel, train: Ratings, test: Ratings, k: int = 10) -> dict[str, Any]:
    """Rating metrics (from ``predict``) and ranking metrics (from ``rank_scores``) of one model."""
    metrics: dict[str, Any] = {"model": model.name, **evaluate_ratings(model.predict, train, test)}
    metrics["n_train"] = len(train)
    try:
        metrics.update(evaluate_ranking(model.rank_scores, train, test, k=k, max_users=RANKED_USERS))
        metrics.update({f"rating_order_{key}": value for key, value in _rating_order(model, train, test, k).items()})
    except DataError:
        pass  # no test user has a relevant movie: the ranking metrics are left out rather than invented
    return metrics


def compare_with_baselines(
    model: FactorModel, train: Ratings, test: Ratings, scale: RatingScale, k: int = 10
) -> dict[str, Any]:
    """The model's metrics plus ``baselines``: global mean, biases and popularity on the same split."""
    metrics = evaluate_model(model, train, test, k)
    rows = {
        "global-mean": evaluate_model(FactorModel(global_mean_params(train, scale), "global-mean"), train, test, k),
        "biases": evaluate_model(FactorModel(bias_params(train, scale), "biases"), train, test, k),
    }
    try:
        rows["popularity"] = {
            "model": "popularity",
            **evaluate_ranking(popularity_scores(train), train, test, k=k, max_users=RANKED_USERS),
        }
    except DataError:
        rows["popularity"] = {"model": "popularity"}
    metrics["baselines"] = rows
    return metrics


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


def _rating_order(model: FactorModel, train: Ratings, test: Ratings, k: int) -> dict[str, float]:
    """Ranking by predicted rating alone (the known pitfall), reported beside the ranking score."""
    result = evaluate_ranking(model.score_items, train, test, k=k, max_users=RANKED_USERS)
    return {f"ndcg@{k}": result[f"ndcg@{k}"], f"recall@{k}": result[f"recall@{k}"]}
