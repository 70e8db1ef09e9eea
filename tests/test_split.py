"""Splits: no rating lost or duplicated, temporal order respected, seeded determinism, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.data.ratings import Ratings, Vocabulary
from movierec.data.split import (
    Split,
    global_temporal_split,
    holdout_items,
    holdout_users,
    kfold_splits,
    random_split,
    split_by_mask,
    user_temporal_split,
    validation_split,
)
from movierec.errors import MovieRecError


def make_ratings(users: list[int] | np.ndarray, items: list[int] | np.ndarray, stamps=None) -> Ratings:
    """Ratings whose star value is the row number, so each row can be identified after a split."""
    users = np.asarray(users, dtype=np.int32)
    items = np.asarray(items, dtype=np.int32)
    n = users.shape[0]
    stamps = np.zeros(n, dtype=np.int64) if stamps is None else np.asarray(stamps, dtype=np.int64)
    n_users = int(users.max()) + 1 if n else 1
    n_items = int(items.max()) + 1 if n else 1
    return Ratings(
        users,
        items,
        np.arange(n, dtype=np.float32),
        stamps,
        Vocabulary(np.arange(1, n_users + 2, dtype=np.int64)),  # one user without ratings
        Vocabulary(np.arange(1, n_items + 2, dtype=np.int64)),  # one movie without ratings
    )


def row_ids(ratings: Ratings) -> np.ndarray:
    return ratings.ratings.astype(np.int64)


def assert_partition(ratings: Ratings, split: Split) -> None:
    """Every row on exactly one side, each side in the input's order, vocabularies shared."""
    train, test = row_ids(split.train), row_ids(split.test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(ratings)))
    assert np.intersect1d(train, test).size == 0
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    for side in split:
        assert side.user_vocab is ratings.user_vocab and side.item_vocab is ratings.item_vocab
        ids = row_ids(side)
        assert np.array_equal(side.users, ratings.users[ids]) and np.array_equal(side.items, ratings.items[ids])
        assert np.array_equal(side.timestamps, ratings.timestamps[ids])


@st.composite
def ratings_strategy(draw: st.DrawFn, min_size: int = 0, max_size: int = 80) -> Ratings:
    n = draw(st.integers(min_size, max_size))
    users = draw(arrays(np.int32, n, elements=st.integers(0, 6)))
    items = draw(arrays(np.int32, n, elements=st.integers(0, 6)))
    wide = draw(st.booleans())  # a range too wide for the packed sort key, or a small one with many ties
    stamps = draw(arrays(np.int64, n, elements=st.integers(-(2**40), 2**40) if wide else st.integers(0, 12)))
    return make_ratings(users, items, stamps)


fractions = st.floats(0.01, 0.99)
seeds = st.integers(0, 2**32)


@pytest.fixture(scope="module")
def medium() -> Ratings:
    rng = np.random.default_rng(7)
    n = 3000
    return make_ratings(rng.integers(0, 100, n), rng.integers(0, 200, n), rng.integers(0, 10**6, n))


# ---------------------------------------------------------------------------------------- random splits


@given(ratings_strategy(), fractions, seeds)
def test_random_split_partitions_rows(ratings: Ratings, fraction: float, seed: int) -> None:
    split = random_split(ratings, test_fraction=fraction, seed=seed)
    assert_partition(ratings, split)
    n = len(ratings)
    expected = min(max(math.floor(n * fraction + 0.5), 1), n - 1) if n >= 2 else 0
    assert len(split.test) == expected


@given(ratings_strategy(), fractions, seeds)
def test_random_split_holds_out_numpys_permutation(ratings: Ratings, fraction: float, seed: int) -> None:
    """The test rows are the first of ``default_rng(seed).permutation(n)``, as they always were: a run folder that
    keeps a reference to the cached ratings rebuilds its split so, whatever makes it faster."""
    split = random_split(ratings, test_fraction=fraction, seed=seed)
    first = np.random.default_rng(seed).permutation(len(ratings))[: len(split.test)]
    assert np.array_equal(row_ids(split.test), np.sort(first))


