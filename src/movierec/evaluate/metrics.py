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

Beyond accuracy, over a batch of top-k lists (all vectorised, O(n k) plus the genre mixes):

* ``catalog_coverage``: share of the recommendable items in at least one list;
* ``personalization``: 1 - the mean overlap |A ∩ B| / k of the lists of every pair of different users;
* ``popularity_stratified_recall`` (Steck 2011): recall in which each relevant item weighs 1 / N_i^gamma, so
  hitting a rarely rated movie counts more than hitting a blockbuster;
* ``genre_miscalibration`` (Steck 2018): KL divergence between the genre mix of what a user liked and that of
  their list (0 when they match, lower is better);
* ``novelty`` and ``average_popularity`` of the recommended items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Relevant = np.ndarray | set[int] | frozenset[int] | Sequence[int]

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
POPULARITY_GAMMA = 0.5
"""Steck (2011) estimates that relevant ratings are missing at a rate that grows as ~ N_i^0.5 on MovieLens."""
CALIBRATION_ALPHA = 0.01
"""The share of the user's own genre mix blended into the list's (Steck 2018), so that the KL stays finite."""


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


def _distinct_pairs(lists: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of every distinct entry of ``lists`` (row u holds ``lists[u]``), sorted by row then item."""
    n = len(lists)
    lengths = np.fromiter((np.size(r) for r in lists), dtype=np.int64, count=n)
    items = np.concatenate([np.asarray(r, dtype=np.int64).ravel() for r in lists]) if n else np.empty(0, np.int64)
    if items.size and items.min() < 0:
        raise ValueError("item indices in the lists must be non-negative.")
    stride = int(items.max(initial=-1)) + 1  # (row, item) -> row*stride+item
    keys = _sorted_unique(np.repeat(np.arange(n, dtype=np.int64), lengths) * stride + items)
    return keys // max(stride, 1), keys % max(stride, 1)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (NumPy's hash-based unique is several times slower on a million keys)."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys


def _hit_matrix(top: np.ndarray, relevant: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean hits [n, w] of ``top`` against each row's relevant items, and the distinct relevant (row, item)
    pairs, sorted."""
    rel_rows, rel_items = _distinct_pairs(relevant)
    valid = top >= 0
    if rel_rows.size == 0:
        return np.zeros_like(valid), rel_rows, rel_items
    stride = int(max(rel_items.max(), top.max(initial=-1))) + 1
    rel_keys = rel_rows * stride + rel_items  # sorted, since the pairs are sorted by row then item
    top_keys = np.arange(top.shape[0], dtype=np.int64)[:, None] * stride + top
    pos = np.minimum(np.searchsorted(rel_keys, top_keys), rel_keys.size - 1)
    return valid & (rel_keys[pos] == top_keys), rel_rows, rel_items


def _checked_topk(topk: np.ndarray, relevant: Sequence[np.ndarray] | None, k: int) -> np.ndarray:
    """``topk`` as int64 [n, <=k] after checking its shape against ``relevant`` (when given) and k."""
    _check_k(k)
    top = np.asarray(topk, dtype=np.int64)
    if top.ndim != 2:
        raise ValueError(f"topk must be a 2-D array [n_users, k]; it has {top.ndim} dimension(s).")
    if relevant is not None and len(relevant) != top.shape[0]:
        raise ValueError(f"topk has {top.shape[0]} rows but relevant has {len(relevant)} lists.")
    if top.shape[0] == 0:
        raise ValueError("topk has no rows; ranking metrics need at least one user.")
    return top[:, :k]


def ranking_metrics(topk: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG, MAP and hit rate at k over the rows of ``topk``.

    ``topk`` is [n_users, width] item indices in rank order (``-1`` pads empty slots; only the first k columns
    count); ``relevant[u]`` holds row u's relevant item indices. Rows with no relevant items score 0 on every
    metric and still count in the mean, so callers drop them first when they should not count.
    """
    top = _checked_topk(topk, relevant, k)
    width = top.shape[1]
    hits, rel_rows, _ = _hit_matrix(top, relevant)
    n_relevant = np.bincount(rel_rows, minlength=top.shape[0])
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


def personalization(topk: np.ndarray, k: int) -> float | None:
    """1 - the mean overlap |A ∩ B| / k of the first k items of every pair of different rows; None with < 2 rows.

    Exact in O(n k): with H the rows x items hit matrix, the overlaps summed over ordered pairs of different rows
    are the off-diagonal sum of the Gram matrix H H^T, which is sum_i c_i (c_i - 1) where c_i is the number of
    lists that hold item i. Padding (-1) and repeats within a row never overlap; a short list is still over k.
    """
    top = _checked_topk(topk, None, k)
    n = top.shape[0]
    if n < 2:
        return None
    listed = top >= 0
    stride = int(top.max(initial=0)) + 1
    items = _sorted_unique(np.nonzero(listed)[0] * stride + top[listed]) % stride  # one entry per (row, item)
    lists_per_item = np.bincount(items).astype(np.float64)
    mean_overlap = float((lists_per_item * (lists_per_item - 1)).sum()) / (n * (n - 1))
    return 1.0 - mean_overlap / k


def popularity_stratified_recall(
    topk: np.ndarray, relevant: Sequence[np.ndarray], item_counts: np.ndarray, k: int, gamma: float = POPULARITY_GAMMA
) -> float:
    """Recall@k in which each relevant item weighs 1 / N_i^gamma (Steck 2011), N_i its training rating count.

    Per row: the summed weights of the relevant items among the first k over the summed weights of all the
    row's distinct relevant items; then the plain mean over rows (rows with no relevant item score 0 and count,
    as in ``ranking_metrics``; Steck pools the sums over all users instead). An item with no training rating
    weighs as if it had one. With gamma = 0 this is recall@k.
    """
    top = _checked_topk(topk, relevant, k)
    weight = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0) ** -gamma
    hits, rel_rows, rel_items = _hit_matrix(top, relevant)
    if max(rel_items.max(initial=-1), top.max(initial=-1)) >= weight.size:
        raise ValueError(f"item_counts covers {weight.size} items; the lists name items beyond them.")
    hit_weight = np.where(hits, weight[np.maximum(top, 0)], 0.0).sum(axis=1)
    relevant_weight = np.bincount(rel_rows, weights=weight[rel_items], minlength=top.shape[0])
    per_row = np.where(relevant_weight > 0, hit_weight / np.where(relevant_weight > 0, relevant_weight, 1.0), 0.0)
    return float(per_row.mean())


def genre_miscalibration(
    topk: np.ndarray, liked: Sequence[np.ndarray], genres: np.ndarray, k: int, alpha: float = CALIBRATION_ALPHA
) -> float | None:
    """Mean KL(p || (1 - alpha) q + alpha p), in nats, between genre mixes (Steck 2018); lower is better.

    ``genres`` is the items x genres matrix (nonzero = the item has the genre; see ``evaluate.genres``).
    Each item spreads a weight of 1 equally over its genres; items without genres weigh nothing. p is the
    mix of row u's distinct ``liked[u]`` items, q that of its first k recommended items (padding skipped).
    Averaged over the rows whose liked items have at least one genre; None when no row has. A list without
    any genre scores log(1 / alpha).
    """
    _checked_topk(topk, liked, k)
    return GenreProfiles.of(liked, genres).miscalibration(topk, k, alpha)


@dataclass(frozen=True)
class GenreProfiles:
    """What ``genre_miscalibration`` reads of the liked movies, computed once for any number of lists of the same
    users: each item's weight per genre, and each user's unnormalised genre mix of their liked movies."""

    share: np.ndarray  # [n_items, n_genres]: each item's weight of 1 spread equally over its genres
    liked_mix: np.ndarray  # [n_users, n_genres]

    @classmethod
    def of(cls, liked: Sequence[np.ndarray], genres: np.ndarray) -> GenreProfiles:
        has_genre = np.asarray(genres) != 0
        if has_genre.ndim != 2:
            raise ValueError(f"genres must be a 2-D array [n_items, n_genres]; it has {has_genre.ndim} dimension(s).")
        per_item = has_genre.sum(axis=1, keepdims=True)
        share = np.where(has_genre, 1.0 / np.maximum(per_item, 1), 0.0)
        liked_rows, liked_items = _distinct_pairs(liked)
        _check_within_genres(liked_items, share)
        return cls(share, _genre_mix(liked_rows, liked_items, share, len(liked)))

    def miscalibration(self, topk: np.ndarray, k: int, alpha: float = CALIBRATION_ALPHA) -> float | None:
        """``genre_miscalibration`` of ``topk`` (one row per user of the profiles)."""
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha is {alpha}; it must be in (0, 1].")
        top = _checked_topk(topk, None, k)
        if top.shape[0] != self.liked_mix.shape[0]:
            raise ValueError(f"topk has {top.shape[0]} rows but liked has {self.liked_mix.shape[0]} lists.")
        listed = top >= 0
        _check_within_genres(top[listed], self.share)
        p = self.liked_mix
        q = _genre_mix(np.nonzero(listed)[0], top[listed], self.share, top.shape[0])
        kept = p.sum(axis=1) > 0
        if not kept.any():
            return None
        p = p[kept] / p[kept].sum(axis=1, keepdims=True)
        q_total = q[kept].sum(axis=1, keepdims=True)
        q = np.where(q_total > 0, q[kept] / np.where(q_total > 0, q_total, 1.0), 0.0)
        blended = (1 - alpha) * q + alpha * p  # > 0 wherever p > 0
        positive = p > 0  # terms with p = 0 are 0
        kl = (p * np.log(np.where(positive, p, 1.0) / np.where(positive, blended, 1.0))).sum(axis=1)
        return float(kl.mean())


def _check_within_genres(items: np.ndarray, share: np.ndarray) -> None:
    if items.max(initial=-1) >= share.shape[0]:
        raise ValueError(f"genres covers {share.shape[0]} items; the lists name items beyond them.")


def _genre_mix(rows: np.ndarray, items: np.ndarray, share: np.ndarray, n: int) -> np.ndarray:
    """Unnormalised genre weights [n, n_genres]: the summed ``share`` rows of each row's items."""
    mix = np.zeros((n, share.shape[1]))
    for genre in range(share.shape[1]):  # one pass per genre keeps memory at O(pairs)
        mix[:, genre] = np.bincount(rows, weights=share[items, genre], minlength=n)
    return mix
