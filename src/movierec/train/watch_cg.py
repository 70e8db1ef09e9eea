"""Row solves of the "likely to watch" fit (iALS) by conjugate gradients, matrix-free, with the YᵀY trick.

Holding the other side ``Y`` fixed, row ``u`` solves ``(S + Y_u'Y_u) x = Y_u't_u``, where ``S = unobserved * Y'Y +
reg * I`` is the same for every row (Hu, Koren and Volinsky 2008) and ``Y_u`` holds the vectors of the row's rated
columns, ``t_u`` their targets. Forming ``Y_u'Y_u`` costs ``n_u * d^2``; a CG step instead costs two products with
``Y_u`` (``2 * n_u * d``) and one with ``S`` (``d^2`` a row, whatever its length). A few steps, warm-started from
the row's vector of the previous sweep, are enough (Takács, Pilászy and Tikk 2011): the sweeps themselves keep
refining it. Rows of similar length are solved together, a padded block at a time (sliced to stay in the cache:
``als.cache_slices``), on batched torch ops.
"""

from __future__ import annotations

import torch

from movierec.train.als import Side, cache_slices, times, transposed_times

_TINY = 1e-30


def cg_rows(side: Side, own: torch.Tensor, other: torch.Tensor, shared: torch.Tensor, steps: int) -> None:
    """Lower every rated row of ``own`` towards its ridge solution against ``other`` by ``steps`` conjugate
    gradient steps from its current value, in place. ``shared`` is ``S`` (``(dim, dim)``); ``other``'s last row
    is the zero padding row and ``side``'s block values are the targets (0 on padding)."""
    with torch.no_grad():
        for block in (part for whole in side.blocks for part in cache_slices(whole, other.shape[1])):
            x = other.index_select(0, block.cols.view(-1)).view(*block.cols.shape, -1)  # padding rows are zero
            p = own.index_select(0, block.rows)
            r = transposed_times(x, block.values - times(x, p)) - p @ shared
            d, rr = r, r.square().sum(1)
            for _ in range(steps):
                q = transposed_times(x, times(x, d)) + d @ shared
                alpha = rr / (d * q).sum(1).clamp_min(_TINY)
                p = p + alpha[:, None] * d
                r = r - alpha[:, None] * q
                rr_next = r.square().sum(1)
                d = r + (rr_next / rr.clamp_min(_TINY))[:, None] * d
                rr = rr_next
            own.index_copy_(0, block.rows, p)
