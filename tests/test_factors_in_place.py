"""``FactorModel``'s scores are summed and linked in place in one matrix: the bits must be those of the plain
formulas, each step a new array, that the module documents (kept here as the reference)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from movierec.models import factors
from movierec.models.factors import FactorModel, FactorParams


def random_params(rng: np.random.Generator, dim: int, link: str, watch: bool) -> FactorParams:
    n_users, n_items = 37, 1500
    return FactorParams(
        global_mean=3.51,
        user_bias=rng.normal(0, 0.6, n_users).astype(np.float32),
        item_bias=rng.normal(0, 0.9, n_items).astype(np.float32),
        user_factors=rng.normal(0, 0.8, (n_users, dim)).astype(np.float32),
        item_factors=rng.normal(0, 0.8, (n_items, dim)).astype(np.float32),
        low=0.5,
        high=5.0,
        link=link,  # type: ignore[arg-type]
        user_known=rng.random(n_users) < 0.9,
        item_known=rng.random(n_items) < 0.9,
        item_prior=rng.random(n_items).astype(np.float32),
        rank_weight=0.37,
        watch_user=rng.normal(size=(n_users, 5 if watch else 0)).astype(np.float32),
        watch_item=rng.normal(size=(n_items if watch else 0, 5 if watch else 0)).astype(np.float32),
        watch_weight=0.23 if watch else 0.0,
    )


def reference_link(p: FactorParams, raw: np.ndarray) -> np.ndarray:
    if p.link == "sigmoid":
        return np.asarray(p.low + (p.high - p.low) / (1.0 + np.exp(-raw)), dtype=np.float32)
    return np.asarray(np.clip(raw, p.low, p.high), dtype=np.float32)


def reference_score_items(p: FactorParams, users: np.ndarray) -> np.ndarray:
    known = p.user_known[users]
    user_bias = np.where(known, p.user_bias[users], 0.0)
    item_bias = np.where(p.item_known, p.item_bias, 0.0)
    raw = p.global_mean + user_bias[:, None] + item_bias[None, :]
    if p.dim:
        raw = raw + (p.user_factors[users] * known[:, None].astype(np.float32)) @ p.item_factors.T
    return reference_link(p, raw)


def reference_rank_scores(p: FactorParams, users: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    scores = (predicted - p.low) / (p.high - p.low)
    if p.rank_weight and p.item_prior.size:
        scores = scores + p.rank_weight * p.item_prior[None, :]
    if p.watch_weight and p.has_watch:
        scores = scores + p.watch_weight * (p.watch_user[users] @ p.watch_item.T)
    return scores


@pytest.mark.parametrize("dim", [0, 7])
@pytest.mark.parametrize("link", ["linear", "sigmoid"])
@pytest.mark.parametrize("watch", [False, True])
def test_scores_have_the_bits_of_the_plain_formulas(
    dim: int, link: str, watch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factors, "ROW_BLOCK_BYTES", 5 * 1500 * 4)  # the biases added 5 rows at a time
    p = random_params(np.random.default_rng(dim + 10 * watch), dim, link, watch)
    model = FactorModel(p)
    users = np.r_[np.arange(p.n_users), 3, 0]
    predicted = model.score_items(users)
    expected = reference_score_items(p, users)
    assert predicted.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(predicted, expected)
    kept = predicted.copy()
    for ranked in (model.rank_scores(users), model.rank_scores_from(users, predicted)):
        assert ranked.dtype == np.float32
        np.testing.assert_array_equal(ranked, reference_rank_scores(p, users, expected))
    np.testing.assert_array_equal(predicted, kept)  # rank_scores_from leaves its input as it was
    raw = np.random.default_rng(3).normal(3.0, 4.0, (4, 9))
    for values in (raw, raw.astype(np.float32), np.arange(-3, 9).reshape(3, 4)):
        linked = model.link(values)
        np.testing.assert_array_equal(linked, reference_link(p, values))
        assert linked.dtype == np.float32


def test_a_single_folded_in_user_scores_in_float64_as_before() -> None:
    p = random_params(np.random.default_rng(5), 6, "linear", True)
    model = FactorModel(p)
    user = model.fold_in(np.arange(0, 1500, 50), np.full(30, 4.0))
    item_bias = np.where(p.item_known, p.item_bias, 0.0)
    raw = p.global_mean + np.array([user.bias])[:, None] + item_bias[None, :] + user.factors[None, :] @ p.item_factors.T
    np.testing.assert_array_equal(model.score_for(user), reference_link(p, raw[0]))
    wide = replace(p, item_prior=p.item_prior.astype(np.float64))  # a wider term widens the sum, as before
    ranked = FactorModel(wide).to_rank_scores(model.score_items(np.arange(3)))
    assert ranked.dtype == np.float64


def test_the_movie_order_key_is_the_known_movie_bias_only_for_bias_only_scores() -> None:
    p = random_params(np.random.default_rng(6), 0, "linear", False)
    key = FactorModel(replace(p, rank_weight=0.0)).movie_order_key()
    assert key is not None
    np.testing.assert_array_equal(key, np.where(p.item_known, p.item_bias, np.float32(0.0)))
    assert key.dtype == np.float32
    assert FactorModel(p).movie_order_key() is None  # the popularity prior weighed in
    assert FactorModel(replace(p, rank_weight=0.0, link="sigmoid")).movie_order_key() is None
    with_watch = random_params(np.random.default_rng(6), 0, "linear", True)
    assert FactorModel(replace(with_watch, rank_weight=0.0)).movie_order_key() is None
    assert FactorModel(replace(with_watch, rank_weight=0.0, watch_weight=0.0)).movie_order_key() is not None
    with_factors = random_params(np.random.default_rng(6), 3, "linear", False)
    assert FactorModel(replace(with_factors, rank_weight=0.0)).movie_order_key() is None


@pytest.mark.parametrize("link", ["linear", "sigmoid"])
def test_predict_in_chunks_gives_the_whole_call(link: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``predict`` takes long inputs ``PREDICT_PAIRS`` at a time: the same values (unknown indices included) as one
    pass, which a chunk size of one input's length gives."""
    rng = np.random.default_rng(5)
    model = FactorModel(random_params(rng, 4, link, watch=False))
    users = rng.integers(-1, 37, 1001)
    items = rng.integers(-1, 1500, 1001)
    whole = model.predict(users, items)
    monkeypatch.setattr(factors, "PREDICT_PAIRS", 100)
    chunked = model.predict(users, items)
    assert chunked.dtype == whole.dtype and chunked.shape == whole.shape
    np.testing.assert_array_equal(chunked, whole)
    monkeypatch.setattr(factors, "PREDICT_PAIRS", 1000)  # the last chunk one pair long
    np.testing.assert_array_equal(model.predict(users, items), whole)
