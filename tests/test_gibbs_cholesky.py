"""The Gibbs sampler's batched Gaussian draws: the column loop and LAPACK's per-matrix calls give one draw, and the
joined row systems are the blocks' own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.train import als
from movierec.train.gibbs import merged_systems
from movierec.train.gibbs_cholesky import VECTORISED_FROM, gaussian_draws


def _lapack_draw(
    gram: torch.Tensor, scale: float, diagonal: torch.Tensor, shift: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The draw by torch's own Cholesky and solves, in float64."""
    precision = (scale * gram + torch.diag_embed(diagonal.expand_as(shift))).double()
    chol = torch.linalg.cholesky(precision)
    mean = torch.cholesky_solve(shift.double().unsqueeze(-1), chol)
    spread = torch.linalg.solve_triangular(chol.mT, noise.double().unsqueeze(-1), upper=True)
    return (mean + spread).squeeze(-1)


@pytest.mark.parametrize("batch", [VECTORISED_FROM - 1, VECTORISED_FROM + 40])
@pytest.mark.parametrize("per_row_prior", [False, True])
def test_both_ways_of_drawing_give_the_exact_draw(batch: int, per_row_prior: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    k = 6
    design = torch.randn(batch, 9, k, generator=generator)
    gram = design.mT @ design
    diagonal = torch.rand(batch, k, generator=generator) + 0.5
    diagonal = diagonal if per_row_prior else diagonal[0]  # one prior for every row, or one per row
    shift, noise = torch.randn(batch, k, generator=generator), torch.randn(batch, k, generator=generator)
    before = gram.clone()
    parts = [gram[:100], gram[100:]]
    drawn = gaussian_draws(parts, 2.0, diagonal, shift, noise)
    np.testing.assert_allclose(drawn.double(), _lapack_draw(gram, 2.0, diagonal, shift, noise), rtol=1e-4, atol=1e-4)
    assert torch.equal(gram, before)  # the Gram matrices are read, not overwritten


def test_joined_systems_are_the_blocks_systems_in_order() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 12
    users = np.repeat(np.arange(n_users), rng.integers(1, 8, n_users))
    items = rng.integers(0, n_items, users.size)
    side = als.build_side(users, items, rng.normal(size=users.size), n_users, n_items, torch.device("cpu"), 30)
    other = als.Factors(torch.randn(n_items + 1, 3), torch.randn(n_items + 1))
    blocks = list(als.row_systems(side, other))
    assert len(blocks) > 3
    joined = list(merged_systems(iter(blocks), most_rows=12))
    assert torch.equal(torch.cat([rows for rows, _, _ in joined]), torch.cat([b.block.rows for b in blocks]))
    assert torch.equal(torch.cat([torch.cat(grams) for _, grams, _ in joined]), torch.cat([b.gram for b in blocks]))
    assert torch.equal(torch.cat([rhs for _, _, rhs in joined]), torch.cat([b.rhs for b in blocks]))
    assert all(len(rows) <= 12 or len(grams) == 1 for rows, grams, _ in joined)
