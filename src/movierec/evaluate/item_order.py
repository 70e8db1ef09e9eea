"""Ranking for scorers that order the movies the same way for every user (popularity, the global mean, the
biases): each user's top k is found among the first movies of one global order, without a users x movies
matrix.

Such a scorer declares a per-movie ``key``: every user's scores are a non-decreasing function of it (equal keys,
equal scores). A user's top k is then among the first movies of the candidates sorted by descending key (then
by index), once that prefix holds k candidates the user did not rate and no movie after it can tie with the
k-th. Only the prefix is scored, and the lists are exactly those of ranking the whole score matrix
(``topk_items``: by descending score, ties by the lower movie index), ties across keys included: a user's
scores can tie where the keys differ (a rating clipped to the top of the scale, float rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from movierec.data.ratings import Ratings
from movierec.evaluate.candidates import NAN_SCORES, Candidates, ranked_top
from movierec.models.factors import FactorModel

FIRST_PREFIX = 64
"""Movies of the global order scored first for each user (at least 4k); users it does not settle get 4x more."""
PREFIX_BUDGET = 1 << 22
"""Most scores computed at once (16 MB in float32)."""


@dataclass(frozen=True)
class ItemOrderedScore:
    """A scorer whose scores for every user are a non-decreasing function of ``key`` [n_items], equal keys
    giving equal scores. ``score(users, items)`` gives the scores of ``items`` [m] for ``users`` [b] as
    [b, m], each entry what scoring every movie would give. Called with user indices alone, it scores every
    movie (a ``ScoreFn``)."""

    key: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return self.score(users, np.arange(self.key.size))


def popularity_scores(train: Ratings) -> ItemOrderedScore:
    """A popularity baseline: every user's scores are the training rating counts of the items.

    The returned rows are a read-only broadcast view of one shared row.
    """
    counts = train.item_counts().astype(np.float32)

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.broadcast_to(counts[items], (np.asarray(users).shape[0], len(items)))

    return ItemOrderedScore(counts, score)


def model_item_orders(model: FactorModel) -> tuple[ItemOrderedScore, ItemOrderedScore] | None:
    """The model's rank score and its predicted rating as item-ordered scorers, when one movie order ranks
    both for every user (``FactorModel.movie_order_key``); None otherwise."""
    key = model.movie_order_key()
    if key is None:
        return None
    return (
        ItemOrderedScore(key, lambda users, items: model.restricted_to(items).rank_scores(users)),
        ItemOrderedScore(key, lambda users, items: model.restricted_to(items).score_items(users)),
    )


class _GlobalOrder:
    """The candidate movies by descending key, then index, and where each run of equal keys ends."""

    def __init__(self, key: np.ndarray, item_counts: np.ndarray) -> None:
        if key.shape != item_counts.shape:
            raise ValueError(f"key has shape {key.shape}; expected one value per movie {item_counts.shape}.")
        if np.isnan(key).any():
            raise ValueError("key holds NaN; an item order needs a comparable key for every movie.")
        candidates = np.flatnonzero(item_counts > 0)
        self.key = key
        self.items = candidates[np.lexsort((candidates, -key[candidates]))]
        sorted_keys = key[self.items]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], self.items.size]
        self.run_end = np.repeat(ends, np.diff(np.r_[starts, self.items.size]))  # [position] -> end of its run

    @property
    def size(self) -> int:
        return int(self.items.size)


def rank_in_item_order(
    score: ItemOrderedScore, train: Ratings, users: np.ndarray, k: int, candidates: Candidates | None = None
) -> np.ndarray:
    """Each user's top-k candidate items [len(users), k], best first, ``-1`` padded: ``rank_candidates`` for an
    item-ordered scorer, the same lists from the first movies of its order. ``candidates``: those of ``users``,
    when made already."""
    item_counts = train.item_counts()
    order = _GlobalOrder(np.asarray(score.key), item_counts)
    users = np.asarray(users, dtype=np.int64).ravel()
    out = np.full((users.size, k), -1, dtype=np.int64)
    if order.size == 0:
        return out
    if candidates is None:
        candidates = Candidates(train, users, item_counts)
    pending = np.arange(users.size)
    length = max(FIRST_PREFIX, 4 * k)
    while pending.size:
        length = min(length, order.size)
        step = max(1, PREFIX_BUDGET // (length + 2))
        unsettled = [
            _settle(score, order, candidates, users, pending[start : start + step], length, k, out)
            for start in range(0, pending.size, step)
        ]
        pending = np.concatenate(unsettled)
        length *= 4
    return out


def _settle(
    score: ItemOrderedScore,
    order: _GlobalOrder,
    candidates: Candidates,
    users: np.ndarray,
    positions: np.ndarray,
    length: int,
    k: int,
    out: np.ndarray,
) -> np.ndarray:
    """Rank the users at ``positions`` (of ``users``) on the first ``length`` movies of ``order``: write the lists
    of those it settles into ``out`` and return the positions of the others."""
    prefix = np.sort(order.items[:length])  # by movie index, so that topk's ties go to the lower index
    whole = length == order.size
    beyond = [] if whole else [order.items[length]]  # the first movie after the prefix, and of the next key run
    if not whole and order.run_end[length] < order.size:
        beyond.append(order.items[order.run_end[length]])
    chunk = users[positions]
    raw = np.asarray(score.score(chunk, np.r_[prefix, np.array(beyond, dtype=np.int64)]))
    if raw.shape != (chunk.size, prefix.size + len(beyond)):
        raise ValueError(f"score returned shape {raw.shape}; expected ({chunk.size}, {prefix.size + len(beyond)}).")
    scores = np.array(raw[:, : prefix.size], dtype=np.float64 if raw.dtype == np.float64 else np.float32)
    rows, seen = candidates.seen(chunk)
    column = np.minimum(np.searchsorted(prefix, seen), prefix.size - 1)
    in_prefix = prefix[column] == seen
    scores[rows[in_prefix], column[in_prefix]] = -np.inf
    top = ranked_top(scores, k)
    if whole:
        out[positions] = np.where(top >= 0, prefix[np.maximum(top, 0)], -1)
        return positions[:0]
    kth = np.take_along_axis(scores, np.maximum(top[:, -1:], 0), axis=1)[:, 0]
    settled = (top[:, -1] >= 0) & _no_tie_beyond(raw[:, prefix.size :], kth, scores, top, prefix, order, length)
    out[positions[settled]] = prefix[top[settled]]
    return positions[~settled]


def _no_tie_beyond(
    after: np.ndarray,
    kth: np.ndarray,
    scores: np.ndarray,
    top: np.ndarray,
    prefix: np.ndarray,
    order: _GlobalOrder,
    length: int,
) -> np.ndarray:
    """bool [rows]: no movie after the prefix can enter a row's top k or tie with its k-th score ``kth``.

    The movies after it score at most ``after[:, 0]`` (the first of them); those of its key run score exactly
    that, and come after every prefix movie of the run by index; the later runs score at most ``after[:, 1]``.
    So a row is settled when the first one scores below the k-th, or ties with it while the listed movies that
    tie are all of that key run and the next run scores below the k-th."""
    after = after.astype(scores.dtype)
    if np.isnan(after).any():
        raise ValueError(NAN_SCORES)
    first = after[:, 0]
    next_run = after[:, 1] if after.shape[1] > 1 else np.full(first.shape, -np.inf)
    listed = np.take_along_axis(scores, np.maximum(top, 0), axis=1)
    other_key = order.key[prefix[np.maximum(top, 0)]] != order.key[order.items[length]]
    tie_in_run = ~((listed == kth[:, None]) & other_key).any(axis=1) & (next_run < kth)
    return (first < kth) | ((first == kth) & tie_in_run)
