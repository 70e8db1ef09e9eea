"""The biases baseline's alternating fit: each pass sums only the other side's biases, as the per-rating form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.ratings import Ratings, Vocabulary
from movierec.models import row_sums
from movierec.models.baselines import fit_biases
from movierec.models.row_sums_kernel import gathered_sums_by_row, sums_by_row


def per_rating_fit(train: Ratings, reg: float, passes: int) -> tuple[np.ndarray, np.ndarray]:
    """``b_i = sum(r - mean - b_u) / (reg + n_i)``, then the users, each rating's residual made afresh."""
    residual = train.ratings.astype(np.float64) - float(train.ratings.mean())
    user_bias, item_bias = np.zeros(train.n_users), np.zeros(train.n_items)
    for _ in range(passes):
        item_sum = np.bincount(train.items, residual - user_bias[train.users], minlength=train.n_items)
        item_bias = item_sum / (reg + train.item_counts())
        user_sum = np.bincount(train.users, residual - item_bias[train.items], minlength=train.n_users)
        user_bias = user_sum / (reg + train.user_counts())
    return user_bias, item_bias


@pytest.mark.parametrize("compiled_from", [10**9, 0], ids=["bincount", "compiled"])
def test_fit_biases_is_the_per_rating_fit(compiled_from: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_sums, "COMPILED_FROM", compiled_from)
    rng = np.random.default_rng(0)
    n, n_users, n_items = 20_000, 300, 120  # some movies and users without ratings
    users, items = rng.integers(0, n_users - 5, n), rng.integers(0, n_items - 5, n)
    stars = rng.integers(1, 11, n).astype(np.float32) / 2
    train = Ratings(
        users.astype(np.int32), items.astype(np.int32), stars, np.zeros(n, np.int64),
        Vocabulary(np.arange(n_users)), Vocabulary(np.arange(n_items)),
    )  # fmt: skip
    user_bias, item_bias, mean = fit_biases(train, 5.0, 5.0, 10)
    expected_users, expected_items = per_rating_fit(train, 5.0, 10)
    assert mean == float(stars.mean())
    np.testing.assert_allclose(user_bias, expected_users, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(item_bias, expected_items, rtol=1e-6, atol=1e-7)
    assert user_bias[-1] == item_bias[-1] == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 400), st.integers(1, 30), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_the_compiled_sums_are_bincounts_sums_to_the_bit(n: int, n_rows: int, n_cols: int, seed: int) -> None:
    """The same float64 additions in the same order: equal bits, not close values (rows without ratings sum to 0)."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n_rows, n).astype(np.int32), rng.integers(0, n_cols, n).astype(np.int32)
    table = rng.normal(0, 1, n_cols) * 10.0 ** rng.integers(-8, 8, n_cols)  # magnitudes where order matters
    weights = table[cols]
    expected = np.bincount(rows, weights, minlength=n_rows)
    for got in (gathered_sums_by_row(rows, cols, table, n_rows), sums_by_row(rows, weights, n_rows)):
        assert got.dtype == np.float64 and got.shape == (n_rows,)
        assert got.tobytes() == expected.tobytes()
