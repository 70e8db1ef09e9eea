"""The compiled passes behind ``row_sums`` on large data: ``np.bincount``'s weighted sums to the bit, in one pass."""

from __future__ import annotations

import numpy as np
from numba import njit

# no fastmath: each sum adds in the ratings' order, as np.bincount does


@njit(cache=True, nogil=True)
def sums_by_row(rows: np.ndarray, weights: np.ndarray, n_rows: int) -> np.ndarray:
    """``np.bincount(rows, weights, minlength=n_rows)``: the same float64 sums."""
    out = np.zeros(n_rows)
    for n in range(rows.shape[0]):
        out[rows[n]] += weights[n]
    return out


@njit(cache=True, nogil=True)
def gathered_sums_by_row(rows: np.ndarray, cols: np.ndarray, table: np.ndarray, n_rows: int) -> np.ndarray:
    """``np.bincount(rows, table[cols], minlength=n_rows)`` without the gathered copy: the same float64 sums."""
    out = np.zeros(n_rows)
    for n in range(rows.shape[0]):
        out[rows[n]] += table[cols[n]]
    return out
