"""Top-k of wide score matrices (``top_columns`` from groups' maxima): the same lists as a full stable sort, ties
by the lower index, ``-inf`` and NaN never listed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluate.candidates import GROUPED_FROM, TOPK_GROUP, ranked_top, topk_items


def fully_sorted(scores: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of each row by descending score then index, ``-1`` for ``-inf`` or NaN."""
    finite = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-finite, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(finite, order, axis=1) == -np.inf, -1, order)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(GROUPED_FROM, GROUPED_FROM + 3 * TOPK_GROUP),
    st.integers(1, 40),
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from(["distinct", "few values", "mostly -inf", "one value"]),
    st.integers(0, 2**32 - 1),
)
def test_wide_rows_rank_as_a_full_sort(rows: int, columns: int, k: int, dtype: type, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(rows, columns)).astype(dtype)
    if kind == "few values":  # ties everywhere, at the k-th place too
        scores = np.round(scores * 2).astype(dtype)
    elif kind == "mostly -inf":  # fewer candidates than k in some rows
        scores[rng.random((rows, columns)) < 0.997] = -np.inf
    elif kind == "one value":
        scores[:] = 1.0
    np.testing.assert_array_equal(ranked_top(scores.copy(), k), fully_sorted(scores, k))


def test_a_wide_row_with_nan_skips_it_and_ranked_top_refuses_it() -> None:
    scores = np.random.default_rng(0).random((3, 2 * GROUPED_FROM), dtype=np.float32)
    scores[1, 7] = np.nan
    np.testing.assert_array_equal(topk_items(scores, 10), fully_sorted(scores, 10))
    with pytest.raises(ValueError, match="NaN"):
        ranked_top(scores, 10)
