"""The compiled loop behind ``gibbs_coordinate.draw_side_coordinates`` on a CPU: one block's rows drawn in turn.

For each row (rows are independent), the other side's vectors of its ratings are gathered once into a contiguous
``(d, L)`` scratch (coordinate by coordinate, so both passes over a column run along memory and vectorise; its
ratings come first in the block's padded tables, so padding is never touched), its residual ``e = y - A x`` taken at
the current coordinates, then each coordinate ``k`` of its factors, then its bias, moved by ``step_k + alpha a_k'e /
P_kk`` (``step_k`` the part that stays fixed during the scan: ``((alpha |a_k|^2 x_k + lambda_k mu_k - alpha fixed_k) /
P_kk + noise_k / sqrt(P_kk) - x_k``, ``P_kk = alpha |a_k|^2 + lambda_k``), after which ``e`` moves by ``-a_k`` times
it: the same scan as ``gibbs_coordinate.scan``'s torch ops, which gather a cache-sized slice of rows first and take
the residual and squared norms in batched products. Each row's sums run in one fixed order and its noise is drawn
beforehand, so the draws do not depend on the threads that run the blocks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def draw_rows(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    counts: np.ndarray,
    own_factors: np.ndarray,
    own_bias: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    mean: np.ndarray,
    shift: np.ndarray,
    fixed: np.ndarray,
    precision: np.ndarray,
    alpha: float,
    noise: np.ndarray,
) -> float:
    """One coordinate-wise scan of each row ``rows[b]`` of ``own_*`` (``[factors, bias]``), in place; returns the sum
    of squared residuals of the block's ratings after it (float64).

    ``cols`` / ``values`` ``(B, L)``: the row's columns and targets, its ``counts[b]`` ratings first. The prior:
    ``mean`` and ``precision`` ``(d + 1,)``, plus per row ``shift`` (a move of the mean) and ``fixed`` (a part taken
    off ``A'y``), ``(n + 1, d + 1)`` tables or empty arrays. ``alpha``: the noise precision. ``noise`` ``(B, d + 1)``:
    standard normal, one row per drawn row."""
    dim = other_factors.shape[1]
    columns = np.empty((dim, cols.shape[1]), np.float32)
    e = np.empty(cols.shape[1], np.float32)
    has_shift, has_fixed = shift.shape[0] > 0, fixed.shape[0] > 0
    total = 0.0
    for b in range(rows.shape[0]):
        row = rows[b]
        n = int(counts[b])
        for j in range(n):
            column = cols[b, j]
            e[j] = values[b, j] - other_bias[column] - own_bias[row]
            for k in range(dim):
                columns[k, j] = other_factors[column, k]
        for k in range(dim):
            current = own_factors[row, k]
            for j in range(n):
                e[j] -= columns[k, j] * current
        for k in range(dim + 1):
            current = own_factors[row, k] if k < dim else own_bias[row]
            squares = np.float32(n)
            if k < dim:
                squares = np.float32(0)
                for j in range(n):
                    squares += columns[k, j] * columns[k, j]
            prior_mean = mean[k] + shift[row, k] if has_shift else mean[k]
            prior_part = precision[k] * prior_mean - (alpha * fixed[row, k] if has_fixed else 0)
            diagonal = alpha * squares + precision[k]
            step = (alpha * squares * current + prior_part) / diagonal + noise[b, k] / math.sqrt(diagonal) - current
            dot = np.float32(0)
            if k < dim:
                for j in range(n):
                    dot += columns[k, j] * e[j]
            else:
                for j in range(n):
                    dot += e[j]
            move = np.float32(step + alpha / diagonal * dot)
            if k < dim:
                for j in range(n):
                    e[j] -= columns[k, j] * move
                own_factors[row, k] = current + move
            else:
                for j in range(n):
                    e[j] -= move
                own_bias[row] = current + move
        for j in range(n):
            total += e[j] * e[j]
    return total