@given(ratings_strategy(), fractions, seeds)
def test_validation_split_is_random_split(ratings: Ratings, fraction: float, seed: int) -> None:
    validation = validation_split(ratings, fraction=fraction, seed=seed)
    random = random_split(ratings, test_fraction=fraction, seed=seed)
    assert np.array_equal(row_ids(validation.test), row_ids(random.test))
    assert_partition(ratings, validation)


@pytest.mark.parametrize(
    "split",
    [
        lambda r, s: random_split(r, 0.2, seed=s),
        lambda r, s: validation_split(r, 0.2, seed=s),
        lambda r, s: holdout_users(r, 10, seed=s),
        lambda r, s: holdout_items(r, fraction=0.1, seed=s),
        lambda r, s: kfold_splits(r, 4, seed=s)[1],
    ],
    ids=["random", "validation", "holdout_users", "holdout_items", "kfold"],
)
def test_seeded_splits_are_deterministic(medium: Ratings, split) -> None:
    first, again, other = split(medium, 3), split(medium, 3), split(medium, 4)
    assert np.array_equal(row_ids(first.test), row_ids(again.test))
    assert not np.array_equal(row_ids(first.test), row_ids(other.test))


def test_split_unpacks_and_by_mask_checks_shape(medium: Ratings) -> None:
    train, test = split_by_mask(medium, medium.users == 3)
    assert np.all(test.users == 3) and not np.any(train.users == 3)
    with pytest.raises(MovieRecError, match="one entry per rating"):
        split_by_mask(medium, np.ones(5, dtype=bool))


# -------------------------------------------------------------------------------------- temporal splits


def assert_user_order(split: Split) -> None:
    """Per user, no test rating is earlier than a training rating (ties: test rows come later)."""
    for user in np.unique(split.test.users):
        train = split.train.users == user
        test = split.test.users == user
        assert train.any(), "every user keeps a training rating"
        train_keys = zip(split.train.timestamps[train], row_ids(split.train)[train], strict=True)
        test_keys = zip(split.test.timestamps[test], row_ids(split.test)[test], strict=True)
        assert min(test_keys) > max(train_keys)


@given(ratings_strategy(), st.integers(1, 5))
def test_user_temporal_last_k(ratings: Ratings, k: int) -> None:
    split = user_temporal_split(ratings, last_k=k)
    assert_partition(ratings, split)
    assert_user_order(split)
    counts = ratings.user_counts()
    expected = np.minimum(k, np.maximum(counts - 1, 0))
    assert np.array_equal(np.bincount(split.test.users, minlength=ratings.n_users), expected)


@given(ratings_strategy(), fractions)
def test_user_temporal_last_fraction(ratings: Ratings, fraction: float) -> None:
    split = user_temporal_split(ratings, last_fraction=fraction)
    assert_partition(ratings, split)
    assert_user_order(split)
    counts = ratings.user_counts()
    wanted = np.maximum(np.floor(counts * fraction + 0.5), 1).astype(np.int64)
    expected = np.minimum(wanted, np.maximum(counts - 1, 0))
    assert np.array_equal(np.bincount(split.test.users, minlength=ratings.n_users), expected)


def test_user_temporal_breaks_ties_by_position() -> None:
    ratings = make_ratings([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 0, 1], [5, 3, 5, 1, 9, 9])
    assert row_ids(user_temporal_split(ratings, last_k=1).test).tolist() == [2, 5]
    assert row_ids(user_temporal_split(ratings, last_k=2).test).tolist() == [0, 2, 5]
    assert row_ids(user_temporal_split(ratings, last_fraction=0.5).test).tolist() == [0, 2, 5]


