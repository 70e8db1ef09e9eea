"""Score a fitted model on a test split beside the baselines and EASE, on the same split.

Every row carries the ranking metrics of ``evaluate_ranking`` (``ndcg@10`` ..., ``coverage@10``,
``personalization@10``, ``pop_recall@10`` and, given the movies' genres, ``miscalibration@10``); the rows with
star ratings add ``rmse`` and ``mae``. ``ease`` ranks only; on a catalog too large for it, its row holds a
``note`` saying why it was left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from movierec.data.ratings import Ratings, RatingScale
from movierec.errors import DataError
from movierec.evaluate.item_order import model_item_orders
from movierec.evaluate.protocol import (
    Ranker,
    RankingSettings,
    ScoreFn,
    evaluate_ranked,
    evaluate_ranking,
    evaluate_ratings,
    popularity_scores,
    rank_candidates,
    rank_candidates_many,
)
from movierec.models import ease
from movierec.models.baselines import bias_params, global_mean_params
from movierec.models.factors import FactorModel

RANKED_USERS = 10_000
"""Ranking metrics are computed on at most this many test users (a seeded sample, the same for every model)."""


def evaluate_model(
    model: FactorModel, train: Ratings, test: Ratings, k: int = 10, genres: np.ndarray | None = None
) -> dict[str, Any]:
    """Rating metrics (from ``predict``) and ranking metrics (from ``rank_scores``) of one model.

    ``genres`` is the movies x genres matrix (``evaluate.genres.genre_matrix``) that ``miscalibration@k`` needs.
    """
    metrics: dict[str, Any] = {"model": model.name, **evaluate_ratings(model.predict, train, test)}
    metrics["n_train"] = len(train)
    try:
        settings = RankingSettings(k=k, max_users=RANKED_USERS, genres=genres)
        ranked, by_rating = evaluate_ranked(_both_orders(model, train, settings.chunk_size), train, test, settings)
        metrics.update(ranked)
        metrics.update({f"rating_order_{key}": by_rating[key] for key in (f"ndcg@{k}", f"recall@{k}")})
    except DataError:
        pass  # no test user has a relevant movie: the ranking metrics are left out rather than invented
    return metrics


def ranking_row(
    name: str, score: ScoreFn, train: Ratings, test: Ratings, k: int = 10, genres: np.ndarray | None = None
) -> dict[str, Any]:
    """The ranking metrics of a scorer that ranks only (no star ratings), as one row named ``name``."""
    try:
        return {"model": name, **evaluate_ranking(score, train, test, k=k, max_users=RANKED_USERS, genres=genres)}
    except DataError:
        return {"model": name}  # no test user has a relevant movie


def ease_row(train: Ratings, test: Ratings, k: int = 10, genres: np.ndarray | None = None) -> dict[str, Any]:
    """EASE (lambda = ``ease.DEFAULT_LAMBDA``) ranked on the split, or a row with a ``note`` when the catalog has
    more than ``ease.MAX_ITEMS`` movies."""
    if train.n_items > ease.MAX_ITEMS:
        return {
            "model": "ease",
            "note": f"EASE left out: it needs a movies x movies inverse, and the catalog has {train.n_items:,} "
            f"movies (more than {ease.MAX_ITEMS:,}).",
        }
    return ranking_row("ease", ease.fit_ease(train).scores, train, test, k, genres)


def compare_with_baselines(
    model: FactorModel,
    train: Ratings,
    test: Ratings,
    scale: RatingScale,
    k: int = 10,
    genres: np.ndarray | None = None,
) -> dict[str, Any]:
    """The model's metrics plus ``baselines``: global mean, biases, popularity and EASE on the same split.

    ``genres`` (the movies x genres matrix of ``evaluate.genres.genre_matrix``) adds ``miscalibration@k``.
    """
    metrics = evaluate_model(model, train, test, k, genres)
    metrics["baselines"] = {
        "global-mean": evaluate_model(
            FactorModel(global_mean_params(train, scale), "global-mean"), train, test, k, genres
        ),
        "biases": evaluate_model(FactorModel(bias_params(train, scale), "biases"), train, test, k, genres),
        "popularity": ranking_row("popularity", popularity_scores(train), train, test, k, genres),
        "ease": ease_row(train, test, k, genres),
    }
    return metrics


def _both_orders(model: FactorModel, train: Ratings, chunk_size: int) -> Ranker:
    """The lists by the ranking score, then by predicted rating alone (the known pitfall, reported beside it):
    from one prediction per chunk of users, or from the movies' order when the model's scores are a function of
    the movie's bias alone (``model_item_orders``: the global-mean and bias baselines)."""
    orders = model_item_orders(model)
    if orders is not None:
        return lambda users, k: [rank_candidates(order, train, users, k) for order in orders]

    def scores(users: np.ndarray) -> Iterator[np.ndarray]:
        predicted = model.score_items(users)
        yield model.rank_scores_from(users, predicted)
        yield predicted

    return lambda users, k: rank_candidates_many(scores, 2, train, users, k, chunk_size)
