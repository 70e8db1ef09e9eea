"""Every metric against hand-computed cases, and the batch form against the per-list functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluate.genres import genre_matrix
from movierec.evaluate.metrics import (
    average_popularity,
    average_precision_at_k,
    catalog_coverage,
    genre_miscalibration,
    hit_rate_at_k,
    mae,
    ndcg_at_k,
    novelty,
    personalization,
    popularity_stratified_recall,
    precision_at_k,
    ranking_metric_keys,
    ranking_metrics,
    recall_at_k,
    rmse,
)

L2_3 = 1 / math.log2(3)  # discount at rank 2
L2_4 = 1 / math.log2(4)  # discount at rank 3


def per_list(recommended: list[int], relevant: set[int], k: int) -> dict[str, float]:
    return {
        f"precision@{k}": precision_at_k(np.array(recommended), relevant, k),
        f"recall@{k}": recall_at_k(np.array(recommended), relevant, k),
        f"ndcg@{k}": ndcg_at_k(np.array(recommended), relevant, k),
        f"map@{k}": average_precision_at_k(np.array(recommended), relevant, k),
        f"hit_rate@{k}": hit_rate_at_k(np.array(recommended), relevant, k),
    }


# ----------------------------------------------------------------------------------------------- rmse / mae


def test_rmse_and_mae_hand_computed() -> None:
    predicted = np.array([3.0, 4.0, 5.0], dtype=np.float32)
    actual = np.array([2.0, 4.0, 3.0], dtype=np.float32)  # errors 1, 0, 2
    assert rmse(predicted, actual) == pytest.approx(math.sqrt(5 / 3))
    assert mae(predicted, actual) == pytest.approx(1.0)
    assert rmse(actual, actual) == 0.0


def test_rmse_rejects_mismatched_or_empty() -> None:
    with pytest.raises(ValueError, match="must match"):
        rmse(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        mae(np.empty(0), np.empty(0))


# ------------------------------------------------------------------------------------------ per-list metrics


def test_brief_example() -> None:
    recommended, relevant = np.array([3, 1, 7]), {1, 7, 9}
    assert precision_at_k(recommended, relevant, 3) == pytest.approx(2 / 3)
    assert recall_at_k(recommended, relevant, 3) == pytest.approx(2 / 3)
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx((L2_3 + L2_4) / (1 + L2_3 + L2_4))
    assert average_precision_at_k(recommended, relevant, 3) == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert hit_rate_at_k(recommended, relevant, 3) == 1.0


def test_relevant_as_array_or_list_with_duplicates() -> None:
    for relevant in (np.array([9, 7, 1, 7]), [1, 1, 7, 9]):
        assert recall_at_k(np.array([3, 1, 7]), relevant, 3) == pytest.approx(2 / 3)
        assert average_precision_at_k([3, 1, 7], relevant, 3) == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_k_larger_than_the_list() -> None:
    # one recommendation, k = 3: precision still divides by k; ideal DCG over min(3, 2) = 2 items
    recommended, relevant = np.array([5]), {5, 6}
    assert precision_at_k(recommended, relevant, 3) == pytest.approx(1 / 3)
    assert recall_at_k(recommended, relevant, 3) == pytest.approx(1 / 2)
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(1 / (1 + L2_3))
    assert average_precision_at_k(recommended, relevant, 3) == pytest.approx(1 / 2)
    assert hit_rate_at_k(recommended, relevant, 3) == 1.0


def test_recall_divides_by_all_relevant_but_ndcg_and_ap_by_min_k() -> None:
    recommended, relevant = np.array([1, 2]), {1, 2, 3, 4, 5}
    assert precision_at_k(recommended, relevant, 2) == 1.0
    assert recall_at_k(recommended, relevant, 2) == pytest.approx(2 / 5)
    assert ndcg_at_k(recommended, relevant, 2) == pytest.approx(1.0)
    assert average_precision_at_k(recommended, relevant, 2) == pytest.approx(1.0)


def test_only_the_first_k_count() -> None:
    recommended, relevant = np.array([9, 1, 7]), {7}
    assert per_list([9, 1, 7], relevant, 2) == {
        "precision@2": 0.0,
        "recall@2": 0.0,
        "ndcg@2": 0.0,
        "map@2": 0.0,
        "hit_rate@2": 0.0,
    }
    assert hit_rate_at_k(recommended, relevant, 3) == 1.0
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(L2_4 / 1.0)
    assert average_precision_at_k(recommended, relevant, 3) == pytest.approx(1 / 3)


def test_padding_takes_a_rank_but_never_hits() -> None:
    recommended, relevant = np.array([-1, 4]), {4}
    assert precision_at_k(recommended, relevant, 2) == pytest.approx(1 / 2)
    assert ndcg_at_k(recommended, relevant, 2) == pytest.approx(L2_3)
    assert average_precision_at_k(recommended, relevant, 2) == pytest.approx(1 / 2)


def test_no_relevant_items_scores_zero() -> None:
    assert per_list([1, 2, 3], set(), 3) == dict.fromkeys(ranking_metric_keys(3), 0.0)


def test_empty_recommendation_scores_zero() -> None:
    assert per_list([], {1}, 5) == dict.fromkeys(ranking_metric_keys(5), 0.0)


def test_perfect_list() -> None:
    assert per_list([4, 2, 8], {2, 4, 8}, 3) == pytest.approx(dict.fromkeys(ranking_metric_keys(3), 1.0))


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        precision_at_k([1], {1}, 0)
    with pytest.raises(ValueError, match="at least 1"):
        ranking_metrics(np.array([[1]]), [np.array([1])], 0)


# --------------------------------------------------------------------------------------------- batch metrics


def test_ranking_metrics_hand_computed_mean() -> None:
    topk = np.array([[3, 1, 7], [5, -1, -1], [2, 4, 6]])
    relevant = [np.array([1, 7, 9]), np.array([5, 6]), np.array([8])]
    result = ranking_metrics(topk, relevant, 3)
    assert list(result) == ["precision@3", "recall@3", "ndcg@3", "map@3", "hit_rate@3"]
    assert result["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert result["recall@3"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    ndcg_0 = (L2_3 + L2_4) / (1 + L2_3 + L2_4)
    assert result["ndcg@3"] == pytest.approx((ndcg_0 + 1 / (1 + L2_3) + 0) / 3)
    assert result["map@3"] == pytest.approx(((1 / 2 + 2 / 3) / 3 + 1 / 2 + 0) / 3)
    assert result["hit_rate@3"] == pytest.approx(2 / 3)


def test_ranking_metrics_uses_only_first_k_columns_and_counts_empty_relevant_as_zero() -> None:
    topk = np.array([[9, 1, 7], [1, 2, 3]])
    result = ranking_metrics(topk, [np.array([1]), np.array([], dtype=np.int64)], 1)
    assert result == {"precision@1": 0.0, "recall@1": 0.0, "ndcg@1": 0.0, "map@1": 0.0, "hit_rate@1": 0.0}


def test_ranking_metrics_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2-D"):
        ranking_metrics(np.array([1, 2]), [np.array([1])], 2)
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(np.array([[1, 2]]), [np.array([1]), np.array([2])], 2)
    with pytest.raises(ValueError, match="no rows"):
        ranking_metrics(np.empty((0, 2), dtype=np.int64), [], 2)
    with pytest.raises(ValueError, match="non-negative"):
        ranking_metrics(np.array([[1, 2]]), [np.array([-1])], 2)


@st.composite
def ranking_case(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray], int]:
    n_items = draw(st.integers(1, 30))
    n_users = draw(st.integers(1, 8))
    width = draw(st.integers(0, 12))
    k = draw(st.integers(1, 12))
    rows = []
    relevant = []
    for _ in range(n_users):
        items = draw(st.lists(st.integers(0, n_items - 1), unique=True, max_size=min(width, n_items)))
        n_pad = width - len(items)
        pad_at_end = draw(st.booleans())
        row = items + [-1] * n_pad if pad_at_end else draw(st.permutations(items + [-1] * n_pad))
        rows.append(row)
        relevant.append(np.array(draw(st.lists(st.integers(0, n_items - 1), max_size=15)), dtype=np.int64))
    topk = np.array(rows, dtype=np.int64).reshape(n_users, width)
    return topk, relevant, k


@settings(max_examples=300, deadline=None)
@given(ranking_case())
def test_batch_agrees_with_per_list(case: tuple[np.ndarray, list[np.ndarray], int]) -> None:
    topk, relevant, k = case
    batch = ranking_metrics(topk, relevant, k)
    lists = [per_list(row.tolist(), set(rel.tolist()), k) for row, rel in zip(topk, relevant, strict=True)]
    for key in ranking_metric_keys(k):
        expected = float(np.mean([values[key] for values in lists]))
        assert math.isclose(batch[key], expected, rel_tol=1e-12, abs_tol=1e-12), (key, batch[key], expected)


# ------------------------------------------------------------------------------------------ beyond accuracy


def test_catalog_coverage_ignores_padding() -> None:
    topk = np.array([[0, 1, -1], [1, 2, -1]])
    assert catalog_coverage(topk, 5) == pytest.approx(3 / 5)
    assert catalog_coverage(topk, 0) == 0.0
    assert catalog_coverage(np.full((2, 2), -1), 5) == 0.0


def test_novelty_is_mean_self_information() -> None:
    counts = np.array([4, 2, 0, 1])
    topk = np.array([[0, 1], [2, -1]])  # -log2(4/4)=0, -log2(2/4)=1, count 0 -> 1: -log2(1/4)=2
    assert novelty(topk, counts, 4) == pytest.approx(1.0)
    assert novelty(np.full((1, 3), -1), counts, 4) == 0.0


def test_average_popularity_is_mean_training_count() -> None:
    counts = np.array([4, 2, 0, 1])
    topk = np.array([[0, 1], [2, -1], [3, 3]])
    assert average_popularity(topk, counts) == pytest.approx((4 + 2 + 0 + 1 + 1) / 5)
    assert average_popularity(np.full((1, 1), -1), counts) == 0.0


def test_personalization_is_one_minus_the_mean_pairwise_overlap() -> None:
    # overlaps over k=2: rows 0-1 share item 0 (1/2), rows 0-2 and 1-2 share nothing
    assert personalization(np.array([[0, 1], [0, 2], [3, 4]]), 2) == pytest.approx(1 - (1 / 2) / 3)
    assert personalization(np.array([[0, 1], [1, 0], [0, 1]]), 2) == pytest.approx(0.0)
    assert personalization(np.array([[0, 1], [2, 3]]), 2) == pytest.approx(1.0)


def test_personalization_counts_padding_as_empty_and_only_the_first_k() -> None:
    assert personalization(np.array([[0, -1], [1, -1]]), 2) == pytest.approx(1.0)
    assert personalization(np.array([[0, -1], [0, -1]]), 2) == pytest.approx(0.5)  # a short list is over k
    assert personalization(np.array([[0, 1, 5], [0, 2, 5]]), 2) == pytest.approx(0.5)  # column 3 is past k
    assert personalization(np.array([[0, 1]]), 2) is None  # no pair of users


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(-1, 12), min_size=4, max_size=4, unique=True), min_size=2, max_size=8))
def test_personalization_matches_every_pair(rows: list[list[int]]) -> None:
    k = 3
    lists = [{i for i in row[:k] if i >= 0} for row in rows]
    overlaps = [len(a & b) / k for n, a in enumerate(lists) for b in lists[n + 1 :]]
    assert personalization(np.array(rows), k) == pytest.approx(1 - float(np.mean(overlaps)))


def test_popularity_stratified_recall_hand_computed() -> None:
    counts = np.array([4, 1, 9, 0])  # weights 1/2, 1, 1/3 and (count 0 -> 1) 1
    topk = np.array([[0, 1], [0, 2], [3, 0]])
    relevant = [np.array([1, 2]), np.array([0, 3, 3]), np.array([], dtype=np.int64)]
    # row 0 hits 1: 1 / (1 + 1/3); row 1 hits 0: (1/2) / (1/2 + 1); row 2 has nothing relevant: 0
    expected = (3 / 4 + 1 / 3 + 0) / 3
    assert popularity_stratified_recall(topk, relevant, counts, 2) == pytest.approx(expected)
    assert popularity_stratified_recall(topk, relevant, counts, 1) == pytest.approx((0 + 1 / 3 + 0) / 3)
    plain = np.mean([recall_at_k(row, rel, 2) for row, rel in zip(topk, relevant, strict=True)])
    assert popularity_stratified_recall(topk, relevant, counts, 2, gamma=0.0) == pytest.approx(plain)


def test_popularity_stratified_recall_rewards_the_rarely_rated_hit() -> None:
    counts = np.array([100, 1])
    relevant = [np.array([0, 1])]
    rare = popularity_stratified_recall(np.array([[1]]), relevant, counts, 1)
    popular = popularity_stratified_recall(np.array([[0]]), relevant, counts, 1)
    assert rare == pytest.approx(1 / 1.1) and popular == pytest.approx(0.1 / 1.1)


# items 0: A, 1: B, 2: A|B, 3: no genre
GENRES = genre_matrix(["A", "B", "A|B", ""])


def test_genre_matrix_reads_the_catalog_column() -> None:
    assert GENRES.tolist() == [[True, False], [False, True], [True, True], [False, False]]
    assert genre_matrix(["Drama|Comedy", None, "Comedy"]).tolist() == [[True, True], [False, False], [True, False]]


def test_genre_miscalibration_hand_computed() -> None:
    topk = np.array([[0, 2], [0, 3], [1, 0], [3, -1]])
    liked = [np.array([0]), np.array([0, 1, 1]), np.array([3]), np.array([2])]
    alpha = 0.01
    # row 0: p = (1, 0); the list's genres A + (A, B)/2 give q = (3/4, 1/4)
    row0 = math.log(1 / ((1 - alpha) * 0.75 + alpha))
    # row 1: p = (1/2, 1/2) (the repeated like counts once); item 3 has no genre, so q = (1, 0)
    row1 = 0.5 * math.log(0.5 / ((1 - alpha) + alpha * 0.5)) + 0.5 * math.log(0.5 / (alpha * 0.5))
    # row 2 liked only a movie without genres: left out. Row 3: a list without genres scores log(1 / alpha)
    row3 = math.log(1 / alpha)
    assert genre_miscalibration(topk, liked, GENRES, 2, alpha) == pytest.approx((row0 + row1 + row3) / 3)


def test_genre_miscalibration_is_zero_when_the_mixes_match_and_none_without_profiles() -> None:
    assert genre_miscalibration(np.array([[2, 3]]), [np.array([0, 1])], GENRES, 2) == pytest.approx(0.0)
    assert genre_miscalibration(np.array([[2, 3]]), [np.array([0, 1])], GENRES, 1) == pytest.approx(0.0)
    assert genre_miscalibration(np.array([[0, 1]]), [np.array([3])], GENRES, 2) is None
    assert genre_miscalibration(np.array([[0, 1]]), [np.array([], dtype=np.int64)], GENRES, 2) is None


def test_genre_miscalibration_grows_as_the_list_drifts_from_the_likes() -> None:
    liked = [np.array([0])]  # all A
    scores = [genre_miscalibration(np.array([top]), liked, GENRES, 2) for top in ([0, 0], [0, 1], [1, 1])]
    assert scores[0] is not None and scores[1] is not None and scores[2] is not None
    assert scores[0] < scores[1] < scores[2]


def test_new_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        personalization(np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="at least 1"):
        personalization(np.array([[0, 1]]), 0)
    with pytest.raises(ValueError, match="beyond"):
        popularity_stratified_recall(np.array([[5]]), [np.array([0])], np.array([1, 1]), 1)
    with pytest.raises(ValueError, match="rows"):
        genre_miscalibration(np.array([[0]]), [np.array([0]), np.array([1])], GENRES, 1)
    with pytest.raises(ValueError, match="beyond"):
        genre_miscalibration(np.array([[9]]), [np.array([0])], GENRES, 1)
    with pytest.raises(ValueError, match="alpha"):
        genre_miscalibration(np.array([[0]]), [np.array([0])], GENRES, 1, alpha=0.0)
