"""Alternating least squares for biased matrix factorisation, on batched torch ops (CPU or CUDA).

The objective is the training loop's, summed over the ratings instead of averaged over a batch:

    sum over ratings (r - mean - b_u - b_i - p_u.q_i)^2
      + reg * sum over ratings (|p_u|^2 + |q_i|^2 + bias_scale * (b_u^2 + b_i^2))

so a user with n ratings carries a ridge penalty ``reg * n`` (and movies likewise). Holding the movies fixed,
each user's ``[p_u, b_u]`` is a ridge regression on the features ``[q_i, 1]`` of the movies they rated, with
target ``r - mean - b_i``; a sweep solves every user, then every movie the same way.

The hybrid (``HybridMF`` without its SVD++ term) builds each movie's row from parts: vector ``e_i + sum_f w_if W_f``
and bias ``b_i + sum_f w_if c_f`` over its features (genres, year, tags). Its movie half is split in two:
``solve_features`` fits the feature rows ``[W_f, c_f]`` holding the users and the movies' own rows, one joint
least-squares problem (features share movies) with penalty ``reg * feature_scale * N_f`` per feature row, ``N_f =
sum_i n_i w_if`` (the loop's per-rating penalty summed); ``solve_side`` with an ``offset`` fits each movie's own
``[e_i, b_i]`` with its feature part held fixed in the prediction. Both lower the same objective (plus, when
``solve_side`` is given a ``prior``, a fixed ridge per row: the ALS hybrid adds one, see ``als_solver.py``).

How it is fast:
- Each side's ratings are grouped by row once, rows sorted by length and cut into blocks of similar length,
  padded into dense ``(rows, length)`` index and value matrices (padding points at an all-zero row).
- A block gathers its feature rows once into ``X`` of shape ``(rows, length, dim + 1)`` and solves all its
  ridge regressions together with a few steps of preconditioned conjugate gradients, warm-started from the
  current vectors. Every step is two batched matrix-vector products over ``X``, so the work is linear in
  ``dim`` (forming and factorising Gram matrices would be quadratic and cubic) and stays in cache.
- On a CPU those steps run as one compiled loop per block instead (``COMPILED``, ``als_kernel``): each row gathers
  its ``X`` once into a scratch of its own and takes every step on it, whole blocks on worker threads (the same
  steps: the torch ops stay for a GPU). At 5M ratings, dim 81, two threads, an epoch takes 0.26 s against 0.63 s.
- The hybrid's feature rows are one system for all features together, so each of its CG steps is one pass over
  the movie blocks (gathering ``X`` again) with the same two products; the movie x feature matrix maps a
  direction onto the movies and the products back onto the features (``embedding_bag`` sums). The starting
  gradient costs no pass: the movie solve records it (``RowSums``) while each block is still in cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from movierec.models.factors import PREDICT_BUDGET
from movierec.train.grouping import in_own_order
from movierec.train.workers import slice_workers

CPU_BLOCK_RATINGS = 1 << 16  # padded ratings per block on the CPU: X stays in the last-level cache
GPU_BLOCK_RATINGS = 1 << 22  # larger blocks keep a GPU busy
CPU_CACHE_FLOATS = 1 << 21
"""Most floats of gathered rows (``X``) that a CPU solve holds at once, 8 MB: a block whose ``X`` is wider (long rows,
or wide vectors such as the watch component's 128) is solved in slices of its rows (``cache_slices``)."""
COMPILED = True
"""On a CPU, ``solve_side``'s CG rows run as one compiled loop per block (``als_kernel``); on a GPU, or False, as
batched torch ops over cache-sized slices."""
COMPILED_GROUPING_FROM = 1_000_000
"""``build_side`` writes the ratings to their places by one compiled pass (``grouping_kernel``: a cursor per row)
from this many ratings on, instead of sorting them by row to find their places: the same tables without the sort
or its index arrays. Below it numba's import would cost more than it saves."""
MAX_PADDING = 0.1  # a block's rows are at most this much (plus one) shorter than its longest row
_TINY = 1e-30
_JITTER = 1e-6


@dataclass(frozen=True)
class Block:
    """Rows of similar length, padded: ``cols[b, j]`` is the j-th column of ``rows[b]``."""

    rows: torch.Tensor  # (B,) int64 row indices
    cols: torch.Tensor  # (B, L) int32 column indices; padding holds ``n_cols`` (an all-zero row)
    values: torch.Tensor  # (B, L) float32 centred ratings; 0 on padding
    counts: torch.Tensor  # (B,) float32 ratings per row

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values, counts)`` as NumPy arrays for the compiled loops (views of CPU tensors)."""
        rows, cols, values, counts = (t.contiguous().numpy() for t in (self.rows, self.cols, self.values, self.counts))
        return rows, cols, values, counts


@dataclass(frozen=True)
class Factors:
    """One side's learned rows, each table with one extra all-zero row at the end for padding."""

    factors: torch.Tensor  # (n + 1, dim) float32
    bias: torch.Tensor  # (n + 1,) float32


