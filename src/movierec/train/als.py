"""Alternating least squares for biased matrix factorisation, on batched torch ops (CPU or CUDA).

The objective is the training loop's, summed over the ratings instead of averaged over a batch:

    sum over ratings (r - mean - b_u - b_i - p_u.q_i)^2
      + reg * sum over ratings (|p_u|^2 + |q_i|^2 + bias_scale * (b_u^2 + b_i^2))

so a user with n ratings carries a ridge penalty ``reg * n`` (and movies likewise). Holding the movies fixed,
each user's ``[p_u, b_u]`` is a ridge regression on the features ``[q_i, 1]`` of the movies they rated, with
target ``r - mean - b_i``; a sweep solves every user, then every movie the same way.

How it is fast:
- Each side's ratings are grouped by row once, rows sorted by length and cut into blocks of similar length,
  padded into dense ``(rows, length)`` index and value matrices (padding points at an all-zero row).
- A block gathers its feature rows once into ``X`` of shape ``(rows, length, dim + 1)`` and solves all its
  ridge regressions together with a few steps of preconditioned conjugate gradients, warm-started from the
  current vectors. Every step is two batched matrix-vector products over ``X``, so the work is linear in
  ``dim`` (forming and factorising Gram matrices would be quadratic and cubic) and stays in cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CPU_BLOCK_RATINGS = 1 << 16  # padded ratings per block on the CPU: X stays in the last-level cache
GPU_BLOCK_RATINGS = 1 << 22  # larger blocks keep a GPU busy
MAX_PADDING = 0.1  # a block's rows are at most this much (plus one) shorter than its longest row
_TINY = 1e-30


@dataclass(frozen=True)
class Block:
    """Rows of similar length, padded: ``cols[b, j]`` is the j-th column of ``rows[b]``."""

    rows: torch.Tensor  # (B,) int64 row indices
    cols: torch.Tensor  # (B, L) int32 column indices; padding holds ``n_cols`` (an all-zero row)
    values: torch.Tensor  # (B, L) float32 centred ratings; 0 on padding
    counts: torch.Tensor  # (B,) float32 ratings per row


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
    """Group ratings ``(rows, cols, values)`` by row into padded blocks on ``device``."""
    budget = block_ratings or (GPU_BLOCK_RATINGS if device.type == "cuda" else CPU_BLOCK_RATINGS)
    order = np.argsort(rows, kind="stable")
    sorted_cols = cols[order].astype(np.int32)
    sorted_values = values[order].astype(np.float32)
    del order
    counts = np.bincount(rows, minlength=n_rows).astype(np.int64)
    starts = np.cumsum(counts) - counts
    by_length = np.argsort(counts, kind="stable")
    by_length = by_length[counts[by_length] > 0]
    lengths = counts[by_length]
    blocks = []
    first = 0
    while first < by_length.size:
        longest_allowed = int(lengths[first] * (1 + MAX_PADDING)) + 1
        end = int(np.searchsorted(lengths, longest_allowed, side="right"))
        end = max(first + 1, min(end, first + max(1, budget // longest_allowed)))
        end = min(end, by_length.size)
        block_rows = by_length[first:end]
        width = int(lengths[end - 1])
        offsets = np.arange(width, dtype=np.int64)
        valid = offsets[None, :] < counts[block_rows][:, None]
        positions = np.where(valid, starts[block_rows][:, None] + offsets[None, :], 0)
        block_cols = np.where(valid, sorted_cols[positions], n_cols).astype(np.int32)
        block_values = np.where(valid, sorted_values[positions], 0.0).astype(np.float32)
        blocks.append(
            Block(
                rows=torch.from_numpy(block_rows.astype(np.int64)).to(device),
                cols=torch.from_numpy(block_cols).to(device),
                values=torch.from_numpy(block_values).to(device),
                counts=torch.from_numpy(counts[block_rows].astype(np.float32)).to(device),
            )
        )
        first = end
    return Side(blocks, n_rows, n_cols, torch.from_numpy(counts.astype(np.float32)).to(device))


def solve_side(
    side: Side,
    own: Factors,
    other: Factors,
    other_counts: torch.Tensor,
    reg: float,
    bias_scale: float,
    steps: int,
) -> torch.Tensor:
    """Re-solve every row of ``own`` that has ratings, in place, holding ``other`` fixed.

    ``other_counts`` holds the fixed side's ratings per row (for the preconditioner). Returns the summed
    squared error of the ratings before the update, as a 0-d tensor on the device (no synchronisation).
    """
    features, other_bias = other.factors, other.bias
    # Jacobi preconditioner: the diagonal of X'X is about n_u times the rating-weighted mean square feature.
    weights = other_counts / other_counts.sum().clamp_min(1.0)
    mean_square = (features[:-1].square() * weights[:, None]).sum(0)
    squared_error = torch.zeros((), device=features.device, dtype=torch.float32)
    with torch.no_grad():
        for block in side.blocks:
            squared_error += _solve_block(
                block, side.n_cols, own, features, other_bias, mean_square, reg, bias_scale, steps
            )
    return squared_error


def _solve_block(
    block: Block,
    pad: int,
    own: Factors,
    features: torch.Tensor,
    other_bias: torch.Tensor,
    mean_square: torch.Tensor,
    reg: float,
    bias_scale: float,
    steps: int,
) -> torch.Tensor:
    """Preconditioned CG on one block's ridge regressions; the bias is the constant feature, kept apart."""
    n_block, width = block.cols.shape
    flat = block.cols.view(-1)
    x = features.index_select(0, flat).view(n_block, width, -1)
    mask = (block.cols != pad).to(x.dtype)
    target = block.values - other_bias.index_select(0, flat).view(n_block, width)
    p, b = own.factors.index_select(0, block.rows), own.bias.index_select(0, block.rows)
    lam = reg * block.counts
    lam_b = lam * bias_scale
    error = target - _times(x, p) - b[:, None] * mask
    squared_error = error.square().sum()
    r, r_b = _transposed_times(x, error) - lam[:, None] * p, error.sum(1) - lam_b * b
    inv = 1.0 / (block.counts[:, None] * mean_square + lam[:, None]).clamp_min(_TINY)
    inv_b = 1.0 / (block.counts + lam_b).clamp_min(_TINY)
    z, z_b = inv * r, inv_b * r_b
    d, d_b = z, z_b
    rz = (r * z).sum(1) + r_b * z_b
    for _ in range(steps):
        xd = _times(x, d) + d_b[:, None] * mask
        q, q_b = _transposed_times(x, xd) + lam[:, None] * d, xd.sum(1) + lam_b * d_b
        alpha = rz / ((d * q).sum(1) + d_b * q_b).clamp_min(_TINY)
        p, b = p + alpha[:, None] * d, b + alpha * d_b
        r, r_b = r - alpha[:, None] * q, r_b - alpha * q_b
        z, z_b = inv * r, inv_b * r_b
        rz_next = (r * z).sum(1) + r_b * z_b
        beta = rz_next / rz.clamp_min(_TINY)
        d, d_b = z + beta[:, None] * d, z_b + beta * d_b
        rz = rz_next
    own.factors.index_copy_(0, block.rows, p)
    own.bias.index_copy_(0, block.rows, b)
    return squared_error


def _times(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``X @ w`` per row: (B, L, K) x (B, K) -> (B, L), written as a row vector times ``X'`` (fast on CPU)."""
    return torch.bmm(w.unsqueeze(1), x.transpose(1, 2)).squeeze(1)


def _transposed_times(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``X' @ e`` per row: (B, L, K) x (B, L) -> (B, K)."""
    return torch.bmm(e.unsqueeze(1), x).squeeze(1)


@torch.no_grad()
def predict(
    users_side: Factors,
    items_side: Factors,
    mean: float,
    users: torch.Tensor,
    items: torch.Tensor,
    chunk: int = 1 << 18,
) -> torch.Tensor:
    """Predictions ``mean + b_u + b_i + p_u.q_i``, in chunks to bound memory."""
    out = torch.empty(users.shape[0], device=users.device, dtype=torch.float32)
    for start in range(0, users.shape[0], chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        dots = (users_side.factors.index_select(0, u) * items_side.factors.index_select(0, i)).sum(1)
        out[start : start + chunk] = (
            mean + users_side.bias.index_select(0, u) + items_side.bias.index_select(0, i) + dots
        )
    return out
