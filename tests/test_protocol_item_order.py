"""Item-ordered scorers (popularity, the global-mean and bias baselines) are ranked from one order of the movies,
and their lists are exactly those of ranking the whole score matrix, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.ratings import Ratings, RatingScale, Vocabulary, no_timestamps
from movierec.evaluate import item_order
from movierec.evaluate.item_order import ItemOrderedScore, model_item_orders, rank_in_item_order
from movierec.evaluate.protocol import popularity_scores, rank_candidates
from movierec.models.baselines import bias_params, global_mean_params
from movierec.models.factors import FactorModel


def random_train(rng: np.random.Generator, n_users: int, n_items: int, density: float) -> Ratings:
    """Ratings of a random share of the pairs; some movies (and users) end up with none."""
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    stars = rng.choice(np.arange(0.5, 5.5, 0.5), users.size).astype(np.float32)
    vocab = Vocabulary(np.arange(n_users, dtype=np.int64)), Vocabulary(np.arange(n_items, dtype=np.int64))
    return Ratings(users.astype(np.int32), items.astype(np.int32), stars, no_timestamps(users.size), *vocab)


def full_pass(score: ItemOrderedScore, train: Ratings, users: np.ndarray, k: int) -> np.ndarray:
    """The lists of ranking the whole score matrix (a plain callable is no item-ordered scorer)."""
    return rank_candidates(lambda chunk: score(chunk), train, users, k)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_items=st.integers(1, 40),
    distinct_keys=st.integers(1, 6),
    k=st.integers(1, 6),
    density=st.floats(0.0, 0.9),
)
def test_item_order_lists_are_the_full_pass_lists_with_ties(
    seed: int, n_items: int, distinct_keys: int, k: int, density: float
) -> None:
    rng = np.random.default_rng(seed)
    train = random_train(rng, 6, n_items, density)
    key = rng.integers(0, distinct_keys, n_items).astype(np.float32) / 2
    offset = rng.normal(size=train.n_users).astype(np.float32)

    def clipped(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Non-decreasing in the key; the clip and the coarse rounding tie movies whose keys differ."""
        return np.round(np.clip(offset[users, None] + key[None, items], -0.5, 1.5), 0).astype(np.float32)

    score = ItemOrderedScore(key, clipped)
    users = np.arange(train.n_users)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(item_order, "FIRST_PREFIX", 1)  # a prefix of 4k movies: most users need a longer one
        got = rank_in_item_order(score, train, users, k)
    np.testing.assert_array_equal(got, full_pass(score, train, users, k))


def test_users_the_first_prefix_does_not_settle_get_a_longer_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    train = random_train(rng, 30, 200, 0.3)
    counts = popularity_scores(train)
    asked: list[int] = []

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        asked.append(items.size)
        return counts.score(users, items)

    monkeypatch.setattr(item_order, "FIRST_PREFIX", 1)
    users = np.arange(train.n_users)
    got = rank_in_item_order(ItemOrderedScore(counts.key, score), train, users, 3)
    np.testing.assert_array_equal(got, full_pass(counts, train, users, 3))
    assert asked[0] == 12 + 2 and max(asked) > asked[0]  # 4k movies and two beyond, then more for some users


@pytest.mark.parametrize("spread", [0.1, 3.0])  # 3: most users' predictions clip at the scale's ends
def test_baseline_models_rank_from_their_order_with_the_full_pass_lists(spread: float) -> None:
    rng = np.random.default_rng(0)
    train = random_train(rng, 40, 120, 0.25)
    scale = RatingScale(0.5, 5.0, 0.5)
    biases = bias_params(train, scale)
    params = [
        global_mean_params(train, scale),
        biases,
        type(biases)(**{**biases.__dict__, "user_bias": (biases.user_bias * 0 + rng.normal(0, spread, 40))}),
    ]
    users = np.arange(train.n_users)
    for p in params:
        model = FactorModel(p, "baseline")
        orders = model_item_orders(model)
        assert orders is not None
        for order, full in zip(orders, (model.rank_scores, model.score_items), strict=True):
            expected = rank_candidates(lambda chunk, full=full: full(chunk), train, users, 10)
            np.testing.assert_array_equal(rank_candidates(order, train, users, 10), expected)


def test_models_with_factors_or_a_weighted_prior_are_not_item_ordered() -> None:
    train = random_train(np.random.default_rng(1), 5, 9, 0.5)
    baseline = FactorModel(bias_params(train, RatingScale(0.5, 5.0, 0.5)))
    assert model_item_orders(baseline) is not None
    assert model_item_orders(baseline.with_rank_weight(0.5)) is None  # prior weighed in: not the bias's order
    rng = np.random.default_rng(2)
    factors = {"user_factors": rng.normal(size=(5, 2)), "item_factors": rng.normal(size=(9, 2))}
    with_factors = type(baseline.params)(**{**baseline.params.__dict__, **factors})
    assert model_item_orders(FactorModel(with_factors)) is None


def test_an_item_ordered_scorer_with_nan_is_refused() -> None:
    train = random_train(np.random.default_rng(4), 4, 10, 0.3)
    key = np.zeros(10, np.float32)
    nan = ItemOrderedScore(key, lambda users, items: np.full((users.size, items.size), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        rank_in_item_order(nan, train, np.arange(4), 2)
    with pytest.raises(ValueError, match="NaN"):
        rank_in_item_order(ItemOrderedScore(key + np.nan, nan.score), train, np.arange(4), 2)
