"""Grouping ratings by row: torch's stable sort gives exactly NumPy's stable sort order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.train.grouping import in_own_order, stable_order


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([np.int32, np.int64]).flatmap(lambda dtype: arrays(dtype, st.integers(0, 400),
                                                                          elements=st.integers(0, 9))))  # fmt: skip
def test_the_order_is_numpys_stable_sort(rows: np.ndarray) -> None:
    order = stable_order(rows)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(order, np.argsort(rows, kind="stable"))


def test_a_large_input_is_ordered_alike() -> None:
    rows = np.random.default_rng(0).integers(0, 5000, 3_000_007).astype(np.int32)
    np.testing.assert_array_equal(stable_order(rows), np.argsort(rows, kind="stable"))


@settings(max_examples=60, deadline=None)
@given(arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 6)), st.booleans())
def test_values_in_row_order_go_back_to_the_ratings_own_order(rows: np.ndarray, sort_first: bool) -> None:
    """Sorted rows (the shortcut) and unsorted rows alike: the k-th value in row order lands where the k-th
    rating of the stable sort came from."""
    rows = np.sort(rows, kind="stable") if sort_first else rows
    values = np.arange(rows.size, dtype=np.int32) * 3 + 1
    expected = np.empty_like(values)
    expected[np.argsort(rows, kind="stable")] = values
    np.testing.assert_array_equal(in_own_order(rows, values), expected)
