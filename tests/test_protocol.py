"""The evaluation protocol on a tiny hand-built split: exclusions, unknown rows, oracle and popularity."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from movierec.data.ratings import Ratings, Vocabulary
from movierec.errors import DataError
from movierec.evaluate import protocol
from movierec.evaluate.protocol import (
    RankingSettings,
    evaluate_ranking,
    evaluate_rankings,
    evaluate_ratings,
    popularity_scores,
    rank_candidates,
    ranked_sample,
    topk_items,
)

# Users 1-3 have training ratings; user 4 appears only in test. Movie 50 appears only in test.
# Train:  u1: 10=5, 20=3        u2: 10=4, 30=2, 40=1        u3: 20=4
# Test:   u1: 30=5, 40=4, 50=5  u2: 20=5, 50=2              u3: 10=2 (nothing relevant)   u4: 10=4.5
ROWS = [
    (1, 10, 5.0, "train"),
    (1, 20, 3.0, "train"),
    (2, 10, 4.0, "train"),
    (2, 30, 2.0, "train"),
    (2, 40, 1.0, "train"),
    (3, 20, 4.0, "train"),
    (1, 30, 5.0, "test"),
    (1, 40, 4.0, "test"),
    (1, 50, 5.0, "test"),
    (2, 20, 5.0, "test"),
    (2, 50, 2.0, "test"),
    (3, 10, 2.0, "test"),
    (4, 10, 4.5, "test"),
]


@pytest.fixture
def split() -> tuple[Ratings, Ratings]:
    frame = pd.DataFrame(ROWS, columns=["userId", "movieId", "rating", "side"])
    ratings = Ratings.from_frame(frame)
    is_test = (frame["side"] == "test").to_numpy()
    return ratings.take(~is_test), ratings.take(is_test)


def idx(vocab: Vocabulary, *raw: int) -> list[int]:
    return [int(i) for i in vocab.index(list(raw))]


def dense(ratings: Ratings) -> np.ndarray:
    matrix = np.zeros((ratings.n_users, ratings.n_items), dtype=np.float32)
    matrix[ratings.users, ratings.items] = ratings.ratings
    return matrix


# ------------------------------------------------------------------------------------------------- topk_items


def test_topk_items_sorts_descending_and_pads() -> None:
    scores = np.array([[0.1, 0.5, -np.inf, 0.3], [-np.inf, -np.inf, -np.inf, -np.inf]])
    assert topk_items(scores, 3).tolist() == [[1, 3, 0], [-1, -1, -1]]
    assert topk_items(scores, 6).tolist() == [[1, 3, 0, -1, -1, -1], [-1] * 6]
    assert topk_items(scores, 1).tolist() == [[1], [-1]]


def test_topk_items_breaks_ties_by_index_and_skips_nan() -> None:
    assert topk_items(np.array([[1.0, 2.0, 1.0, 1.0]]), 4).tolist() == [[1, 0, 2, 3]]
    assert topk_items(np.array([[np.nan, 2.0, 1.0]]), 3).tolist() == [[1, 2, -1]]


def test_topk_items_edge_shapes() -> None:
    assert topk_items(np.empty((0, 5)), 3).shape == (0, 3)
    assert topk_items(np.empty((2, 0)), 3).tolist() == [[-1] * 3] * 2
    with pytest.raises(ValueError, match="at least 1"):
        topk_items(np.zeros((1, 3)), 0)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 40)),
        elements=st.floats(-1e6, 1e6),
        unique=True,
    ),
    st.integers(1, 50),
)
def test_topk_items_matches_full_sort(scores: np.ndarray, k: int) -> None:
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    got = topk_items(scores, k)
    assert got[:, : expected.shape[1]].tolist() == expected.tolist()
    assert (got[:, expected.shape[1] :] == -1).all()


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 200)), elements=st.sampled_from([0, 1, 2])),
    st.integers(1, 12),
)
def test_topk_items_breaks_every_tie_by_the_lower_index(scores: np.ndarray, k: int) -> None:
    """Ties at the k-th place too: the lists never depend on how torch's top-k picks among equals."""
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert topk_items(scores, k)[:, : expected.shape[1]].tolist() == expected.tolist()


# ------------------------------------------------------------------------------------------ evaluate_ratings


