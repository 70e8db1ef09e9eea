"""The compiled loop behind ``gibbs_coordinate.scan`` on a CPU: one slice's rows scanned coordinate by coordinate.

For each row ``b`` (in turn; rows are independent) and each coordinate ``k`` of its factors, then its bias, the
coordinate's move is ``step[k, b] + weight[k, b] * a_k'e`` (``a_k`` the ``k``-th column of the row's design: the
other side's gathered vectors' coordinate ``k``, or the rating mask for the bias; ``e`` the row's residual), after
which ``e`` moves by ``-a_k`` times it: the same scan as ``gibbs_coordinate``'s torch ops, with the row's columns
copied once into a contiguous ``(d, L)`` scratch so both passes over a column run along memory and vectorise. Each
row's sums run in one fixed order, so a slice's draws do not depend on the threads that run the slices. Biased MF,
dim 64, 25M ratings, two threads on the quiet 2-core machine (``benchmarks/train_speed.py --gibbs``): a sweep took
3.03-3.78 s where the torch ops took 4.08-4.38 s.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def scan_rows(x: np.ndarray, mask: np.ndarray, residual: np.ndarray, step: np.ndarray, weight: np.ndarray) -> None:
    """Scan every row of ``x`` (``(B, L, d)``, the rows' gathered vectors, zero on padding) in place: ``residual``
    (``(B, L)``, zero on padding) becomes the residual after the scan and ``step`` (``(d + 1, B)``, the fixed part of
    each coordinate's move on entry) each coordinate's move; ``mask`` (``(B, L)``) is the bias's column, ``weight``
    (``(d + 1, B)``) each coordinate's ``alpha / P_kk``."""
    rows, length, dim = x.shape
    columns = np.empty((dim, length), x.dtype)
    for b in range(rows):
        for position in range(length):
            for k in range(dim):
                columns[k, position] = x[b, position, k]
        e = residual[b]
        for k in range(dim + 1):
            column = columns[k] if k < dim else mask[b]
            dot = e[0] - e[0]  # zero of the arrays' type
            for position in range(length):
                dot += column[position] * e[position]
            move = step[k, b] + weight[k, b] * dot
            step[k, b] = move
            for position in range(length):
                e[position] -= column[position] * move
