"""The compiled loop behind ``als.solve_side``'s conjugate-gradient rows on a CPU: one block's rows solved in turn.

Each row gathers the other side's vectors of its ratings once, into a contiguous scratch (its ratings come first in
the block's padded tables, so padding is never touched), then runs the same preconditioned CG steps as
``als._cg_rows`` on them while they sit in the core's own cache, and writes its vector and bias back. The torch ops
gather a cache-sized slice of rows into one buffer and pass over it as batched matrix-vector products, a dozen calls
a step; here a step is two loops over the row's ``(L, d)`` scratch. Rows are independent and each row's sums run in
one fixed order, so the result does not depend on the threads that run the blocks (``als.solve_side`` runs whole
blocks on worker threads, the GIL released). ``watch_cg_tiled`` takes the watch fit's steps over many blocks at once,
a tile of the other table at a time, for tables larger than the cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_TINY = np.float32(1e-30)


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _times_into(x: np.ndarray, n: int, d: np.ndarray, offset: np.float32, out: np.ndarray) -> np.float32:
    """``out[j] = x[j] . d + offset`` for the first ``n`` rows of ``x``; returns the sum of their squares (a CG
    step's ``|X d|^2``)."""
    squares = np.float32(0)
    for j in range(n):
        moved = offset
        for k in range(d.shape[0]):
            moved += x[j, k] * d[k]
        out[j] = moved
        squares += moved * moved
    return squares


@njit(cache=True, nogil=True, fastmath=True)
def cg_block(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    counts: np.ndarray,
    own_factors: np.ndarray,
    own_bias: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    ridge: np.ndarray,
    mean_square: np.ndarray,
    steps: int,
    gradient: np.ndarray,
    squares: np.ndarray,
) -> float:
    """Solve the ridge regression of each row ``rows[b]`` of ``own_*`` in place by ``steps`` CG steps.

    ``cols`` / ``values`` ``(B, L)``: the row's columns and centred ratings, its ``counts[b]`` ratings first.
    ``fixed_*``: a fixed part of each own row added to its prediction (the hybrid's feature part), or empty arrays.
    ``ridge``: ``(reg, reg * bias_scale, prior on the factors, prior on the bias)``. ``gradient`` / ``squares``:
    ``(n + 1, d + 1)`` arrays that receive each row's ``[X'e, sum e]`` after its update and ``[sum x^2, n]`` (the
    ``als.RowSums``), or empty arrays. Returns the summed squared error of the ratings before the update.
    """
    dim = other_factors.shape[1]
    longest = cols.shape[1]
    x = np.empty((longest, dim), np.float32)
    target = np.empty(longest, np.float32)
    xd = np.empty(longest, np.float32)
    p = np.empty(dim, np.float32)
    r = np.empty(dim, np.float32)
    z = np.empty(dim, np.float32)
    d = np.empty(dim, np.float32)
    q = np.empty(dim, np.float32)
    inv = np.empty(dim, np.float32)
    has_fixed = fixed_factors.shape[0] > 0
    record = gradient.shape[0] > 0
    zero = np.float32(0)
    total = 0.0
    for b in range(rows.shape[0]):
        row = rows[b]
        n = int(counts[b])
        for j in range(n):
            column = cols[b, j]
            for k in range(dim):
                x[j, k] = other_factors[column, k]
            target[j] = values[b, j] - other_bias[column]
        if has_fixed:
            for j in range(n):
                fixed = fixed_bias[row]
                for k in range(dim):
                    fixed += x[j, k] * fixed_factors[row, k]
                target[j] -= fixed
        for k in range(dim):
            p[k] = own_factors[row, k]
            r[k] = zero
        bias = own_bias[row]
        lam = np.float32(ridge[0] * n + ridge[2])
        lam_b = np.float32(ridge[1] * n + ridge[3])
        r_b = zero
        for j in range(n):
            e = target[j] - bias
            for k in range(dim):
                e -= x[j, k] * p[k]
            total += e * e
            r_b += e
            for k in range(dim):
                r[k] += e * x[j, k]
        r_b -= lam_b * bias
        inv_b = np.float32(1 / max(n + lam_b, _TINY))
        z_b = inv_b * r_b
        d_b = z_b
        rz = r_b * z_b
        for k in range(dim):
            r[k] -= lam * p[k]
            inv[k] = 1 / max(n * mean_square[k] + lam, _TINY)
            z[k] = inv[k] * r[k]
            d[k] = z[k]
            rz += r[k] * z[k]
        for step in range(steps):
            curvature = lam_b * d_b * d_b
            for k in range(dim):
                curvature += lam * d[k] * d[k]
            curvature += _times_into(x, n, d, d_b, xd)
            alpha = rz / max(curvature, _TINY)
            for k in range(dim):
                p[k] += alpha * d[k]
            bias += alpha * d_b
            if step == steps - 1:
                break
            q_b = lam_b * d_b
            for k in range(dim):
                q[k] = lam * d[k]
            for j in range(n):
                q_b += xd[j]
                for k in range(dim):
                    q[k] += xd[j] * x[j, k]
            r_b -= alpha * q_b
            z_b = inv_b * r_b
            rz_next = r_b * z_b
            for k in range(dim):
                r[k] -= alpha * q[k]
                z[k] = inv[k] * r[k]
                rz_next += r[k] * z[k]
            beta = rz_next / max(rz, _TINY)
            for k in range(dim):
                d[k] = z[k] + beta * d[k]
            d_b = z_b + beta * d_b
            rz = rz_next
        for k in range(dim):
            own_factors[row, k] = p[k]
        own_bias[row] = bias
        if record:
            for k in range(dim + 1):
                gradient[row, k] = zero
                squares[row, k] = zero
            for j in range(n):
                e = target[j] - bias
                for k in range(dim):
                    e -= x[j, k] * p[k]
                gradient[row, dim] += e
                for k in range(dim):
                    gradient[row, k] += e * x[j, k]
                    squares[row, k] += x[j, k] * x[j, k]
            squares[row, dim] = n
    return total


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _shared_diagonal(eigenvalues: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The watch fit's shared part ``S = unobserved * Y'Y + reg * I`` in the eigenbasis of ``Y'Y``: its diagonal
    (``weights``: ``(unobserved, reg, trace of Y'Y)``)."""
    shared = np.empty(eigenvalues.shape[0], np.float32)
    for k in range(eigenvalues.shape[0]):
        shared[k] = weights[0] * eigenvalues[k] + weights[1]
    return shared


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _inverse_preconditioner(share: np.float32, eigenvalues: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``M^-1`` in the eigenbasis of ``Y'Y`` for a row whose ``trace(X'X)`` is ``share`` times ``trace(Y'Y)``: its
    diagonal into ``out`` (``M = S + share * Y'Y``; ``weights``: ``(unobserved, reg, trace of Y'Y)``)."""
    for k in range(eigenvalues.shape[0]):
        out[k] = 1 / max((share + weights[0]) * eigenvalues[k] + weights[1], _TINY)


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _tile_end(tile: int, index: int, count: int, n_rows: int) -> int:
    """The first row of ``rotated`` past tile ``index`` of ``count`` (the last tile takes every row after it)."""
    return (index + 1) * tile if index < count - 1 else n_rows + 1


@njit(cache=True, nogil=True, fastmath=True)
def watch_cg_block(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    counts: np.ndarray,
    solved: np.ndarray,
    rotated: np.ndarray,
    squared_norms: np.ndarray,
    eigenvalues: np.ndarray,
    weights: np.ndarray,
    steps: int,
) -> None:
    """``watch_cg.cg_steps`` for one block's rows, in the eigenbasis of ``Y'Y``: row ``b`` solves ``(S + X'X) p =
    X't`` from ``solved[rows[b]]`` (the rotated own table, updated in place) by ``steps`` preconditioned CG steps,
    ``X`` the rows of ``rotated`` at its ``counts[b]`` columns ``cols[b]``, ``t`` their ``values``.
    ``squared_norms``: each row of ``rotated``'s squared norm (for the preconditioner's share); ``weights``:
    ``(unobserved, reg, trace of Y'Y)``."""
    dim = rotated.shape[1]
    x = np.empty((cols.shape[1], dim), np.float32)
    xd = np.empty(cols.shape[1], np.float32)
    r = np.empty(dim, np.float32)
    z = np.empty(dim, np.float32)
    d = np.empty(dim, np.float32)
    inv = np.empty(dim, np.float32)
    shared = _shared_diagonal(eigenvalues, weights)
    total = max(weights[2], _TINY)
    zero = np.float32(0)
    for b in range(cols.shape[0]):
        n = int(counts[b])
        p = solved[rows[b]]
        share = zero
        for k in range(dim):
            r[k] = -shared[k] * p[k]
        for j in range(n):
            column = cols[b, j]
            share += squared_norms[column]
            error = values[b, j]
            for k in range(dim):
                x[j, k] = rotated[column, k]
                error -= x[j, k] * p[k]
            for k in range(dim):
                r[k] += error * x[j, k]
        share /= total
        _inverse_preconditioner(share, eigenvalues, weights, inv)
        rz = zero
        for k in range(dim):
            d[k] = inv[k] * r[k]
            rz += r[k] * d[k]
        for step in range(steps):
            curvature = zero
            for k in range(dim):
                curvature += d[k] * shared[k] * d[k]
            curvature += _times_into(x, n, d, zero, xd)
            alpha = rz / max(curvature, _TINY)
            for k in range(dim):
                p[k] += alpha * d[k]
            if step == steps - 1:
                break
            for k in range(dim):
                r[k] -= alpha * shared[k] * d[k]
            for j in range(n):
                for k in range(dim):
                    r[k] -= alpha * xd[j] * x[j, k]
            rz_next = zero
            for k in range(dim):
                z[k] = inv[k] * r[k]
                rz_next += r[k] * z[k]
            beta = rz_next / max(rz, _TINY)
            for k in range(dim):
                d[k] = z[k] + beta * d[k]
            rz = rz_next


@njit(cache=True, nogil=True, fastmath=True)
def gram_times_block(
    rows: np.ndarray,
    cols: np.ndarray,
    counts: np.ndarray,
    other_factors: np.ndarray,
    direction: np.ndarray,
    out: np.ndarray,
) -> None:
    """``als._gram_times`` for one block: ``out[row] = [X'm, sum m]`` with ``m = X v + v_b`` for each row's
    ``direction[row] = [v, v_b]`` and ``X`` the rows of ``other_factors`` at its ``counts[b]`` columns ``cols[b]``."""
    dim = other_factors.shape[1]
    total = np.empty(dim + 1, np.float32)
    for b in range(rows.shape[0]):
        row = rows[b]
        for k in range(dim + 1):
            total[k] = 0
        for j in range(int(counts[b])):
            column = cols[b, j]
            moved = direction[row, dim]
            for k in range(dim):
                moved += other_factors[column, k] * direction[row, k]
            for k in range(dim):
                total[k] += moved * other_factors[column, k]
            total[dim] += moved
        for k in range(dim + 1):
            out[row, k] = total[k]


@njit(cache=True, nogil=True, fastmath=True)
def watch_cg_tiled(
    block_rows: list[np.ndarray],
    block_cols: list[np.ndarray],
    block_values: list[np.ndarray],
    block_counts: list[np.ndarray],
    solved: np.ndarray,
    rotated: np.ndarray,
    squared_norms: np.ndarray,
    eigenvalues: np.ndarray,
    weights: np.ndarray,
    steps: int,
    tile: int,
) -> None:
    """``watch_cg_block``'s steps for the rows of several blocks at once, each pass over their ratings made in
    tiles of ``tile`` rows of ``rotated``: in each tile every row goes on through its ratings while their columns
    lie before the tile's end (the last tile takes the rest). A row meets its ratings in the same order as in
    ``watch_cg_block``; with its columns ascending (ratings grouped from files sorted by user) each tile holds one
    run of them, so the other table is read a cache-sized tile at a time instead of at random over all of it, and
    in any other order the result is the same and only that locality is lost. Each row keeps its residual and
    direction between the passes."""
    dim = rotated.shape[1]
    n_rows = 0
    for block in block_rows:
        n_rows += block.shape[0]
    r = np.zeros((n_rows, dim), np.float32)
    d = np.empty((n_rows, dim), np.float32)
    moved = np.zeros((n_rows if steps > 1 else 0, dim), np.float32)
    share = np.zeros(n_rows, np.float32)
    squares = np.zeros(n_rows, np.float32)
    rz = np.zeros(n_rows, np.float32)
    cursor = np.zeros(n_rows, np.int64)
    inv = np.empty(dim, np.float32)
    z = np.empty(dim, np.float32)
    shared = _shared_diagonal(eigenvalues, weights)
    total = max(weights[2], _TINY)
    zero = np.float32(0)
    i = 0
    for g in range(len(block_rows)):
        for b in range(block_rows[g].shape[0]):
            p = solved[block_rows[g][b]]
            for k in range(dim):
                r[i, k] = -shared[k] * p[k]
            i += 1
    n_tiles = (rotated.shape[0] + tile - 1) // tile
    for t in range(n_tiles):  # the residual r = X't - (S + X'X) p and the preconditioner's share
        end = _tile_end(tile, t, n_tiles, rotated.shape[0])
        i = 0
        for g in range(len(block_rows)):
            cols, values, counts = block_cols[g], block_values[g], block_counts[g]
            for b in range(cols.shape[0]):
                p = solved[block_rows[g][b]]
                n, j = int(counts[b]), cursor[i]
                while j < n and cols[b, j] < end:
                    column = cols[b, j]
                    share[i] += squared_norms[column]
                    error = values[b, j]
                    for k in range(dim):
                        error -= rotated[column, k] * p[k]
                    for k in range(dim):
                        r[i, k] += error * rotated[column, k]
                    j += 1
                cursor[i] = j
                i += 1
    for i in range(n_rows):
        share[i] /= total
        _inverse_preconditioner(share[i], eigenvalues, weights, inv)
        rz[i] = zero
        for k in range(dim):
            d[i, k] = inv[k] * r[i, k]
            rz[i] += r[i, k] * d[i, k]
    for step in range(steps):
        last = step == steps - 1
        cursor[:] = 0
        squares[:] = zero
        if not last:
            moved[:] = zero
        for t in range(n_tiles):  # |X d|^2, and X'X d unless this is the last step
            end = _tile_end(tile, t, n_tiles, rotated.shape[0])
            i = 0
            for g in range(len(block_rows)):
                cols, counts = block_cols[g], block_counts[g]
                for b in range(cols.shape[0]):
                    n, j = int(counts[b]), cursor[i]
                    while j < n and cols[b, j] < end:
                        column = cols[b, j]
                        xd = zero
                        for k in range(dim):
                            xd += rotated[column, k] * d[i, k]
                        squares[i] += xd * xd
                        if not last:
                            for k in range(dim):
                                moved[i, k] += xd * rotated[column, k]
                        j += 1
                    cursor[i] = j
                    i += 1
        i = 0
        for g in range(len(block_rows)):
            for b in range(block_rows[g].shape[0]):
                p = solved[block_rows[g][b]]
                curvature = zero
                for k in range(dim):
                    curvature += d[i, k] * shared[k] * d[i, k]
                alpha = rz[i] / max(curvature + squares[i], _TINY)
                for k in range(dim):
                    p[k] += alpha * d[i, k]
                if not last:
                    _inverse_preconditioner(share[i], eigenvalues, weights, inv)
                    rz_next = zero
                    for k in range(dim):
                        r[i, k] -= alpha * (shared[k] * d[i, k] + moved[i, k])
                        z[k] = inv[k] * r[i, k]
                        rz_next += r[i, k] * z[k]
                    beta = rz_next / max(rz[i], _TINY)
                    for k in range(dim):
                        d[i, k] = z[k] + beta * d[i, k]
                    rz[i] = rz_next
                i += 1