def test_evaluate_ratings_predicts_every_row_and_counts_unknowns(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    calls: list[tuple[np.ndarray, np.ndarray]] = []

    def constant(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        calls.append((users, items))
        return np.full(users.shape, 3.0, dtype=np.float32)

    result = evaluate_ratings(constant, train, test)
    # errors: 2, 1, 2, 2, -1, -1, 1.5 over all 7 test rows (u1-50, u2-50 and u4-10 are unknown, still counted)
    assert result["n_test"] == 7
    assert result["n_unknown"] == 3
    assert result["rmse"] == pytest.approx(math.sqrt(17.25 / 7))
    assert result["mae"] == pytest.approx(10.5 / 7)
    assert sum(len(users) for users, _ in calls) == 7


def test_evaluate_ratings_perfect_predictor(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    truth = dense(test)
    result = evaluate_ratings(lambda u, i: truth[u, i], train, test)
    assert result["rmse"] == 0.0
    assert result["mae"] == 0.0


def test_evaluate_ratings_rejects_bad_predictions(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    with pytest.raises(ValueError, match="shape"):
        evaluate_ratings(lambda u, i: np.zeros(2), train, test)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ratings(lambda u, i: np.full(u.shape, np.nan), train, test)
    with pytest.raises(DataError, match="empty"):
        evaluate_ratings(lambda u, i: np.zeros(u.shape), train, test.take(np.zeros(len(test), dtype=bool)))


def test_evaluate_ratings_rejects_different_vocabularies(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    other = Ratings.from_frame(train.to_frame())  # users 1-3, movies 10-40 only
    with pytest.raises(ValueError, match="vocabularies"):
        evaluate_ratings(lambda u, i: np.zeros(u.shape), other, test)


# ------------------------------------------------------------------------------------------ evaluate_ranking


def test_train_items_and_unrated_movies_are_never_recommended(split: tuple[Ratings, Ratings]) -> None:
    train, _ = split
    users, items = train.user_vocab, train.item_vocab
    seen = dense(train)
    cheater = seen + 100.0  # scores each user's own training movies highest
    topk = rank_candidates(lambda u: cheater[u], train, np.arange(train.n_users), k=4, chunk_size=3)
    expected = {
        1: [*idx(items, 30, 40), -1, -1],
        2: [*idx(items, 20), -1, -1, -1],
        3: [*idx(items, 10, 30, 40), -1],
        4: idx(items, 10, 20, 30, 40),  # unknown user: every rated movie is a candidate
    }
    for raw_user, row in expected.items():
        assert topk[idx(users, raw_user)[0]].tolist() == row
    for user in range(train.n_users):
        rated = set(train.items[train.users == user].tolist())
        assert not rated & set(topk[user].tolist())
        assert idx(items, 50)[0] not in topk[user]
    assert (cheater == seen + 100.0).all()  # the scorer's array was not written to


def test_oracle_scorer_gets_perfect_ndcg(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    truth = dense(test)
    result = evaluate_ranking(lambda u: truth[u], train, test, k=2)
    # u3 has no relevant movie and is left out; u1 {30, 40, 50}, u2 {20}, u4 {10}
    assert result["n_ranked_users"] == 3
    assert result["ndcg@2"] == pytest.approx(1.0)
    assert result["map@2"] == pytest.approx(1.0)
    assert result["hit_rate@2"] == 1.0
    assert result["precision@2"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert result["recall@2"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert result["coverage@2"] == pytest.approx(1.0)


def test_unreachable_relevant_movie_still_counts(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    truth = dense(test)
    result = evaluate_ranking(lambda u: truth[u], train, test, k=3)
    # u1's relevant movie 50 has no training rating: its ideal DCG is over 3 items but only 30, 40 can hit
    u1 = (1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert result["ndcg@3"] == pytest.approx((u1 + 1 + 1) / 3)


def test_popularity_baseline_hand_computed(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    result = evaluate_ranking(popularity_scores(train), train, test, k=2, chunk_size=1)
    # train counts 10:2 20:2 30:1 40:1 50:0 over 3 training users
    # u1 -> [30, 40], u2 -> [20, -], u4 -> [10, 20]
    assert result == pytest.approx(
        {
            "precision@2": (1 + 1 / 2 + 1 / 2) / 3,
            "recall@2": (2 / 3 + 1 + 1) / 3,
            "ndcg@2": 1.0,
            "map@2": 1.0,
            "hit_rate@2": 1.0,
            "coverage@2": 1.0,
            "personalization@2": 1 - (0 + 0 + 1 / 2) / 3,  # only u2's and u4's lists overlap, in 20
            "pop_recall@2": (2 / 3 + 1 + 1) / 3,  # u1's unreachable 50 weighs as if rated once, like 30 and 40
            "novelty@2": (2 * math.log2(3) + 3 * math.log2(3 / 2)) / 5,
            "avg_popularity@2": (1 + 1 + 2 + 2 + 2) / 5,
            "n_ranked_users": 3,
            "n_rankable_users": 3,
        }
    )


def test_miscalibration_compares_training_likes_with_the_list(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    order = idx(train.item_vocab, 10, 20, 30, 40, 50)
    genres = np.zeros((train.n_items, 2), dtype=bool)
    for movie, row in zip(order, ([1, 0], [0, 1], [1, 1], [0, 1], [1, 0]), strict=True):
        genres[movie] = row
    result = evaluate_ranking(popularity_scores(train), train, test, k=2, genres=genres)
    # liked in training (>= 4): u1 {10} and u2 {10}, both all A; u4 has no training rating and is left out.
    # u1's list [30, 40] mixes (A, B) = (1/4, 3/4); u2's list [20] is all B
    u1 = math.log(1 / (0.99 * 0.25 + 0.01))
    u2 = math.log(1 / 0.01)
    assert result["miscalibration@2"] == pytest.approx((u1 + u2) / 2)
    assert "miscalibration@2" not in evaluate_ranking(popularity_scores(train), train, test, k=2)
    with pytest.raises(ValueError, match="one row per movie"):
        evaluate_ranking(popularity_scores(train), train, test, genres=genres[:2])


def test_personalization_needs_two_ranked_users(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    truth = dense(test)
    assert "personalization@2" not in evaluate_ranking(lambda u: truth[u], train, test, k=2, max_users=1)


def test_chunk_size_does_not_change_results(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    rng = np.random.default_rng(0)
    noise = rng.random((train.n_users, train.n_items))
    results = [
        evaluate_ranking(lambda u: noise[u], train, test, k=3, relevance_threshold=2.0, chunk_size=c)
        for c in (1, 2, 1024)
    ]
    assert results[0] == results[1] == results[2]
    assert results[0]["n_ranked_users"] == 4


def test_a_chunk_holds_at_most_the_score_budget(split: tuple[Ratings, Ratings], monkeypatch) -> None:
    """A large catalogue ranks fewer users at once (never fewer than MIN_CHUNK), with the same lists."""
    train, _ = split
    noise = np.random.default_rng(1).random((train.n_users, train.n_items))
    whole = rank_candidates(lambda u: noise[u], train, np.arange(train.n_users), k=3)
    sizes: list[int] = []

    def score(users: np.ndarray) -> np.ndarray:
        sizes.append(users.size)
        return noise[users]

    monkeypatch.setattr(protocol, "MIN_CHUNK", 1)
    monkeypatch.setattr(protocol, "SCORE_BUDGET", 2 * train.n_items)
    np.testing.assert_array_equal(rank_candidates(score, train, np.arange(train.n_users), k=3), whole)
    assert max(sizes) == 2 and sum(sizes) == train.n_users


def test_max_users_ranks_a_seeded_sample(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    truth = dense(test)
    seen: list[int] = []

    def oracle(users: np.ndarray) -> np.ndarray:
        seen.extend(int(u) for u in users)
        return truth[users]

    sampled = evaluate_ranking(oracle, train, test, k=2, max_users=2)
    assert (sampled["n_ranked_users"], sampled["n_rankable_users"]) == (2, 3)
    assert len(seen) == 2 and sampled["ndcg@2"] == pytest.approx(1.0)
    again = evaluate_ranking(lambda u: truth[u], train, test, k=2, max_users=2)
    assert again == sampled  # the same users every time
    assert evaluate_ranking(lambda u: truth[u], train, test, k=2, max_users=3)["n_ranked_users"] == 3


def test_popularity_scores_rows_are_training_counts(split: tuple[Ratings, Ratings]) -> None:
    train, _ = split
    scores = popularity_scores(train)(np.array([0, 3], dtype=np.int32))
    assert scores.shape == (2, train.n_items)
    assert scores[1].tolist() == train.item_counts().tolist()


def test_ranking_with_no_relevant_user_is_an_error(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    with pytest.raises(DataError, match="threshold"):
        evaluate_ranking(popularity_scores(train), train, test, relevance_threshold=6.0)


def test_ranking_rejects_bad_scores(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(lambda u: np.zeros((len(u), 2)), train, test)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(lambda u: np.full((len(u), train.n_items), np.nan), train, test)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate_ranking(popularity_scores(train), train, test, k=0)
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_ranking(popularity_scores(train), train, test, chunk_size=0)


def test_several_scorers_in_one_pass_give_each_scorer_s_own_result(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    rng = np.random.default_rng(1)
    tables = [rng.random((train.n_users, train.n_items)) for _ in range(3)] + [dense(test)]
    calls: list[int] = []

    def scores(users: np.ndarray) -> Iterator[np.ndarray]:
        calls.append(len(users))
        for table in tables:
            yield table[users]

    settings = RankingSettings(k=2, relevance_threshold=2.0, chunk_size=2)
    together = evaluate_rankings(scores, len(tables), train, test, settings)
    alone = [evaluate_ranking(lambda u, t=t: t[u], train, test, k=2, relevance_threshold=2.0) for t in tables]
    assert together == alone
    assert together[0] != together[3]  # the scorers differ, so equality above is no accident
    assert calls == [2, 2]  # one call per chunk of users, not one per scorer


def test_a_scorer_family_of_the_wrong_size_is_refused(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    two = lambda users: (popularity_scores(train)(users) for _ in range(2))  # noqa: E731
    with pytest.raises(ValueError, match="gave 2 score matrices for a chunk; expected 3"):
        evaluate_rankings(two, 3, train, test)
    with pytest.raises(ValueError, match="more than 1 score matrices"):
        evaluate_rankings(two, 1, train, test)


def test_ranked_sample_names_the_users_evaluate_ranking_scores(split: tuple[Ratings, Ratings]) -> None:
    train, test = split
    scored: list[int] = []

    def score(users: np.ndarray) -> np.ndarray:
        scored.extend(int(u) for u in users)
        return np.zeros((len(users), train.n_items))

    for max_users in (None, 3, 2, 1):
        scored.clear()
        evaluate_ranking(score, train, test, k=2, max_users=max_users)
        assert ranked_sample(test, max_users).tolist() == scored
    assert ranked_sample(test, 2).size == 2
