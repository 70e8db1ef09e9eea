"""The k best columns of a score matrix, and which movies a user may be recommended: those with a training
rating that the user did not rate in training."""

from __future__ import annotations

import numpy as np
import torch

from movierec.data.ratings import Ratings

NAN_SCORES = "score returned NaN scores."


def topk_items(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first, as int64 [n_rows, k].

    Ties are broken by the lower index, among the selected items and at the k-th place alike (so the lists do
    not depend on how torch's top-k picks among equals). ``-inf`` (and NaN) entries are never returned; rows
    with fewer than k finite candidates are padded with ``-1``.
    """
    return top_columns(scores, k)[0]


def top_columns(scores: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    """``topk_items``, and whether ``scores`` held a NaN that it skipped."""
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D array [n_rows, n_items]; it has {s.ndim} dimension(s).")
    n_rows, n_cols = s.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    take = min(k + 1, n_cols)  # one more than asked: a tie at the k-th place shows as a tie with the next
    if n_cols == 0 or n_rows == 0:
        return out, False
    if take < n_cols:
        s = np.require(s, requirements=["C", "W"])  # what torch can read
    if n_cols >= GROUPED_FROM and s.dtype in (np.float32, np.float64):
        grouped = _grouped_top(s, k)
        if grouped is not None:
            return grouped, False
    if take < n_cols:  # the take largest, unordered: torch's top-k is many times numpy's argpartition here
        chosen = torch.topk(torch.from_numpy(s), take, dim=1, sorted=False)
        part_scores, part = chosen.values.numpy(), chosen.indices.numpy()
    else:
        part = np.broadcast_to(np.arange(n_cols), s.shape)
        part_scores = s
    if np.isnan(part_scores).any():  # torch takes NaN for the largest: a row with one selects it
        return topk_items(np.where(np.isnan(s), -np.inf, s), k), True
    order = np.lexsort((part, -part_scores), axis=1)  # by descending score, then by item index
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    if take == k + 1:
        for row in np.flatnonzero((top_scores[:, k - 1] == top_scores[:, k]) & (top_scores[:, k] > -np.inf)):
            top[row, :k] = _lowest_at_tie(s[row], top[row, :k], top_scores[row, k])
    out[:, : min(k, take)] = np.where(top_scores[:, :k] == -np.inf, -1, top[:, :k])
    return out, False


TOPK_GROUP = 128
"""Columns per group of ``_grouped_top``."""
GROUPED_FROM = 8 * TOPK_GROUP
"""Least number of columns that ``top_columns`` ranks from groups' maxima (below it torch's top-k is as quick)."""


def _grouped_top(s: np.ndarray, k: int) -> np.ndarray | None:
    """``topk_items`` of a C-ordered float matrix with many more columns than ``k``, from the maxima of groups of
    ``TOPK_GROUP`` columns; None when it holds NaN (the caller's path handles it).

    The ``k + 1``-th largest of a row's group maxima is at most its ``k + 1``-th largest score (those groups hold
    ``k + 1`` entries at least as large). So the entries at or above it are a prefix of the row in the order of
    ``topk_items`` (by descending score, then index) that holds its first ``k``, and they lie in the groups whose
    maximum reaches it (or in the last, shorter group): only those are sorted. One pass for the maxima, then a few
    groups a row: on 71 users x 59,047 movies of the 25M whole job's model (one thread) 0.7 ms for the rank scores
    and 1.6 ms for the predicted ratings (many tie at the top of the scale), against 4.1 and 5.0 ms for torch's
    top-k and the tie-breaking after it."""
    n_rows, n_cols = s.shape
    n_groups, take = n_cols // TOPK_GROUP, k + 1
    width = n_groups * TOPK_GROUP
    if n_groups < take:
        return None
    grouped = s[:, :width].reshape(n_rows, n_groups, TOPK_GROUP)
    tail = s[:, width:]
    maxima = np.empty((n_rows, n_groups + 1), s.dtype)
    torch.amax(torch.from_numpy(grouped), dim=2, out=torch.from_numpy(maxima[:, :n_groups]))
    maxima[:, n_groups] = tail.max(axis=1) if tail.shape[1] else -np.inf
    if np.isnan(maxima).any():
        return None
    bound = np.partition(maxima, n_groups + 1 - take, axis=1)[:, n_groups + 1 - take]
    group_rows, groups = _at_least(maxima[:, :n_groups], bound)
    in_groups = grouped[group_rows, groups]  # (groups reaching the bound, TOPK_GROUP)
    pairs, offsets = _at_least(in_groups, bound[group_rows])
    rows, columns, values = group_rows[pairs], groups[pairs] * TOPK_GROUP + offsets, in_groups[pairs, offsets]
    if tail.shape[1]:  # after the groups' entries: each row's entries stay in column order
        tail_rows, tail_offsets = _at_least(tail, bound)
        rows = np.concatenate([rows, tail_rows])
        columns = np.concatenate([columns, tail_offsets + width])
        values = np.concatenate([values, tail[tail_rows, tail_offsets]])
    order = np.lexsort((-values, rows))  # by row, then descending score; stable, so equal scores by column
    counts = np.bincount(rows, minlength=n_rows)  # at least take a row
    first = order[((np.cumsum(counts) - counts)[:, None] + np.arange(k)).ravel()].reshape(n_rows, k)
    return np.where(values[first] == -np.inf, -1, columns[first])


def _at_least(matrix: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the entries of a C-ordered ``matrix`` at or above their row's ``bound``, in row-major order
    (one flat search: NumPy's two-dimensional ``nonzero`` is several times slower)."""
    return np.divmod(np.flatnonzero(matrix >= bound[:, None]), matrix.shape[1])


def _lowest_at_tie(row: np.ndarray, top: np.ndarray, tied: float) -> np.ndarray:
    """``top`` (one row's k best, best first) with its places at the score ``tied`` given to the lowest indices of
    every entry of ``row`` that has that score."""
    above = int(np.count_nonzero(row[top] > tied))
    return np.r_[top[:above], np.flatnonzero(row == tied)[: top.size - above]]


def ranked_top(scores: np.ndarray, k: int) -> np.ndarray:
    """``topk_items`` of candidates' scores (the others at ``-inf``), where a NaN is the scorer's error."""
    top, had_nan = top_columns(scores, k)
    if had_nan:
        raise ValueError(NAN_SCORES)
    return top


def by_user(train: Ratings, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indptr [n_users + 1], items sorted by user) of the training ratings (those ``keep`` marks, if given)."""
    users, items = (train.users, train.items) if keep is None else (train.users[keep], train.items[keep])
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(train.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=train.n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int64)


class Candidates:
    """The candidate movies of a set of users: movies with no training rating (``item_counts``: the training
    ratings per movie) are never candidates, nor are the movies a user rated in training. Only those users'
    ratings are indexed (a few per cent of ML-25M's)."""

    def __init__(self, train: Ratings, users: np.ndarray, item_counts: np.ndarray) -> None:
        wanted = np.zeros(train.n_users, dtype=bool)
        wanted[users] = True
        self.indptr, self.items = by_user(train, wanted[train.users])
        self.not_candidate = np.flatnonzero(item_counts == 0)

    def seen(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position within ``users``, item) of every training rating of ``users``, vectorised."""
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        rows = np.repeat(np.arange(users.size, dtype=np.int64), lengths)
        offsets = np.arange(lengths.sum(), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.items[np.repeat(starts, lengths) + offsets]

    def exclude(self, scores: np.ndarray, users: np.ndarray) -> None:
        """Set ``scores`` [len(users), n_items] to ``-inf`` wherever the movie is no candidate for the row's user."""
        scores[:, self.not_candidate] = -np.inf
        scores[self.seen(users)] = -np.inf
