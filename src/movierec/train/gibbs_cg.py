"""Row draws by perturb-and-solve conjugate gradients: the Gibbs sampler's rows for large data, matrix-free.

A row's conditional is ``N(P^-1 c, P^-1)`` with ``P = alpha A'A + diag(lambda)`` and ``c = alpha A'y + lambda mu``
(``gibbs_draws``). Perturb both data and prior: ``y~ = y + alpha^-1/2 e1`` (one standard normal per rating) and
``mu~ = mu + lambda^-1/2 e2`` (one per column). Then ``c~ = alpha A'y~ + lambda mu~`` has mean ``c`` and covariance
``alpha A'A + diag(lambda) = P``, so the solution of ``P x = c~`` has mean ``P^-1 c`` and covariance
``P^-1 P P^-1 = P^-1``: an exact draw when solved exactly (Papandreou and Yuille 2010; Orieux et al. 2012).

The solve is ALS's (``als.solve_side``): each block's gathered rows ``X`` (the other side's vectors of its ratings,
``als.sliced``/``gathered_into``), Jacobi-preconditioned CG, every step two batched matrix-vector products over
``X`` (a few ``n d`` flops where forming each row's Gram matrix costs ``n d^2``), warm-started from the current
sample. The draw is as close to exact as the solve: CG stops once every row of the block has
``r'M^-1 r <= (TOLERANCE)^2 k`` (``M`` the preconditioner, ``k`` the row's width). ``r'P^-1 r`` is the squared
``P``-norm of the draw's error, and a draw's own spread about the mean has squared ``P``-norm ``k`` on average (a
chi-square with ``k`` degrees of freedom): so the error is about ``TOLERANCE`` of a posterior standard deviation
(``M`` stands in for ``P`` there, as CG's own measure). ``MAX_STEPS`` bounds a block's steps.

Where ``gibbs_coordinate``'s size rule holds (today wherever this one does) the sampler draws its rows coordinate-wise
instead, at a fixed cost that is lower once the rows carry signal (CG then takes 8 steps a block at the median, up to
19); on ratings with little low-rank signal, where CG converges in 1-3 steps, these draws cost less (see there).
They stay selectable by moving the rules (``train_speed.py --gibbs-draws cg``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from movierec.train import als

TOLERANCE = 0.01
"""A draw's error in posterior standard deviations (in the preconditioner's norm, see the module docstring): far
below what a chain's averages can see, and cheap, as CG converges fast near the end (biased MF, dim 64, 2.5M
ratings: a block's median steps 10 at 0.01 and at 0.02, 8 at 0.05; tests/test_gibbs_cg.py's exact-covariance check
fails from about 1.0)."""
MAX_STEPS = 60
"""At most this many CG steps a block (rows that have not met ``TOLERANCE`` by then keep their last iterate)."""
CG_FROM_RATINGS = 2_000_000
"""A side's rows are drawn by CG (``draws_by_cg``, unless ``gibbs_coordinate.draws_by_coordinates``) from this many
(padded) ratings on, so that data sets up to ML-1M's size keep the Cholesky draws, and their chains, as they were."""
CG_FROM_WIDTH = 57
"""... and from this row width (``dim + 1``) on. CG's steps cost ``n k`` each where the Cholesky draw's Gram costs
``n k^2`` once, and the steps a row needs hardly shrink with ``k`` (10-20 at 2.5M ratings). Both
sides' draws at 2.5M ML-25M-shaped ratings, one thread, by Cholesky and by CG, the same chain state: dim 16 1.0 s
and 1.6 s, dim 32 3.2 s and 3.7 s, dim 48 3.8 s and 3.9 s, dim 64 6.9 s and 5.6 s (a loaded machine: ratios only)."""
_TINY = 1e-30


