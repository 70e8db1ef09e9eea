"""Grouping ratings by row: the compiled counting sort gives exactly NumPy's stable sort order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.train import grouping
from movierec.train.grouping_kernel import counting_order


@settings(max_examples=50, deadline=None)
@given(arrays(np.int32, st.integers(0, 300), elements=st.integers(0, 9)))
def test_the_counting_sort_is_the_stable_sort(rows: np.ndarray) -> None:
    counts = np.bincount(rows, minlength=10)
    order = counting_order(rows, (np.cumsum(counts) - counts).astype(np.int64))
    np.testing.assert_array_equal(order, np.argsort(rows, kind="stable"))


def test_large_inputs_take_the_compiled_path_to_the_same_order() -> None:
    rows = np.random.default_rng(0).integers(0, 5000, grouping.COMPILED_FROM + 7).astype(np.int64)
    order = grouping.stable_order(rows, 5000)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(order, np.argsort(rows, kind="stable"))
