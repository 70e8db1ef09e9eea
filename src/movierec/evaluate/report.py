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
from movierec.evaluate.candidates import Candidates
from movierec.evaluate.item_order import ItemOrderedScore, model_item_orders, rank_in_item_order
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
    return evaluate_models([model], {}, train, test, k, genres)[0]


def evaluate_models(
    models: list[FactorModel],
    ranking_only: dict[str, ScoreFn],
    train: Ratings,
    test: Ratings,
    k: int = 10,
    genres: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """``evaluate_model`` of each of ``models``, then ``ranking_row`` of each scorer of ``ranking_only`` (by name),
    the same rows, with every list made in one ranking pass over the sampled users: which test movies are
    relevant, each user's candidates and the genre mixes of what they liked are worked out once for all."""
    rows: list[dict[str, Any]] = []
    for model in models:
        rows.append({"model": model.name, **evaluate_ratings(model.predict, train, test), "n_train": len(train)})
    rows += [{"model": name} for name in ranking_only]
    settings = RankingSettings(k=k, max_users=RANKED_USERS, genres=genres)

    def rank(users: np.ndarray, top: int) -> list[np.ndarray]:
        candidates = Candidates(train, users, train.item_counts())
        lists = [
            ranked
            for model in models
            for ranked in _both_orders(model, train, settings.chunk_size, candidates)(users, top)
        ]
        for score in ranking_only.values():
            if isinstance(score, ItemOrderedScore):  # popularity
                lists.append(rank_in_item_order(score, train, users, top, candidates))
            else:
                lists.append(rank_candidates(score, train, users, top, settings.chunk_size))
        return lists

    try:
        results = evaluate_ranked(rank, train, test, settings)
    except DataError:
        return rows  # no test user has a relevant movie: the ranking metrics are left out rather than invented
    by_score, by_rating = results[0 : 2 * len(models) : 2], results[1 : 2 * len(models) : 2]
    for row, ranked, rated in zip(rows[: len(models)], by_score, by_rating, strict=True):
        row.update(ranked)
        row.update({f"rating_order_{key}": rated[key] for key in (f"ndcg@{k}", f"recall@{k}")})
    for row, ranked in zip(rows[len(models) :], results[2 * len(models) :], strict=True):
        row.update(ranked)
    return rows


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
    baselines = [
        FactorModel(global_mean_params(train, scale), "global-mean"),
        FactorModel(bias_params(train, scale), "biases"),
    ]
    metrics, *rows = evaluate_models(
        [model, *baselines], {"popularity": popularity_scores(train)}, train, test, k, genres
    )
    metrics["baselines"] = {row["model"]: row for row in rows}
    metrics["baselines"]["ease"] = ease_row(train, test, k, genres)
    return metrics


def _both_orders(model: FactorModel, train: Ratings, chunk_size: int, candidates: Candidates) -> Ranker:
    """The lists by the ranking score, then by predicted rating alone (the known pitfall, reported beside it), of
    the users ``candidates`` were made for: from one prediction per chunk of users, or from the movies' order when
    the model's scores are a function of the movie's bias alone (``model_item_orders``: the global-mean and bias
    baselines)."""
    orders = model_item_orders(model)
    if orders is not None:
        return lambda users, k: [rank_in_item_order(order, train, users, k, candidates) for order in orders]

    def scores(users: np.ndarray) -> Iterator[np.ndarray]:
        predicted = model.score_items(users)
        yield model.rank_scores_from(users, predicted)
        yield predicted

    return lambda users, k: rank_candidates_many(scores, 2, train, users, k, chunk_size, candidates)
