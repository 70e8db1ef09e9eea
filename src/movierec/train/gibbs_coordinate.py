"""Row draws coordinate by coordinate with a cached residual: the Gibbs sampler's rows for large data (myFM's way).

A row's conditional is ``N(P^-1 c, P^-1)`` with ``P = alpha A'A + diag(lambda)`` and ``c = alpha (A'y - fixed) +
lambda mu`` (``gibbs_draws``). Instead of drawing the row whole, draw each of its coordinates in turn from its own
conditional given the row's other coordinates: coordinate ``k`` (column ``a_k`` of the design ``A = [X, 1]``) is
``N(m_k, 1/P_kk)`` with ``P_kk = alpha |a_k|^2 + lambda_k`` and ``m_k = (alpha a_k'(e + a_k x_k) - alpha fixed_k +
lambda_k mu_k) / P_kk``, where ``e = y - A x`` is the row's residual at the current coordinates; after the draw ``e``
moves by ``-a_k delta_k``. One scan over the coordinates (factors, then the bias) is a Gibbs sweep of the row's
conditional: it leaves that Gaussian invariant without solving it (a systematic-scan Gibbs sampler over single
coordinates inside the block Gibbs sampler over rows, as Rendle's libFM MCMC and myFM draw their factors). It mixes
more slowly per sweep than a whole-row draw where a row's coordinates are strongly correlated a posteriori (not seen
on the data below), but costs a fixed amount, where the CG draws (``gibbs_cg``) take more steps as the rows carry
more signal.

The work is vectorised across a slice of a block's rows (``als.cache_slices``), laid out by position: ``(L, B)``
for the ``B`` rows' ``L`` ratings, so that each per-row sum adds up rows of ``B`` values (a slice of few, long rows
is laid out by row instead: ``BY_POSITION_FROM``). The other side's vectors are gathered whole (one access per
rating, as ALS gathers them) and transposed into ``(d, L, B)`` planes, one contiguous plane per coordinate. Every
``P_kk`` and the part of each move that stays fixed during the scan are computed before it, so a coordinate costs
three torch calls: its dot product with the residual, its move, the residual's update. A side's scan passes over
its gathered vectors about six times (transpose, squares, residual, a dot and an update per coordinate), bound by
memory, at a fixed cost. Biased MF, dim 64, one thread, CPU seconds of a whole sweep (both sides, the noise precision,
the hyperparameters, the validation predictions) taking turns with ALS epochs (``train_speed.py --gibbs``) on a
loaded 2-core machine: at 25M ML-25M-shaped ratings 7.4 against 7.6 with CG draws, 2.0-2.4 ALS epochs against
2.5-2.7 (run by run); on rank-8 data of ML-25M's shape, 2.5M ratings, 0.92 against about 1.3 (CG then takes 8
steps a block at the median, 17-19 at most), with the same test RMSE sweep for sweep (0.5402 and 0.5391 after 25),
so a lower one at the same CPU time (0.539 at 25 s against 0.544). On ratings with little low-rank signal the prior
dominates every row and CG converges in 1-3 steps: there CG costs less (``train_speed.py``'s synthetic ratings, 25M,
the first sweeps from the chain's cold start: 1.5 ALS epochs against 2.0). The residuals left after the scan are the
training residuals of the drawn side's ratings: the draw returns their sum of squares, for the noise precision.
"""

from __future__ import annotations

import torch

from movierec.train import als
from movierec.train.gibbs_cg import RowConditional

COORDINATE_FROM_RATINGS = 2_000_000
"""A side's rows are drawn coordinate-wise (``draws_by_coordinates``) from this many (padded) ratings on: data sets up
to ML-1M's size keep the Cholesky draws, and their chains, as they were."""
COORDINATE_FROM_WIDTH = 57
"""... and from this row width (``dim + 1``) on (as ``gibbs_cg.CG_FROM_WIDTH``, which these draws replace)."""
BY_POSITION_FROM = 16
"""A slice of rows is laid out by position (``(L, B)``: each per-row sum adds up rows of ``B`` values) from this many
rows on; fewer, longer rows by row (``(B, L)``: each sum runs along a contiguous row)."""


def draws_by_coordinates(side: als.Side, k: int) -> bool:
    """Whether the rows of ``side`` (width ``k``) are drawn coordinate-wise (``COORDINATE_FROM_*``)."""
    return k >= COORDINATE_FROM_WIDTH and side.padded_size >= COORDINATE_FROM_RATINGS


