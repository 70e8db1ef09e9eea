"""The compiled pass behind ``baselines.fit_biases`` on large data: one side's sums of the other side's biases."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)  # no fastmath: each sum adds in the ratings' order, as np.bincount does
def sums_by_row(rows: np.ndarray, cols: np.ndarray, other_bias: np.ndarray, n_rows: int) -> np.ndarray:
    """``np.bincount(rows, other_bias[cols], minlength=n_rows)`` in one pass, without the gathered copy: the very
    same float64 sums."""
    out = np.zeros(n_rows)
    for n in range(rows.shape[0]):
        out[rows[n]] += other_bias[cols[n]]
    return out