@dataclass(frozen=True)
class RowConditional:
    """What a side's matrix-free row draws condition on beside the other side's rows: the noise precision, the
    block's prior ``(mean, precision)`` (``(k,)`` each), the generator, and per row (``(n_rows + 1, k)`` tables, or
    None) a move of the prior mean (``shift``) and a part taken off ``A'y`` (``fixed``: the time terms' part,
    ``gibbs_time.row_shift``), as ``GibbsState.draw_side`` passes them."""

    noise_precision: float
    prior: tuple[torch.Tensor, torch.Tensor]
    generator: torch.Generator
    shift: torch.Tensor | None = None
    fixed: torch.Tensor | None = None

    def of_block(self, block: als.Block, own: als.Factors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A block slice's current rows ``[factors, bias]`` ``(B, k)``, prior means and ``fixed`` parts (or None)."""
        mean = self.prior[0] if self.shift is None else self.prior[0] + self.shift.index_select(0, block.rows)
        less = None if self.fixed is None else self.fixed.index_select(0, block.rows)
        current = torch.cat([own.factors.index_select(0, block.rows), own.bias.index_select(0, block.rows)[:, None]], 1)
        return current, mean, less


def draws_by_cg(side: als.Side, k: int) -> bool:
    """Whether the rows of ``side`` (width ``k``) are drawn by CG (``CG_FROM_RATINGS``, ``CG_FROM_WIDTH``)."""
    return k >= CG_FROM_WIDTH and side.padded_size >= CG_FROM_RATINGS


def draw_side_cg(side: als.Side, own: als.Factors, other: als.Factors, conditional: RowConditional) -> list[int]:
    """Draw every row of ``own`` (``[factors, bias]``) that has ratings from its conditional, in place, by
    perturb-and-solve CG from the current rows. Returns the CG steps each block slice took."""
    slices, buffer = als.sliced(side, other.factors)
    steps = []
    with torch.no_grad():
        for block in slices:
            x = als.gathered_into(buffer, other.factors, block.cols)
            mask = (block.cols != side.n_cols).to(x.dtype)
            target = als.row_targets(block, x, mask, other.bias, None)
            current, mean, less = conditional.of_block(block, own)
            drawn, taken = perturbed_solve(
                x, mask, target, current, conditional.noise_precision, mean, conditional.prior[1],
                conditional.generator, less,
            )  # fmt: skip
            own.factors.index_copy_(0, block.rows, drawn[:, :-1])
            own.bias.index_copy_(0, block.rows, drawn[:, -1])
            steps.append(taken)
    return steps


def perturbed_solve(
    x: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor,
    start: torch.Tensor,
    noise_precision: float,
    mean: torch.Tensor,
    precision: torch.Tensor,
    generator: torch.Generator,
    fixed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """One draw per row ``b`` of ``N(P_b^-1 c_b, P_b^-1)``, ``P_b = alpha A_b'A_b + diag(lambda)``, ``c_b = alpha
    (A_b'y_b - fixed_b) + lambda * mu_b``, for the design ``A_b = [X_b, 1]`` (``x`` ``(B, L, d)``, zero where
    ``mask`` is) and targets ``y_b`` (``target`` ``(B, L)``), by CG from ``start`` ``(B, d + 1)``; the prior
    ``(d + 1,)`` or ``(B, d + 1)``. Returns the draws and the CG steps taken."""
    batch, k = start.shape
    alpha = noise_precision
    data_noise = torch.randn(target.shape, generator=generator, device=x.device, dtype=x.dtype)
    prior_noise = torch.randn((batch, k), generator=generator, device=x.device, dtype=x.dtype)
    perturbed = target + data_noise * mask * alpha**-0.5
    perturbed_mean = mean + prior_noise * precision.rsqrt()
    solution = start.clone()
    residual = alpha * _design_t(x, perturbed - _design(x, mask, solution)) + precision * (perturbed_mean - solution)
    if fixed is not None:
        residual -= alpha * fixed
    inverse = 1.0 / (alpha * torch.cat([x.square().sum(1), mask.sum(1, keepdim=True)], 1) + precision)
    z = inverse * residual
    direction, rz = z, (residual * z).sum(1)
    bar = TOLERANCE**2 * k
    for step in range(MAX_STEPS):
        if float(rz.max()) <= bar:
            return solution, step
        moved = _design(x, mask, direction)
        product = alpha * _design_t(x, moved) + precision * direction
        step_size = rz / (direction * product).sum(1).clamp_min(_TINY)
        solution += step_size[:, None] * direction
        residual -= step_size[:, None] * product
        z = inverse * residual
        rz_next = (residual * z).sum(1)
        direction = z + (rz_next / rz.clamp_min(_TINY))[:, None] * direction
        rz = rz_next
    return solution, MAX_STEPS


def _design(x: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``A v`` per row for ``A = [X, 1]`` (zero on padding): ``(B, L)``."""
    return als.times(x, rows[:, :-1]) + rows[:, -1:] * mask


def _design_t(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``A' e`` per row for ``A = [X, 1]`` and ``e`` zero on padding: ``(B, d + 1)``."""
    return torch.cat([als.transposed_times(x, values), values.sum(1, keepdim=True)], 1)