def draw_side_coordinates(side: als.Side, own: als.Factors, other: als.Factors, conditional: RowConditional) -> float:
    """One coordinate-wise Gibbs scan of every row of ``own`` (``[factors, bias]``) that has ratings, in place.
    Returns the sum of squared residuals of ``side``'s ratings after the draw (targets as ``als.row_targets``' less
    the rows' predictions; ``conditional.fixed`` not counted)."""
    dim = other.factors.shape[1]
    slices = [part for block in side.blocks for part in als.cache_slices(block, dim)]
    with torch.no_grad():
        most = max((part.cols.numel() for part in slices), default=0) * dim
        buffer, rows = other.factors.new_empty(most), other.factors.new_empty(most)
        squared = torch.zeros((), dtype=torch.float64, device=other.factors.device)
        for block in slices:
            by_position = block.cols.shape[0] >= BY_POSITION_FROM
            cols = (block.cols.T if by_position else block.cols).contiguous()
            planes = _planes_into(buffer, rows, other.factors, cols)
            mask = (cols != side.n_cols).to(planes.dtype)
            values = block.values.T.contiguous() if by_position else block.values
            target = values - other.bias.index_select(0, cols.view(-1)).view(cols.shape)
            current, mean, less = conditional.of_block(block, own)
            drawn, residual = scan(planes, mask, target, current, mean, less, conditional, by_position)
            own.factors.index_copy_(0, block.rows, drawn[:, :-1])
            own.bias.index_copy_(0, block.rows, drawn[:, -1])
            squared += torch.linalg.vecdot(residual.view(-1), residual.view(-1)).to(torch.float64)
    return float(squared)


def scan(
    planes: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor,
    start: torch.Tensor,
    mean: torch.Tensor,
    fixed: torch.Tensor | None,
    conditional: RowConditional,
    by_position: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gibbs scan over the coordinates of each row ``b`` of ``start`` (``(B, d + 1)``, bias last) for the
    conditional ``N(P_b^-1 c_b, P_b^-1)``, ``P_b = alpha A_b'A_b + diag(lambda)``, ``c_b = alpha (A_b'y_b - fixed_b) +
    lambda mu_b``, ``A_b = [X_b, 1]``: ``planes`` ``(d, L, B)`` holds ``X_b``'s columns by position (``(d, B, L)``
    by row when not ``by_position``), ``mask`` and ``target`` ``(L, B)`` (``(B, L)``), zero on padding; the prior
    means ``mean`` and ``fixed`` are ``(d + 1,)`` or ``(B, d + 1)`` (``fixed`` may be None), the rest is
    ``conditional``'s. Returns the new rows and the residuals ``y - A x`` after the scan, laid out as ``target``."""
    alpha, precision = conditional.noise_precision, conditional.prior[1]
    over = 0 if by_position else 1  # the ratings' axis of mask, target and each plane

    def per_row(values: torch.Tensor) -> torch.Tensor:  # (B,) against a (L, B) or (B, L) array
        return values if by_position else values[:, None]

    current = start.T.contiguous()  # (d + 1, B)
    squares = torch.cat([torch.linalg.vecdot(planes, planes, dim=over + 1), mask.sum(over)[None]])
    residual = target - per_row(current[-1]) * mask
    columns, values = planes.unbind(0), current.unbind(0)
    for k, plane in enumerate(columns):
        residual.addcmul_(plane, per_row(values[k]), value=-1)
    # Coordinate k's draw moves it by weight_k * (a_k'e) + (a part that stays fixed during the scan).
    diagonal = alpha * squares + _by_row(precision, current)
    weight = alpha / diagonal
    prior_part = _by_row(precision * mean, current)
    if fixed is not None:
        prior_part = prior_part - alpha * fixed.T
    noise = torch.randn(start.shape, generator=conditional.generator, device=start.device, dtype=start.dtype).T
    step = (alpha * squares * current + prior_part) / diagonal + noise * diagonal.rsqrt() - current
    steps, weights = step.unbind(0), weight.unbind(0)
    for k, plane in enumerate(columns):
        steps[k].addcmul_(weights[k], torch.linalg.vecdot(plane, residual, dim=over))
        residual.addcmul_(plane, per_row(steps[k]), value=-1)
    steps[-1].addcmul_(weights[-1], residual.sum(over))
    residual.addcmul_(mask, per_row(steps[-1]), value=-1)
    return (current + step).T, residual


def _by_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A prior's ``(k,)`` or ``(B, k)`` values as ``(k, B)``, like ``like``."""
    return values[:, None].expand_as(like) if values.dim() == 1 else values.T


def _planes_into(buffer: torch.Tensor, rows: torch.Tensor, table: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``table``'s rows (``(n, d)``) at ``cols``, as ``(d, *cols.shape)`` planes in the front of ``buffer``: gathered
    whole into ``rows`` (one access per rating), then transposed (gathering each plane apart costs ``d`` accesses
    per rating: several times slower once the table outgrows the cache)."""
    dim = table.shape[1]
    gathered = als.gathered_into(rows, table, cols).view(-1, dim)
    out = buffer[: dim * cols.numel()].view(dim, -1)
    out.copy_(gathered.T)
    return out.view(dim, *cols.shape)
