"""The compiled pass behind ``als.build_side`` on large data: every rating written straight to its padded place."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def scatter_by_row(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    place: np.ndarray,
    padded_cols: np.ndarray,
    padded_values: np.ndarray,
) -> None:
    """Write rating ``n`` to ``place[rows[n]]`` plus the number of ratings of its row before it (in the ratings'
    own order): each row's ratings land at its place in order, as a stable sort by row would put them."""
    cursor = place.copy()
    for n in range(rows.shape[0]):
        row = rows[n]
        at = cursor[row]
        cursor[row] = at + 1
        padded_cols[at] = cols[n]
        padded_values[at] = values[n]