@dataclass(frozen=True)
class Side:
    """One side of the ratings (users or movies) grouped by row into padded blocks."""

    blocks: list[Block]
    n_rows: int
    n_cols: int
    counts: torch.Tensor  # (n_rows,) float32 ratings per row (zero for rows without ratings)

    @property
    def padded_size(self) -> int:
        return sum(int(b.cols.numel()) for b in self.blocks)


def build_side(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    n_rows: int,
    n_cols: int,
    device: torch.device,
    block_ratings: int | None = None,
) -> Side:
    """Group ratings ``(rows, cols, values)`` by row into padded blocks on ``device``.

    The blocks are slabs of one padded table per column (on the CPU, views of it): each rating is written once,
    straight to its place (its row's place in the tables plus its position in the row), instead of cutting each
    block out of the ratings sorted by row in several passes (the same blocks; 0.1 s less of a side's 1.1-1.6 s
    of CPU at ML-25M size, no more memory at its peak: the sort's). From ``COMPILED_GROUPING_FROM`` ratings each
    rating's place comes from a cursor per row in one compiled pass instead of a sort by row (22.5M random
    ratings: 0.22 s a side against 1.65 s, the same tables)."""
    budget = block_ratings or (GPU_BLOCK_RATINGS if device.type == "cuda" else CPU_BLOCK_RATINGS)
    counts = np.bincount(rows, minlength=n_rows).astype(np.int64)
    by_length = np.argsort(counts, kind="stable")
    by_length = by_length[counts[by_length] > 0]
    bounds = _block_bounds(counts[by_length], budget)
    sizes = [(end - first) * width for first, end, width in bounds]
    place = np.zeros(n_rows, np.int64)  # where each row starts in the padded tables
    for (first, end, width), before in zip(bounds, np.cumsum([0, *sizes])[:-1], strict=True):
        place[by_length[first:end]] = before + np.arange(end - first, dtype=np.int64) * width
    padded_cols = np.full(sum(sizes), n_cols, np.int32)
    padded_values = np.zeros(sum(sizes), np.float32)
    if rows.shape[0] >= COMPILED_GROUPING_FROM:
        from movierec.train.grouping_kernel import scatter_by_row  # numba loads only for large data

        scatter_by_row(rows, cols, np.asarray(values, np.float32), place, padded_cols, padded_values)
    else:
        index = np.int32 if sum(sizes) < 2**31 else np.int64
        # the k-th rating in row order goes to its row's place plus k less the row's start in that order
        where = np.repeat((place - np.cumsum(counts) + counts).astype(index), counts)
        where += np.arange(where.size, dtype=index)
        destination = in_own_order(rows, where)  # each rating's place, in the ratings' own order
        del where
        padded_cols[destination] = cols
        padded_values[destination] = values
        del destination
    blocks, at = [], 0
    for (first, end, width), size in zip(bounds, sizes, strict=True):
        block_rows = by_length[first:end]
        shape = (end - first, width)
        blocks.append(
            Block(
                rows=torch.from_numpy(block_rows.astype(np.int64)).to(device),
                cols=torch.from_numpy(padded_cols[at : at + size].reshape(shape)).to(device),
                values=torch.from_numpy(padded_values[at : at + size].reshape(shape)).to(device),
                counts=torch.from_numpy(counts[block_rows].astype(np.float32)).to(device),
            )
        )
        at += size
    return Side(blocks, n_rows, n_cols, torch.from_numpy(counts.astype(np.float32)).to(device))


