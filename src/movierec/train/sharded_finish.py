"""The end of sharded training without every rating on one process: what rank 0 needs to finish and score a run.

A finished run needs, besides the tables, per-user and per-movie rating counts (which rows were trained, the
popularity prior, the fold-in prior's weights, the candidates, novelty), the training ratings of the users whose
lists are scored (never to recommend what they rated, the genres they liked), the validation ratings that choose
the ranking weights, and the baselines. ``gather_summary`` collects exactly that on rank 0, every rank taking
part:

- the counts: all-reduced per-user and per-movie counts (the size of the vocabularies, not of the ratings);
- the scored users: the seeded samples ``evaluate_ranking`` (test) and ``choose_rank_weight`` (validation) draw,
  made here by the very functions they use (``evaluate.protocol.ranked_sample``, ``rank_weight.weight_users``),
  then each rank sends those users' training ratings to rank 0: ``RANKED_USERS`` + 2,000 users at most, whatever
  the data's size;
- the validation ratings of 4 stars or more (those that choose the ranking weights; a few per cent of the ratings);
- the biases baseline by alternating least squares with all-reduced movie sums (``sharded_biases``).

Rank 0 reads the test ratings whole (``test.parquet``, as before) and holds ``CountedRatings``: the gathered rows
over the whole set's counts, which ``evaluate_ranking``, ``choose_rank_weight`` and ``finish_params`` read as
they read a full ``Ratings``. The "likely to watch" component is fitted across the ranks before this
(``sharded_watch``), so rank 0 never reads the training parts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from movierec.data.ratings import Ratings, RatingScale, no_timestamps
from movierec.data.shard import ShardSet, validation_mask
from movierec.evaluate.protocol import popularity_scores, ranked_sample
from movierec.evaluate.report import RANKED_USERS, evaluate_model, ranking_row
from movierec.models.baselines import bias_only_params
from movierec.models.factors import FactorModel
from movierec.train.rank_weight import weight_users
from movierec.train.shard_exchange import Exchange

RELEVANT = 4.0
"""The stars that make a held-out movie relevant (``evaluate_ranking``'s and ``choose_rank_weight``'s default)."""
WEIGHT_USERS = 2000
"""``choose_rank_weight``'s default ``max_users``."""
EASE_NOTE = (
    "EASE left out: it needs a movies x movies Gram matrix of every training rating on one process, and sharded "
    "training holds none with all of them."
)


@dataclass(frozen=True)
class CountedRatings(Ratings):
    """The ratings of some users over the counts of every user and movie of the whole set they came from."""

    all_user_counts: np.ndarray | None = None
    all_item_counts: np.ndarray | None = None

    @classmethod
    def of(cls, rows: Ratings, user_counts: np.ndarray, item_counts: np.ndarray) -> CountedRatings:
        """``rows`` over the counts ``user_counts`` and ``item_counts``."""
        return cls(rows.users, rows.items, rows.ratings, rows.timestamps, rows.user_vocab, rows.item_vocab,
                   user_counts, item_counts)  # fmt: skip

    def user_counts(self) -> np.ndarray:
        return super().user_counts() if self.all_user_counts is None else self.all_user_counts

    def item_counts(self) -> np.ndarray:
        return super().item_counts() if self.all_item_counts is None else self.all_item_counts


@dataclass(frozen=True)
class ShardSummary:
    """What rank 0 finishes and scores a sharded run with: ``train`` and ``fit`` (``train`` less its validation
    ratings) hold the scored users' rows over every count, ``valid`` the validation ratings of 4 stars or more,
    ``test`` every test rating; ``mean``, ``user_bias`` and ``item_bias`` the biases baseline; ``n_train`` the
    training ratings in all."""

    train: CountedRatings
    fit: CountedRatings
    valid: Ratings
    test: Ratings
    mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    n_train: int


