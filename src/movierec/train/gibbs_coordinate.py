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

The work is vectorised across a slice of a block's rows (``als.cache_slices``). A slice gathers the other side's vectors
as ALS does (``als.gathered_into``: ``(B, L, d)`` for its ``B`` rows' ``L`` ratings, one access per rating), takes each
row's residual at the current coordinates from them in one batched product (``als.times``) and the squared norms of the
columns in one reduction, then transposes them (``transposed``) into one plane per coordinate: ``(L, B)`` by position,
so that each per-row sum adds up rows of ``B`` values (strided views of one ``(L, d, B)`` array), or ``(B, L)`` by row
for a slice of few, long rows (``BY_POSITION_FROM``). Every ``P_kk`` and the part of each move that stays fixed during
the scan are computed before it, so a coordinate costs three torch calls: its dot product with the residual, its move,
the residual's update (the torch ops a GPU runs). On a CPU the whole draw runs as one compiled loop per block instead
(``COMPILED``, ``gibbs_coordinate_kernel.draw_rows``: each row gathers its columns once into a contiguous scratch of its
own, takes its residual and squared norms there and scans; the GIL released). A first compiled loop took over only the
scan, on the torch ops' gathered slices: it took the sweep at two threads on the quiet machine from 4.1-4.4 s (2.05-2.20
ALS epochs in wall seconds, 1.81-1.98 in CPU) to 3.0-4.0 s (1.43-1.57 and 1.49-1.50), and at one thread to 1.46 (wall)
and 1.49 (CPU), with the same validation RMSE after 8 sweeps (0.8984); then ALS's own rows became a compiled loop
(``als_kernel``) and an ALS epoch took half the time, so the sweep, at 2.5 s, cost 2.19 ALS epochs again; the whole draw
in one loop takes it to 1.9 s, 1.57 ALS epochs in wall seconds and 1.81 in CPU seconds (two threads, quiet machine,
``benchmarks/results/train_speed.txt``). On a CPU with more than one torch thread the blocks are drawn side by side by
as many Python threads (``slice_workers``). The figures that follow are from before the compiled loops, when the torch
ops' slices were drawn on those threads. Biased MF, dim 64, at 25M ML-25M-shaped ratings (``train_speed.py --gibbs
--gibbs-draws coordinate``, sweeps taking turns with ALS epochs), CPU seconds of a whole sweep (both sides, the noise
precision, the hyperparameters, the validation predictions) at one thread, on the 2-core machine loaded by other jobs
(load 3-9): 4.6-6.2 s, 1.58-1.83 ALS epochs, where the draws before (gathered rows transposed by ``copy_``, element by
element; the residual built plane by plane; one core whatever the threads) took 6.1-7.9 s, 2.19-2.23 (2.11 on the idle
machine, and 2.99 at two threads there). At two threads (load 1.6-3.9) the best sweep took 4.1 s wall and 6.2 s of CPU
against the best ALS epoch's 2.0 and 3.8: 2.08 and 1.62 ALS epochs, 3.11 and 3.06 before; under load 5-9 a sweep took
8.6-11.3 s, where the draws before took 25-46 s a side (3.2-3.7 at one thread). Against the CG draws, measured before:
on rank-8 data of ML-25M's shape, 2.5M ratings, 0.92 ALS epochs against about 1.3 (CG then takes 8 steps a block at the
median, 17-19 at most), with the same test RMSE sweep for sweep (0.5402 and 0.5391 after 25), so a lower one at the same
CPU time (0.539 at 25 s against 0.544); on ratings with little low-rank signal the prior dominates every row and CG
converges in 1-3 steps, and there CG cost less (``train_speed.py``'s synthetic ratings, the first sweeps from the
chain's cold start: 1.5 ALS epochs against 2.0). The residuals left after the scan are the training residuals of the
drawn side's ratings: the draw returns their sum of squares, for the noise precision.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from movierec.train import als
from movierec.train.gibbs_cg import RowConditional
from movierec.train.workers import slice_workers

COORDINATE_FROM_RATINGS = 2_000_000
"""A side's rows are drawn coordinate-wise (``draws_by_coordinates``) from this many (padded) ratings on: data sets up
to ML-1M's size keep the Cholesky draws, and their chains, as they were."""
COMPILED = True
"""On a CPU a block's draws run as one compiled loop (``gibbs_coordinate_kernel.draw_rows``), blocks side by side on
worker threads; on a GPU, or False, as torch ops over cache-sized slices, one after another (three calls a
coordinate over the whole slice)."""
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
    if COMPILED and other.factors.device.type == "cpu":
        return _draw_side_compiled(side, own, other, conditional)
    slices, buffer = als.sliced(side, other.factors)
    with torch.no_grad():
        sizes = [int(part.rows.shape[0]) for part in slices]
        shape, like = (sum(sizes), dim + 1), other.factors
        noise = torch.randn(shape, generator=conditional.generator, device=like.device, dtype=like.dtype).split(sizes)
        squared = torch.zeros((), dtype=torch.float64, device=like.device)
        for block, block_noise in zip(slices, noise, strict=True):
            x = als.gathered_into(buffer, other.factors, block.cols)
            mask = (block.cols != side.n_cols).to(x.dtype)
            current, mean, less = conditional.of_block(block, own)
            residual = als.row_targets(block, x, mask, other.bias, None) - als.times(x, current[:, :-1])
            residual -= current[:, -1:] * mask
            drawn, residual = scan(x, mask, residual, current, mean, less, conditional, block_noise)
            own.factors.index_copy_(0, block.rows, drawn[:, :-1])
            own.bias.index_copy_(0, block.rows, drawn[:, -1])
            squared += torch.linalg.vecdot(residual.view(-1), residual.view(-1)).to(torch.float64)
    return float(squared)


def _draw_side_compiled(side: als.Side, own: als.Factors, other: als.Factors, conditional: RowConditional) -> float:
    """``draw_side_coordinates`` by the compiled loop (``gibbs_coordinate_kernel.draw_rows``), whole blocks on worker
    threads, from the same noise (drawn up front in the rows' order, as the slices' is)."""
    from movierec.train.gibbs_coordinate_kernel import draw_rows  # numba loads only for chains that need it

    def array(table: torch.Tensor | None) -> np.ndarray:
        return np.empty((0, 0), np.float32) if table is None else table.detach().contiguous().numpy()

    assert own.factors.is_contiguous() and own.bias.is_contiguous(), "the compiled draws write in place"
    own_factors, own_bias, other_factors, other_bias = map(array, (own.factors, own.bias, other.factors, other.bias))
    mean, precision = (array(t.to(torch.float32)) for t in conditional.prior)
    shift, fixed, alpha = array(conditional.shift), array(conditional.fixed), float(conditional.noise_precision)
    with torch.no_grad():
        sizes = [int(block.rows.shape[0]) for block in side.blocks]
        shape = (sum(sizes), other.factors.shape[1] + 1)
        noise = torch.randn(shape, generator=conditional.generator, dtype=other.factors.dtype).split(sizes)

    def draw_block(block: als.Block, block_noise: torch.Tensor) -> float:
        rows, cols, values, counts = block.arrays()
        squared = draw_rows(
            rows, cols, values, counts, own_factors, own_bias, other_factors, other_bias, mean, shift, fixed,
            precision, alpha, block_noise.contiguous().numpy(),
        )  # fmt: skip
        return float(squared)

    with slice_workers(other.factors.device) as run:
        return math.fsum(run(draw_block, side.blocks, noise))


def scan(
    x: torch.Tensor,
    mask: torch.Tensor,
    residual: torch.Tensor,
    start: torch.Tensor,
    mean: torch.Tensor,
    fixed: torch.Tensor | None,
    conditional: RowConditional,
    noise: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gibbs scan over the coordinates of each row ``b`` of ``start`` (``(B, d + 1)``, bias last) for the
    conditional ``N(P_b^-1 c_b, P_b^-1)``, ``P_b = alpha A_b'A_b + diag(lambda)``, ``c_b = alpha (A_b'y_b - fixed_b) +
    lambda mu_b``, ``A_b = [X_b, 1]``: ``x`` ``(B, L, d)`` holds the rows of ``X_b``, ``mask`` ``(B, L)`` is zero on
    padding (where ``x`` is too), ``residual`` ``(B, L)`` holds ``y_b - A_b start_b`` (zero on padding); the prior
    means ``mean`` and ``fixed`` are ``(d + 1,)`` or ``(B, d + 1)`` (``fixed`` may be None), the rest is
    ``conditional``'s; ``noise`` ``(B, d + 1)`` standard normal. Returns the new rows and the residuals ``y - A x``
    after the scan (``(L, B)`` by position from ``BY_POSITION_FROM`` rows, else ``(B, L)``)."""
    alpha, precision = conditional.noise_precision, conditional.prior[1]
    rows, length, dim = x.shape
    by_position = rows >= BY_POSITION_FROM
    over = 0 if by_position else 1  # the ratings' axis of mask, residual and each plane

    def per_row(values: torch.Tensor) -> torch.Tensor:  # (B,) against a (L, B) or (B, L) array
        return values if by_position else values[:, None]

    current = start.T.contiguous()  # (d + 1, B)
    squares = torch.cat([torch.linalg.vecdot(x, x, dim=1).T, mask.sum(1)[None]])
    # Coordinate k's draw moves it by weight_k * (a_k'e) + (a part that stays fixed during the scan).
    diagonal = alpha * squares + _by_row(precision, current)
    weight = alpha / diagonal
    prior_part = _by_row(precision * mean, current)
    if fixed is not None:
        prior_part = prior_part - alpha * fixed.T
    step = (alpha * squares * current + prior_part) / diagonal + noise.T * diagonal.rsqrt() - current
    if by_position:  # planes (d, L, B), each a strided view of x's rows transposed to (L, d, B)
        planes = transposed(x, rows).view(length, dim, rows).permute(1, 0, 2)
        residual, mask = residual.T.contiguous(), mask.T
    else:
        planes = transposed(x, rows * length).view(dim, rows, length)
    steps, weights = step.unbind(0), weight.unbind(0)
    for k, plane in enumerate(planes.unbind(0)):
        steps[k].addcmul_(weights[k], torch.linalg.vecdot(plane, residual, dim=over))
        residual.addcmul_(plane, per_row(steps[k]), value=-1)
    steps[-1].addcmul_(weights[-1], residual.sum(over))
    residual.addcmul_(mask, per_row(steps[-1]), value=-1)
    return (current + step).T, residual


def transposed(values: torch.Tensor, groups: int) -> torch.Tensor:
    """``values``' memory read as ``(groups, n / groups)`` and transposed, flat (``n / groups`` runs of ``groups``).

    It is ``channel_shuffle`` of a channels-last ``(1, n, 1, 1)`` view: torch transposes each pixel's channels there
    with vectorised tiles, 4-7x faster than ``copy_`` of a transposed view (element by element), which took a third of
    the sampler's time. Any layout torch picks gives the same values."""
    n = values.numel()
    channels_last = values.reshape(1, 1, 1, n).permute(0, 3, 1, 2)
    return F.channel_shuffle(channels_last, groups).reshape(n)


def _by_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A prior's ``(k,)`` or ``(B, k)`` values as ``(k, B)``, like ``like``."""
    return values[:, None].expand_as(like) if values.dim() == 1 else values.T
