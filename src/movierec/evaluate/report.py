"""Score a fitted model on a test split beside the baselines, on the same split."""

from __future__ import annotations

from typing import Any

from movierec.data.ratings import Ratings, RatingScale
from movierec.errors import DataError
from movierec.evaluate.protocol import evaluate_ranking, evaluate_ratings, popularity_scores
from movierec.models.baselines import bias_params, global_mean_params
from movierec.models.factors import FactorModel

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


def _rating_order(model: FactorModel, train: Ratings, test: Ratings, k: int) -> dict[str, float]:
    """Ranking by predicted rating alone (the known pitfall), reported beside the ranking score."""
    result = evaluate_ranking(model.score_items, train, test, k=k, max_users=RANKED_USERS)
    return {f"ndcg@{k}": result[f"ndcg@{k}"], f"recall@{k}": result[f"recall@{k}"]}