def gather_summary(
    own: Ratings, shards: ShardSet, val_fraction: float, seed: int, exchange: Exchange
) -> ShardSummary | None:
    """The ``ShardSummary`` on rank 0 (None elsewhere) from every rank's ``own`` training ratings (its users').
    Every rank must call it. ``val_fraction`` and ``seed`` carve the validation ratings as training did."""
    held = validation_mask(own, val_fraction, seed)
    fit = ~held
    sizes = ((own.users, own.n_users), (own.items, own.n_items))
    counts = [np.bincount(side[rows], minlength=size) for rows in (slice(None), fit) for side, size in sizes]
    user_total, item_total, user_fit, item_fit = (_summed(count, exchange) for count in counts)
    mean, user_bias, item_bias = sharded_biases(own, exchange)
    liked = np.flatnonzero(held & (own.ratings >= RELEVANT))
    valid = _ratings(exchange.to_first(*_columns(own.take(liked))), own)
    test = _undated(shards.read_ratings("test.parquet")) if exchange.rank == 0 else None
    wanted = exchange.broadcast(
        None if test is None else np.union1d(ranked_sample(test, RANKED_USERS), weight_users(valid, WEIGHT_USERS))
    )
    mine = np.flatnonzero(np.isin(own.users, wanted))
    *columns, was_held = exchange.to_first(*_columns(own.take(mine)), held[mine].astype(np.int32))
    if test is None:
        return None
    rows = _ratings(columns, own)
    was_held = was_held.astype(bool)
    return ShardSummary(
        train=CountedRatings.of(rows, user_total, item_total),
        fit=CountedRatings.of(rows.take(~was_held), user_fit, item_fit),
        valid=valid,
        test=test,
        mean=mean,
        user_bias=user_bias,
        item_bias=item_bias,
        n_train=int(user_total.sum()),
    )


def sharded_biases(
    own: Ratings, exchange: Exchange, user_reg: float = 5.0, item_reg: float = 5.0, passes: int = 10
) -> tuple[float, np.ndarray, np.ndarray]:
    """``baselines.fit_biases`` over every rank's ratings: (mean, user biases, movie biases), the whole tables on
    every rank. Users are solved where their ratings are; the movie sums are all-reduced each pass."""
    total = _summed(np.array([own.ratings.sum(dtype=np.float64), len(own)]), exchange)
    mean = float(total[0] / max(1.0, total[1]))
    residual = own.ratings.astype(np.float64) - mean
    user_count = np.bincount(own.users, minlength=own.n_users)
    item_count = _summed(np.bincount(own.items, minlength=own.n_items), exchange)
    user_bias = np.zeros(own.n_users)
    item_bias = np.zeros(own.n_items)
    for _ in range(passes):
        item_sum = _summed(np.bincount(own.items, residual - user_bias[own.users], minlength=own.n_items), exchange)
        item_bias = item_sum / (item_reg + item_count)
        user_sum = np.bincount(own.users, residual - item_bias[own.items], minlength=own.n_users)
        user_bias = user_sum / (user_reg + user_count)
    return mean, _summed(user_bias, exchange).astype(np.float32), item_bias.astype(np.float32)


def sharded_metrics(
    model: FactorModel, summary: ShardSummary, scale: RatingScale, genres: np.ndarray | None
) -> dict[str, Any]:
    """``report.compare_with_baselines`` from the summary: the model, the global mean, the biases and popularity
    scored on the same test ratings and sampled users (EASE left out, with a note). ``n_train`` counts every
    training rating."""
    train, test = summary.train, summary.test
    zeros = np.zeros(train.n_users), np.zeros(train.n_items)
    baselines = {
        "global-mean": bias_only_params(train, scale, summary.mean, *zeros, popular=True),
        "biases": bias_only_params(train, scale, summary.mean, summary.user_bias, summary.item_bias, popular=True),
    }
    metrics = evaluate_model(model, train, test, genres=genres)
    metrics["baselines"] = {
        name: evaluate_model(FactorModel(params, name), train, test, genres=genres)
        for name, params in baselines.items()
    }
    metrics["baselines"]["popularity"] = ranking_row("popularity", popularity_scores(train), train, test, genres=genres)
    metrics["baselines"]["ease"] = {"model": "ease", "note": EASE_NOTE}
    for row in (metrics, *metrics["baselines"].values()):
        if "n_train" in row:
            row["n_train"] = summary.n_train
    return metrics


def _summed(values: np.ndarray, exchange: Exchange) -> np.ndarray:
    return exchange.all_sum(torch.from_numpy(np.ascontiguousarray(values)).to(exchange.device)).cpu().numpy()


def _columns(ratings: Ratings) -> tuple[np.ndarray, ...]:
    """What is sent of ``ratings``: not their dates (sharded training has no time effects)."""
    return ratings.users, ratings.items, ratings.ratings


def _undated(ratings: Ratings) -> Ratings:
    """``ratings`` without their dates, which scoring a sharded run never reads (no time effects): 16 MB less on
    rank 0 for 2M test ratings."""
    return replace(ratings, timestamps=no_timestamps(len(ratings)))


def _ratings(columns: list[np.ndarray], like: Ratings) -> Ratings:
    users, items, ratings = columns
    return Ratings(users, items, ratings, no_timestamps(len(users)), like.user_vocab, like.item_vocab)
