"""The compiled counting sort behind ``grouping.stable_order``."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def counting_order(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The positions of ``rows`` grouped by row, in their order within each row; ``starts[r]`` is where row ``r``'s
    group begins (the counts of the rows before it), and is used up (each entry ends at its group's end)."""
    order = np.empty(rows.size, np.int64)
    for position in range(rows.size):
        row = rows[position]
        order[starts[row]] = position
        starts[row] += 1
    return order
