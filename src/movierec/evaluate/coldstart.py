"""The cold-start protocol: how well does the model serve people it was never trained on?

A random set of users is held out of training entirely (``holdout_users``); the run's configuration is trained
on everyone else. Each held-out user then reveals ``k`` of their ratings (their first ``k`` by time, or a
seeded random ``k``), which are folded in (closed form, no retraining), and the rest of their ratings are
scored: RMSE of the predicted stars, and NDCG@10 / recall@10 of the top-10 by rank score among the movies
with a training rating that are not among the ``k`` given (relevant: a held-out rating >= 4).

Beside the model, at the same ``k``: the bias-only baseline (global mean + movie bias + a user bias folded in
from the same ``k`` ratings, shrunk like ``bias_params``) and popularity (training rating counts). Only users
with more than ``max(given)`` ratings take part, so every ``k`` is scored on the same people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.evaluate.metrics import ranking_metrics, rmse
from movierec.models.factors import FactorModel

ORDERS = ("time", "random")
DEFAULT_GIVEN = (5, 10, 20)
BASELINE_USER_REG = 5.0  # bias_params' user shrinkage; fold-in's bias penalty is fold_in_reg / 2


@dataclass(frozen=True)
class ColdStartOptions:
    """How the protocol holds users out and what it reveals of them."""

    given: tuple[int, ...] = DEFAULT_GIVEN
    holdout_fraction: float = 0.2
    order: str = "time"
    seed: int = 0
    k: int = 10
    relevance_threshold: float = 4.0

    def __post_init__(self) -> None:
        if not self.given or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in self.given):
            raise MovieRecError(f"--given {self.given!r} is not valid; give positive whole numbers like 5,10,20.")
        object.__setattr__(self, "given", tuple(sorted(set(self.given))))
        if not 0 < self.holdout_fraction < 1:
            raise MovieRecError(
                f"The hold-out fraction {self.holdout_fraction} is out of range; use a value in (0, 1)."
            )
        if self.order not in ORDERS:
            raise MovieRecError(f"The order {self.order!r} is not valid; choose one of: {', '.join(ORDERS)}.")


def parse_given(text: str, flag: str = "--given") -> tuple[int, ...]:
    """``"5,10,20"`` -> (5, 10, 20); ``flag`` names the option in the error."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"\d+", p) and int(p) > 0 for p in parts):
        raise MovieRecError(f"{flag} {text!r} is not valid; give positive whole numbers like 5,10,20.")
    return tuple(int(p) for p in parts)


def score_cold_start(
    model: FactorModel, baseline: FactorModel, train: Ratings, held: Ratings, options: ColdStartOptions
) -> list[dict[str, Any]]:
    """The protocol's table for fitted models: one row per ``k`` (``held``: every rating of the held-out users)."""
    k_max = max(options.given)
    starts, order = _ordered_by_user(held, options)
    lengths = np.diff(np.append(starts, order.size))
    eligible = lengths > k_max
    if not eligible.any():
        raise MovieRecError(f"No held-out user has more than {k_max} ratings; lower --given (largest now {k_max}).")
    candidate = train.item_counts() > 0
    popularity = train.item_counts().astype(np.float64)
    rows = []
    for k in options.given:
        truth, predicted, predicted_base = [], [], []
        top_model, top_pop, relevant = [], [], []
        for start, length in zip(starts[eligible], lengths[eligible], strict=True):
            picked = order[start : start + length]
            given, rest = picked[:k], picked[k:]
            given_items, rest_items = held.items[given].astype(np.int64), held.items[rest].astype(np.int64)
            given_stars, rest_stars = held.ratings[given], held.ratings[rest]
            user = model.fold_in(given_items, given_stars)
            base_user = baseline.fold_in(given_items, given_stars)
            truth.append(rest_stars)
            # movies without training ratings get the mean plus the user's bias
            predicted.append(model.predict_for(user, rest_items, known=candidate))
            predicted_base.append(baseline.predict_for(base_user, rest_items, known=candidate))
            hits = rest_items[rest_stars >= options.relevance_threshold]
            if hits.size == 0:
                continue
            allowed = candidate.copy()
            allowed[given_items] = False
            relevant.append(hits)
            top_model.append(top_allowed(model.rank_for(user), allowed, options.k))
            top_pop.append(top_allowed(popularity, allowed, options.k))
        actual = np.concatenate(truth)
        row: dict[str, Any] = {
            "given": k,
            "rmse": rmse(np.concatenate(predicted), actual),
            "baseline_rmse": rmse(np.concatenate(predicted_base), actual),
        }
        at = f"@{options.k}"
        if relevant:
            ours = ranking_metrics(np.array(top_model), relevant, options.k)
            pop = ranking_metrics(np.array(top_pop), relevant, options.k)
            row.update({f"ndcg{at}": ours[f"ndcg{at}"], f"recall{at}": ours[f"recall{at}"]})
            row.update({f"popularity_ndcg{at}": pop[f"ndcg{at}"], f"popularity_recall{at}": pop[f"recall{at}"]})
        row.update({"n_users": int(eligible.sum()), "n_ranked_users": len(relevant), "n_scored": int(actual.size)})
        rows.append(row)
    return rows


def _ordered_by_user(held: Ratings, options: ColdStartOptions) -> tuple[np.ndarray, np.ndarray]:
    """(start of each user's block, row order): each user's ratings by time (ties by row) or shuffled."""
    if options.order == "time":
        tiebreak = held.timestamps
    else:
        tiebreak = np.random.default_rng(options.seed).permutation(len(held))
    order = np.lexsort((tiebreak, held.users))
    _, starts = np.unique(held.users[order], return_index=True)
    return starts, order


def top_allowed(scores: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring ``allowed`` items, best first (ties by index), padded with -1."""
    masked = np.where(allowed, scores, -np.inf)
    top = np.argpartition(-masked, k)[:k] if masked.size > k else np.arange(masked.size)
    top = top[np.lexsort((top, -masked[top]))]
    out = np.full(k, -1, dtype=np.int64)
    out[: top.size] = np.where(np.isneginf(masked[top]), -1, top)
    return out