def test_user_temporal_orders_wide_timestamp_ranges() -> None:
    ratings = make_ratings([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [2**40, -(2**40), 2**40, 7, -3])
    assert row_ids(user_temporal_split(ratings, last_k=2).test).tolist() == [0, 2, 3]


def test_user_temporal_keeps_single_rating_users_in_train() -> None:
    ratings = make_ratings([0, 1, 1], [0, 0, 1], [1, 1, 2])
    split = user_temporal_split(ratings, last_k=3)
    assert row_ids(split.train).tolist() == [0, 1] and row_ids(split.test).tolist() == [2]


@given(ratings_strategy(), st.integers(-1, 14))
def test_global_temporal_split(ratings: Ratings, cut: int) -> None:
    split = global_temporal_split(ratings, cut)
    assert_partition(ratings, split)
    assert np.all(split.train.timestamps < cut) and np.all(split.test.timestamps >= cut)


# ------------------------------------------------------------------------------------------------ k-fold


@given(ratings_strategy(min_size=2), st.integers(2, 6), seeds)
def test_kfold_covers_each_row_once(ratings: Ratings, k: int, seed: int) -> None:
    k = min(k, len(ratings))
    folds = kfold_splits(ratings, k=k, seed=seed)
    assert len(folds) == k
    for split in folds:
        assert_partition(ratings, split)
    tested = np.concatenate([row_ids(split.test) for split in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(ratings)))
    sizes = [len(split.test) for split in folds]
    assert max(sizes) - min(sizes) <= 1


# ------------------------------------------------------------------------------------------------ hold-out


@settings(max_examples=60)
@given(ratings_strategy(min_size=2), st.data())
def test_holdout_users_and_items_remove_them_from_training(ratings: Ratings, data: st.DataObject) -> None:
    for holdout, column in ((holdout_users, "users"), (holdout_items, "items")):
        present = np.unique(getattr(ratings, column))
        if present.size < 2:
            with pytest.raises(MovieRecError, match="at least 2"):
                holdout(ratings, 1)
            continue
        count = data.draw(st.integers(1, present.size - 1))
        split = holdout(ratings, count, seed=data.draw(seeds))
        assert_partition(ratings, split)
        held = np.unique(getattr(split.test, column))
        assert held.size == count
        assert np.intersect1d(held, getattr(split.train, column)).size == 0
        by_fraction = holdout(ratings, fraction=data.draw(fractions), seed=0)
        assert_partition(ratings, by_fraction)
        assert 1 <= np.unique(getattr(by_fraction.test, column)).size <= present.size - 1


# ------------------------------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda r: random_split(r, 0.0), "test_fraction"),
        (lambda r: random_split(r, 1.0), "test_fraction"),
        (lambda r: random_split(r, -0.5), "test_fraction"),
        (lambda r: random_split(r, float("nan")), "test_fraction"),
        (lambda r: random_split(r, True), "test_fraction"),
        (lambda r: random_split(r, 0.1, seed=-1), "seed"),
        (lambda r: random_split(r, 0.1, seed=1.5), "seed"),
        (lambda r: validation_split(r, 1.5), "fraction"),
        (lambda r: user_temporal_split(r), "last_k or last_fraction"),
        (lambda r: user_temporal_split(r, last_k=1, last_fraction=0.1), "last_k or last_fraction"),
        (lambda r: user_temporal_split(r, last_k=0), "last_k"),
        (lambda r: user_temporal_split(r, last_k=2.0), "last_k"),
        (lambda r: user_temporal_split(r, last_fraction=1.0), "last_fraction"),
        (lambda r: global_temporal_split(r, 1.5), "cut_timestamp"),
        (lambda r: global_temporal_split(r, "2019"), "cut_timestamp"),
        (lambda r: kfold_splits(r, 1), "k must"),
        (lambda r: kfold_splits(r, 3001), "k must"),
        (lambda r: kfold_splits(r, 2.5), "k must"),
        (lambda r: holdout_users(r), "n_users or fraction"),
        (lambda r: holdout_users(r, 5, fraction=0.1), "n_users or fraction"),
        (lambda r: holdout_users(r, 0), "n_users"),
        (lambda r: holdout_users(r, 100), "n_users"),
        (lambda r: holdout_users(r, fraction=0.0), "fraction"),
        (lambda r: holdout_items(r, 10**6), "n_items"),
    ],
)
def test_bad_arguments_raise_one_sentence(medium: Ratings, call, named: str) -> None:
    with pytest.raises(MovieRecError) as caught:
        call(medium)
    message = str(caught.value)
    assert named in message
    assert message.endswith(".") and "\n" not in message
