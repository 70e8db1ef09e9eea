"""Grouping ratings by row: torch's stable sort gives exactly NumPy's stable sort order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.train.grouping import stable_order


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