def _block_bounds(lengths: np.ndarray, budget: int) -> list[tuple[int, int, int]]:
    """``(first, end, width)`` of each block over rows sorted by their ``lengths``: rows at most ``MAX_PADDING``
    (plus one) longer than the block's shortest, at most ``budget`` padded ratings, padded to the longest."""
    bounds = []
    first = 0
    while first < lengths.size:
        longest_allowed = int(lengths[first] * (1 + MAX_PADDING)) + 1
        end = int(np.searchsorted(lengths, longest_allowed, side="right"))
        end = max(first + 1, min(end, first + max(1, budget // longest_allowed)))
        end = min(end, lengths.size)
        bounds.append((first, end, int(lengths[end - 1])))
        first = end
    return bounds


def solve_side(
    side: Side,
    own: Factors,
    other: Factors,
    mean_square: torch.Tensor,
    reg: float,
    bias_scale: float,
    steps: int,
    offset: Factors | None = None,
    prior: tuple[float, float] = (0.0, 0.0),
    sums: RowSums | None = None,
) -> torch.Tensor:
    """Re-solve every row of ``own`` that has ratings, in place, holding ``other`` fixed.

    ``mean_square`` is the fixed side's rating-weighted mean square vector (``mean_square``: the preconditioner's
    scale; a sharded solve all-reduces it over the ranks). ``offset``, when given,
    is a fixed part of each own row that the prediction adds to it (the hybrid's feature part of a movie's
    vector and bias): the row solved is the rest. ``prior`` adds a fixed ridge ``(on the factors, on the bias)``
    to every row's, whatever its number of ratings. ``sums``, when given, receives each row's ``RowSums`` after
    its update (while its block is still in cache). Returns the summed squared error of the ratings before the
    update, as a 0-d tensor on the device (no synchronisation). ``steps`` conjugate gradient steps per row, or an
    exact solve with 0 (a Cholesky factorisation of each row's Gram matrix: ``dim`` times the work).
    """
    features, other_bias, pad = other.factors, other.bias, side.n_cols
    if COMPILED and steps > 0 and features.device.type == "cpu":
        return _solve_side_compiled(side, own, other, mean_square, (reg, reg * bias_scale, *prior), steps, offset, sums)
    slices, buffer = sliced(side, features)

    def solve_block(block: Block) -> torch.Tensor:
        """One block's ridge regressions solved (``steps`` CG steps, or exactly), written back."""
        x = gathered_into(buffer, features, block.cols)
        mask = (block.cols != pad).to(x.dtype)
        target = row_targets(block, x, mask, other_bias, offset)
        p, b = own.factors.index_select(0, block.rows), own.bias.index_select(0, block.rows)
        lam = reg * block.counts + prior[0]
        lam_b = reg * bias_scale * block.counts + prior[1]
        error = target - times(x, p) - b[:, None] * mask
        block_error = error.square().sum()
        if steps == 0:
            p, b = _exact_rows(x, mask, target, lam, lam_b)
        else:
            p, b = _cg_rows(x, mask, error, p, b, lam, lam_b, block.counts, mean_square, steps)
        own.factors.index_copy_(0, block.rows, p)
        own.bias.index_copy_(0, block.rows, b)
        if sums is not None:
            sums.record(block, x, target - times(x, p) - b[:, None] * mask)
        return block_error

    squared_error = torch.zeros((), device=features.device, dtype=torch.float32)
    with torch.no_grad():
        for part in slices:
            squared_error += solve_block(part)
    return squared_error


def _solve_side_compiled(
    side: Side,
    own: Factors,
    other: Factors,
    mean_square: torch.Tensor,
    ridge: tuple[float, float, float, float],
    steps: int,
    offset: Factors | None,
    sums: RowSums | None,
) -> torch.Tensor:
    """``solve_side``'s CG rows by the compiled loop (``als_kernel``), whole blocks on worker threads."""
    from movierec.train.als_kernel import cg_block  # numba loads only where a CPU solves by CG

    def array(tensor: torch.Tensor | None, width: int = 1) -> np.ndarray:
        return np.empty((0,) * width, np.float32) if tensor is None else tensor.detach().contiguous().numpy()

    for table in (own.factors, own.bias, *((sums.gradient, sums.squares) if sums is not None else ())):
        assert table.is_contiguous(), "the compiled rows write in place"
    own_factors, own_bias, other_factors, other_bias = map(array, (own.factors, own.bias, other.factors, other.bias))
    fixed_factors, fixed_bias = (
        (array(offset.factors), array(offset.bias)) if offset is not None else (array(None, 2), array(None))
    )
    gradient, squares = (
        (array(sums.gradient), array(sums.squares)) if sums is not None else (array(None, 2), array(None, 2))
    )
    scale, weights = array(mean_square), np.asarray(ridge, np.float32)

    def solve_block(block: Block) -> float:
        rows, cols, values, counts = block.arrays()
        error = cg_block(
            rows, cols, values, counts, own_factors, own_bias, other_factors, other_bias, fixed_factors, fixed_bias,
            weights, scale, steps, gradient, squares,
        )  # fmt: skip
        return float(error)

    with torch.no_grad(), slice_workers(own.factors.device) as run:
        errors = run(solve_block, side.blocks)
    return torch.tensor(sum(errors), dtype=torch.float32)


def sliced(side: Side, table: torch.Tensor) -> tuple[list[Block], torch.Tensor]:
    """``side``'s blocks cut into ``cache_slices`` for rows as wide as ``table``'s, and one buffer that holds any
    slice's gathered rows (``gathered_into``)."""
    slices = [part for block in side.blocks for part in cache_slices(block, table.shape[1])]
    return slices, table.new_empty(max((part.cols.numel() for part in slices), default=0) * table.shape[1])


def gathered_into(buffer: torch.Tensor, table: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``table``'s rows at ``cols``, shaped ``(*cols.shape, width)``, written into the front of ``buffer`` (one
    buffer for every slice of a half-sweep: a fresh tensor a slice costs new pages, cold in the cache)."""
    flat = cols.reshape(-1)
    out = buffer[: flat.numel() * table.shape[1]].view(flat.numel(), table.shape[1])
    return torch.index_select(table, 0, flat, out=out).view(*cols.shape, -1)


def cache_slices(block: Block, width: int) -> Iterator[Block]:
    """``block`` cut into slices of its rows whose gathered ``X`` (``rows x length x width`` floats) fits
    ``CPU_CACHE_FLOATS``, on the CPU; the block whole on a GPU. Rows are solved independently, so the slices
    give the block's solution."""
    per_slice = max(1, CPU_CACHE_FLOATS // max(1, block.cols.shape[1] * width))
    if block.cols.device.type != "cpu" or per_slice >= block.rows.shape[0]:
        yield block
        return
    for start in range(0, block.rows.shape[0], per_slice):
        end = start + per_slice
        yield Block(block.rows[start:end], block.cols[start:end], block.values[start:end], block.counts[start:end])


def _cg_rows(
    x: torch.Tensor,
    mask: torch.Tensor,
    error: torch.Tensor,
    p: torch.Tensor,
    b: torch.Tensor,
    lam: torch.Tensor,
    lam_b: torch.Tensor,
    counts: torch.Tensor,
    mean_square: torch.Tensor,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` preconditioned CG steps on a block's ridge regressions from ``(p, b)`` (whose errors are
    ``error``); the bias is the constant feature, kept apart."""
    r, r_b = transposed_times(x, error) - lam[:, None] * p, error.sum(1) - lam_b * b
    inv = 1.0 / (counts[:, None] * mean_square + lam[:, None]).clamp_min(_TINY)
    inv_b = 1.0 / (counts + lam_b).clamp_min(_TINY)
    z, z_b = inv * r, inv_b * r_b
    d, d_b = z, z_b
    rz = (r * z).sum(1) + r_b * z_b
    for step in range(steps):
        xd = times(x, d) + d_b[:, None] * mask
        curvature = xd.square().sum(1) + lam * d.square().sum(1) + lam_b * d_b.square()  # d'(X'X + L)d
        alpha = rz / curvature.clamp_min(_TINY)
        p, b = p + alpha[:, None] * d, b + alpha * d_b
        if step == steps - 1:
            break  # the residual is not needed again: no pass over X for it
        q, q_b = transposed_times(x, xd) + lam[:, None] * d, xd.sum(1) + lam_b * d_b
        r, r_b = r - alpha[:, None] * q, r_b - alpha * q_b
        z, z_b = inv * r, inv_b * r_b
        rz_next = (r * z).sum(1) + r_b * z_b
        beta = rz_next / rz.clamp_min(_TINY)
        d, d_b = z + beta[:, None] * d, z_b + beta * d_b
        rz = rz_next
    return p, b


def _exact_rows(
    x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor, lam: torch.Tensor, lam_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A block's ridge regressions solved exactly: each row's ``[X, 1]'[X, 1]`` plus its ridge, factorised."""
    gram, rhs = _normal_equations(x, mask, target)
    ridge = torch.cat([lam[:, None].expand(-1, x.shape[2]), lam_b[:, None]], 1)
    gram.diagonal(dim1=1, dim2=2).add_(ridge.clamp_min(_JITTER))  # reg 0: a row with few ratings stays solvable
    solved = torch.cholesky_solve(rhs.unsqueeze(-1), torch.linalg.cholesky(gram))
    return solved[:, :-1, 0], solved[:, -1, 0]


def mean_square(factors: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The rating-weighted mean square of each feature over a side's rows (``factors`` with its padding row,
    ``counts`` its ratings per row): the Jacobi preconditioner's scale, as the diagonal of a row's ``X'X`` is about
    its number of ratings times it."""
    weights = counts / counts.sum().clamp_min(1.0)
    return (factors[:-1].square() * weights[:, None]).sum(0)


@dataclass(frozen=True)
class FeatureMatrix:
    """The hybrid's constant movie x feature matrix ``F`` (weights ``w_if``) on the device, stored both ways in
    CSR form (by movie and by feature) so that both products are ``embedding_bag`` sums."""

    by_item: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # offsets (n_items,), feature, weight per entry
    by_feature: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # offsets (n_features,), movie, weight per entry
    n_items: int
    n_features: int

    @classmethod
    def from_csr(
        cls, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, n_features: int, device: torch.device
    ) -> FeatureMatrix:
        n_items = int(indptr.shape[0] - 1)
        items = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(indptr))
        features = np.asarray(indices, np.int64)
        weights = np.asarray(weights, np.float32)
        order = np.argsort(features, kind="stable")
        feature_starts = np.searchsorted(features[order], np.arange(n_features))

        def tensors(*arrays: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            starts, columns, values = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)
            return starts, columns, values

        return cls(
            by_item=tensors(np.asarray(indptr[:-1], np.int64), features, weights),
            by_feature=tensors(feature_starts.astype(np.int64), items[order], weights[order]),
            n_items=n_items,
            n_features=int(n_features),
        )

    def times(self, table: torch.Tensor) -> torch.Tensor:
        """``F @ table`` with an all-zero padding row appended: (n_features, C) -> (n_items + 1, C)."""
        offsets, columns, values = self.by_item
        out = F.embedding_bag(columns, table, offsets, mode="sum", per_sample_weights=values)
        return torch.cat([out, out.new_zeros(1, table.shape[1])])

    def transposed_times(self, table: torch.Tensor, squared: bool = False) -> torch.Tensor:
        """``F' @ table`` (``F``'s entries squared if asked): (n_items [+ 1], C) -> (n_features, C)."""
        offsets, columns, values = self.by_feature
        weights = values.square() if squared else values
        return F.embedding_bag(columns, table, offsets, mode="sum", per_sample_weights=weights)


@dataclass(frozen=True)
class RowSums:
    """Per row of a side (one extra padding row): ``gradient = [X'e, sum e]`` for the errors ``e`` of its ratings'
    predictions and ``squares``, the diagonal of ``[X, 1]'[X, 1]``; ``X`` holds the other side's vectors."""

    gradient: torch.Tensor  # (n_rows + 1, dim + 1)
    squares: torch.Tensor  # (n_rows + 1, dim + 1)

    @classmethod
    def zeros(cls, n_rows: int, dim: int, device: torch.device) -> RowSums:
        return cls(torch.zeros(n_rows + 1, dim + 1, device=device), torch.zeros(n_rows + 1, dim + 1, device=device))

    def record(self, block: Block, x: torch.Tensor, error: torch.Tensor) -> None:
        self.gradient.index_copy_(0, block.rows, torch.cat([transposed_times(x, error), error.sum(1, keepdim=True)], 1))
        self.squares.index_copy_(0, block.rows, torch.cat([x.square().sum(1), block.counts[:, None]], 1))


def movie_sums(side: Side, users: Factors, items: Factors) -> RowSums:
    """``RowSums`` of every movie for the predictions ``b_u + b_i + p_u.q_i`` (``items`` holds ``q_i, b_i``)."""
    sums = RowSums.zeros(side.n_rows, users.factors.shape[1], users.factors.device)
    for block, x, mask in _gathered(side, users):
        vector, bias = items.factors.index_select(0, block.rows), items.bias.index_select(0, block.rows)
        target = row_targets(block, x, mask, users.bias, None)
        sums.record(block, x, target - times(x, vector) - bias[:, None] * mask)
    return sums


def solve_features(
    side: Side,
    table: torch.Tensor,
    users: Factors,
    matrix: FeatureMatrix,
    penalty: torch.Tensor,
    steps: int,
    sums: RowSums,
) -> None:
    """Re-solve the hybrid's feature rows ``table = [W_f, c_f]`` (``(n_features, dim + 1)``), in place.

    ``side`` holds the ratings grouped by movie, ``users`` the users' rows, ``sums`` each movie's ``RowSums``
    for the current predictions (its own part plus ``F @ table``; ``solve_side`` leaves them behind when it
    solves the movies' own rows, ``movie_sums`` computes them afresh) and ``penalty`` the ridge weight of each
    entry of ``table``. The feature rows share movies (each movie sums a few genres, a year and tags), so they
    form one least-squares problem, solved by ``steps`` steps of Jacobi-preconditioned conjugate gradients
    warm-started from the current rows. A step is one pass over the movie blocks, two batched matrix-vector
    products each, as in ``solve_side``; the feature matrix maps directions to movies and gradients back.
    """
    with torch.no_grad():
        r = matrix.transposed_times(sums.gradient) - penalty * table
        inv = 1.0 / (matrix.transposed_times(sums.squares, squared=True) + penalty).clamp_min(_TINY)
        z = inv * r
        d, rz = z, (r * z).sum()
        for _ in range(steps):
            q = matrix.transposed_times(_gram_times(side, users, matrix.times(d))) + penalty * d
            alpha = rz / (d * q).sum().clamp_min(_TINY)
            table += alpha * d
            r = r - alpha * q
            z = inv * r
            rz_next = (r * z).sum()
            d = z + (rz_next / rz.clamp_min(_TINY)) * d
            rz = rz_next


def _gram_times(side: Side, users: Factors, direction: torch.Tensor) -> torch.Tensor:
    """Per movie ``[X, 1]'[X, 1] v`` for ``direction`` rows ``v`` (``(n_items + 1, dim + 1)``, bias last)."""
    out = torch.zeros_like(direction)
    if COMPILED and direction.device.type == "cpu":
        from movierec.train.als_kernel import gram_times_block  # numba loads only where a CPU solves by CG

        table, vectors, products = (t.contiguous().numpy() for t in (users.factors, direction, out))

        def times_block(block: Block) -> None:
            rows, cols, _, counts = block.arrays()
            gram_times_block(rows, cols, counts, table, vectors, products)

        with slice_workers(direction.device) as run:
            run(times_block, side.blocks)
        return out
    for block, x, mask in _gathered(side, users):
        v = direction.index_select(0, block.rows)
        moved = times(x, v[:, :-1]) + v[:, -1:] * mask
        out.index_copy_(0, block.rows, torch.cat([transposed_times(x, moved), moved.sum(1, keepdim=True)], 1))
    return out


@dataclass(frozen=True)
class RowSystem:
    """One block's normal equations: per row, ``gram = A'A`` and ``rhs = A'y`` for the design ``A = [X, 1]`` (the
    other side's vectors of its ratings and a constant for the bias, zero on padding) and the targets ``y``."""

    block: Block
    gram: torch.Tensor  # (B, dim + 1, dim + 1), bias last
    rhs: torch.Tensor  # (B, dim + 1)


def row_systems(side: Side, other: Factors, offset: Factors | None = None) -> Iterator[RowSystem]:
    """Each block's exact normal equations of the ratings against ``other`` (targets as in ``solve_side``: the
    centred rating less the other side's bias and, when given, the fixed ``offset`` part of each own row).
    Forming ``A'A`` costs ``dim^2`` per rating, where a ``solve_side`` CG step costs ``dim``: for exact solves and
    the Gibbs sampler's draws, which factorise it."""
    with torch.no_grad():
        for block, x, mask in _gathered(side, other):
            target = row_targets(block, x, mask, other.bias, offset)
            yield RowSystem(block, *_normal_equations(x, mask, target))


def _normal_equations(x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, ``A'A`` and ``A'y`` for the design ``A = [X, 1]`` (zero on padding) and the targets ``y``."""
    design = torch.cat([x, mask.unsqueeze(-1)], 2)
    return torch.bmm(design.transpose(1, 2), design), transposed_times(design, target)


def row_targets(
    block: Block, x: torch.Tensor, mask: torch.Tensor, other_bias: torch.Tensor, offset: Factors | None
) -> torch.Tensor:
    """What a block's own rows must explain of each rating: the centred rating less the other side's bias and,
    when given, the fixed ``offset`` part of the own row (its vector times ``x``, plus its bias)."""
    target = block.values - other_bias.index_select(0, block.cols.view(-1)).view(block.cols.shape)
    if offset is not None:
        fixed, fixed_bias = offset.factors.index_select(0, block.rows), offset.bias.index_select(0, block.rows)
        target = target - times(x, fixed) - fixed_bias[:, None] * mask
    return target


def _gathered(side: Side, other: Factors) -> Iterator[tuple[Block, torch.Tensor, torch.Tensor]]:
    """Each block with its gathered ``X`` (the other side's vectors, ``(rows, length, dim)``) and padding mask."""
    for block in side.blocks:
        x = other.factors.index_select(0, block.cols.view(-1)).view(*block.cols.shape, -1)
        yield block, x, (block.cols != side.n_cols).to(x.dtype)


def times(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``X @ w`` per row: (B, L, K) x (B, K) -> (B, L), written as a row vector times ``X'`` (fast on CPU)."""
    return torch.bmm(w.unsqueeze(1), x.transpose(1, 2)).squeeze(1)


def transposed_times(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``X' @ e`` per row: (B, L, K) x (B, L) -> (B, K)."""
    return torch.bmm(e.unsqueeze(1), x).squeeze(1)


@torch.no_grad()
def predict(
    users_side: Factors,
    items_side: Factors,
    mean: float,
    users: torch.Tensor,
    items: torch.Tensor,
    chunk: int = 0,
) -> torch.Tensor:
    """Predictions ``mean + b_u + b_i + p_u.q_i``, ``chunk`` pairs at a time to bound memory (by default as many as
    hold ``PREDICT_BUDGET`` factor values)."""
    chunk = chunk or max(1, PREDICT_BUDGET // max(1, users_side.factors.shape[1]))
    out = torch.empty(users.shape[0], device=users.device, dtype=torch.float32)
    for start in range(0, users.shape[0], chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        dots = (users_side.factors.index_select(0, u) * items_side.factors.index_select(0, i)).sum(1)
        out[start : start + chunk] = (
            mean + users_side.bias.index_select(0, u) + items_side.bias.index_select(0, i) + dots
        )
    return out
