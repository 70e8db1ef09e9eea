"""Pure evaluation metrics over numpy arrays.

Rating metrics compare predicted and actual stars. Ranking metrics judge a list of recommended item indices
(rank order, best first) against a set of relevant item indices, with binary relevance:

* ``precision@k`` = hits / k (always divided by k, even when fewer than k items were recommended);
* ``recall@k`` = hits / |relevant| (plain |relevant|, *not* min(k, |relevant|), so a perfect list scores
  below 1 when there are more than k relevant items);
* ``ndcg@k`` = DCG / ideal DCG, gains 1 for a hit, discount 1 / log2(rank + 1) with ranks from 1, ideal DCG
  over min(k, |relevant|) hits in the top positions;
* ``map@k`` (average precision) = sum of precision@i at each hit rank i / min(k, |relevant|);
* ``hit_rate@k`` = 1 when at least one recommended item is relevant.

Every ranking metric is 0 when there are no relevant items. Negative entries in a recommended list (the ``-1``
padding of ``topk`` arrays) are empty slots: they occupy a rank but are never hits. ``ranking_metrics`` is the
vectorised batch form used on thousands of users; it agrees with the per-list functions up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

Relevant = np.ndarray | set[int] | frozenset[int] | Sequence[int]

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


# --------------------------------------------------------------------------------------------- rating errors


def _paired(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64).ravel()
    a = np.asarray(actual, dtype=np.float64).ravel()
    if p.shape != a.shape:
        raise ValueError(f"predicted has {p.size} values but actual has {a.size}; they must match.")
    if p.size == 0:
        raise ValueError("predicted and actual are empty; at least one rating is needed.")
    return p, a


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error between predicted and actual ratings."""
    p, a = _paired(predicted, actual)
    return float(np.sqrt(np.mean((p - a) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error between predicted and actual ratings."""
    p, a = _paired(predicted, actual)
    return float(np.mean(np.abs(p - a)))


# ----------------------------------------------------------------------------------- per-list ranking metrics


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")


def _hits(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> tuple[list[bool], int]:
    """Hit flags for the first k recommended slots, and the number of distinct relevant items."""
    _check_k(k)
    relevant_set = {int(i) for i in _as_iterable(relevant)}
    top = [int(i) for i in np.asarray(recommended, dtype=np.int64).ravel()[:k]]
    return [i >= 0 and i in relevant_set for i in top], len(relevant_set)


def _as_iterable(relevant: Relevant) -> Iterable[int]:
    if isinstance(relevant, np.ndarray):
        return [int(i) for i in relevant.ravel()]
    return relevant


def precision_at_k(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> float:
    """Hits among the first k recommended items, divided by k."""
    hits, _ = _hits(recommended, relevant, k)
    return sum(hits) / k


def recall_at_k(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> float:
    """Hits among the first k recommended items, divided by |relevant| (not min(k, |relevant|)); 0 if none."""
    hits, n_relevant = _hits(recommended, relevant, k)
    return sum(hits) / n_relevant if n_relevant else 0.0


def ndcg_at_k(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> float:
    """Binary-gain NDCG: sum of 1/log2(rank+1) over hits, over the same sum for min(k, |relevant|) hits."""
    hits, n_relevant = _hits(recommended, relevant, k)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(hits, start=1) if hit)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    return dcg / ideal if ideal > 0 else 0.0


def average_precision_at_k(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> float:
    """AP (the per-user term of MAP@k): sum of precision@i at each hit i / min(k, |relevant|)."""
    hits, n_relevant = _hits(recommended, relevant, k)
    total, n_hits = 0.0, 0
    for rank, hit in enumerate(hits, start=1):
        if hit:
            n_hits += 1
            total += n_hits / rank
    denominator = min(k, n_relevant)
    return total / denominator if denominator else 0.0


def hit_rate_at_k(recommended: np.ndarray | Sequence[int], relevant: Relevant, k: int) -> float:
    """1.0 when any of the first k recommended items is relevant, else 0.0."""
    hits, _ = _hits(recommended, relevant, k)
    return 1.0 if any(hits) else 0.0


# ------------------------------------------------------------------------------------- batch ranking metrics


def ranking_metric_keys(k: int) -> list[str]:
    """The keys ``ranking_metrics`` returns, e.g. ``precision@10``."""
    return [f"{name}@{k}" for name in RANKING_METRICS]


def _hit_matrix(top: np.ndarray, relevant: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean hits [n, w] of ``top`` against each row's relevant items, and distinct relevant counts [n]."""
    n = top.shape[0]
    lengths = np.fromiter((np.size(r) for r in relevant), dtype=np.int64, count=n)
    rel_items = (
        np.concatenate([np.asarray(r, dtype=np.int64).ravel() for r in relevant]) if n else np.empty(0, dtype=np.int64)
    )
    if rel_items.size and rel_items.min() < 0:
        raise ValueError("relevant item indices must be non-negative.")
    rel_rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    stride = int(max(rel_items.max(initial=-1), top.max(initial=-1))) + 1  # (row, item) -> row*stride+item
    rel_keys = np.unique(rel_rows * stride + rel_items)  # sorted, one key per distinct (row, item)
    n_relevant = np.bincount(rel_keys // max(stride, 1), minlength=n).astype(np.int64)
    valid = top >= 0
    if rel_keys.size == 0:
        return np.zeros_like(valid), n_relevant
    top_keys = np.arange(n, dtype=np.int64)[:, None] * stride + top
    pos = np.minimum(np.searchsorted(rel_keys, top_keys), rel_keys.size - 1)
    found = rel_keys[pos] == top_keys
    return valid & found, n_relevant


def ranking_metrics(topk: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG, MAP and hit rate at k over the rows of ``topk``.

    ``topk`` is [n_users, width] item indices in rank order (``-1`` pads empty slots; only the first k columns
    count); ``relevant[u]`` holds row u's relevant item indices. Rows with no relevant items score 0 on every
    metric and still count in the mean, so callers drop them first when they should not count.
    """
    _check_k(k)
    top = np.asarray(topk, dtype=np.int64)
    if top.ndim != 2:
        raise ValueError(f"topk must be a 2-D array [n_users, k]; it has {top.ndim} dimension(s).")
    if len(relevant) != top.shape[0]:
        raise ValueError(f"topk has {top.shape[0]} rows but relevant has {len(relevant)} lists.")
    if top.shape[0] == 0:
        raise ValueError("topk has no rows; ranking metrics need at least one user.")
    top = top[:, :k]
    width = top.shape[1]
    hits, n_relevant = _hit_matrix(top, relevant)
    hits_f = hits.astype(np.float64)
    n_hits = hits_f.sum(axis=1)

    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # rank 1..k
    ideal_table = np.concatenate([[0.0], np.cumsum(discount)])  # ideal DCG of 0..k hits
    ideal_len = np.minimum(n_relevant, k)
    ideal = ideal_table[ideal_len]
    dcg = (hits_f * discount[:width]).sum(axis=1)
    precision_at_rank = np.cumsum(hits_f, axis=1) / np.arange(1, width + 1, dtype=np.float64)
    ap_sum = (precision_at_rank * hits_f).sum(axis=1)

    safe = np.maximum(ideal_len, 1)
    per_user = {
        "precision": n_hits / k,
        "recall": np.where(n_relevant > 0, n_hits / np.maximum(n_relevant, 1), 0.0),
        "ndcg": np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0),
        "map": np.where(ideal_len > 0, ap_sum / safe, 0.0),
        "hit_rate": (n_hits > 0).astype(np.float64),
    }
    return {f"{name}@{k}": float(per_user[name].mean()) for name in RANKING_METRICS}


# ------------------------------------------------------------------------------------------ beyond accuracy


def _recommended(topk: np.ndarray) -> np.ndarray:
    """The filled (non-negative) slots of a topk array, flattened."""
    flat = np.asarray(topk, dtype=np.int64).ravel()
    return flat[flat >= 0]


def catalog_coverage(topk: np.ndarray, n_candidates: int) -> float:
    """Share of the ``n_candidates`` recommendable items that appear in at least one list (0 if none)."""
    if n_candidates <= 0:
        return 0.0
    return float(np.unique(_recommended(topk)).size / n_candidates)


def novelty(topk: np.ndarray, item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2(count / n_users) of recommended items; a count of 0 counts as 1.

    ``item_counts`` are training rating counts per item and ``n_users`` the number of training users. Returns
    0 when nothing was recommended.
    """
    items = _recommended(topk)
    if items.size == 0:
        return 0.0
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64)[items], 1.0)
    return float(np.mean(-np.log2(counts / max(n_users, 1))))


def average_popularity(topk: np.ndarray, item_counts: np.ndarray) -> float:
    """Mean training rating count of recommended items (0 when nothing was recommended)."""
    items = _recommended(topk)
    if items.size == 0:
        return 0.0
    return float(np.mean(np.asarray(item_counts, dtype=np.float64)[items]))
