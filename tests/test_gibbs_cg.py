"""Perturb-and-solve CG row draws (``gibbs_cg``): their mean and covariance are the exact conditional's, and a chain
that draws its rows by CG is deterministic (one seed, one chain; resume continues it) and recovers the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.train import als, gibbs_cg
from movierec.train.gibbs_cg import RowConditional, draw_side_cg
from test_gibbs import assert_low_rank_chain_is_deterministic_and_recovers_the_model, assert_low_rank_chain_resumes

GIBBS = {"solver": "gibbs", "dim": 3, "epochs": 12, "gibbs_burn_in": 4, "device": "cpu", "watch_dim": 0}


def exact_conditional(
    design: np.ndarray, targets: np.ndarray, alpha: float, mean: np.ndarray, precision: np.ndarray, less: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``N(P^-1 c, P^-1)``, ``P = alpha A'A + diag(lambda)``, ``c = alpha (A'y - less) +
    lambda mu``, in float64."""
    exact_precision = alpha * design.T @ design + np.diag(precision)
    cov = np.linalg.inv(exact_precision)
    return cov @ (alpha * (design.T @ targets - less) + precision * mean), cov


@pytest.mark.parametrize("n_rated", [2, 40])  # fewer ratings than the row's width (the prior decides), and many
def test_cg_draws_have_the_exact_conditionals_mean_and_covariance(n_rated: int) -> None:
    """Many users with the same ratings of the same movies share one conditional: their CG draws, each from its own
    (random) current row, are samples of it."""
    rng = np.random.default_rng(0)
    n_users, n_items, dim = 20_000, 60, 4
    items = rng.choice(n_items, n_rated, replace=False)
    ratings = rng.normal(size=n_rated)
    users = np.repeat(np.arange(n_users), n_rated)
    side = als.build_side(
        users, np.tile(items, n_users), np.tile(ratings, n_users), n_users, n_items, torch.device("cpu")
    )
    movies = als.Factors(
        torch.cat([torch.randn(n_items, dim) * 0.7 + 0.3, torch.zeros(1, dim)]),
        torch.cat([torch.randn(n_items) * 0.5, torch.zeros(1)]),
    )
    own = als.Factors(torch.randn(n_users + 1, dim) * 3, torch.randn(n_users + 1) * 3)
    alpha, mean = 1.7, torch.tensor([0.2, -0.1, 0.0, 0.3, 0.1])
    precision, shift = torch.tensor([3.0, 8.0, 0.5, 20.0, 1.0]), torch.tensor([0.1, 0.0, -0.2, 0.0, 0.4])
    fixed = torch.tensor([0.5, -1.0, 0.0, 2.0, -0.3])
    conditional = RowConditional(
        alpha, (mean, precision), torch.Generator().manual_seed(0), shift.expand(n_users + 1, -1),
        fixed.expand(n_users + 1, -1),
    )  # fmt: skip
    steps = draw_side_cg(side, own, movies, conditional)
    assert max(steps) < gibbs_cg.MAX_STEPS  # every block met the tolerance
    design = np.concatenate([movies.factors[items].numpy(), np.ones((n_rated, 1))], 1).astype(np.float64)
    targets = ratings - movies.bias[items].numpy()
    exact_mean, exact_cov = exact_conditional(
        design, targets, alpha, (mean + shift).numpy(), precision.numpy(), fixed.numpy()
    )
    drawn = torch.cat([own.factors[:-1], own.bias[:-1, None]], 1).double().numpy()
    scale = np.sqrt(np.diag(exact_cov))
    np.testing.assert_allclose(drawn.mean(0), exact_mean, atol=4 * scale.max() / np.sqrt(n_users))
    correlation = np.cov(drawn.T) / np.outer(scale, scale)
    np.testing.assert_allclose(correlation, exact_cov / np.outer(scale, scale), atol=0.04)


def test_a_chain_drawn_by_cg_is_deterministic_and_recovers_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gibbs_cg, "CG_FROM_RATINGS", 0)
    monkeypatch.setattr(gibbs_cg, "CG_FROM_WIDTH", 0)
    assert_low_rank_chain_is_deterministic_and_recovers_the_model(GIBBS)


def test_a_resumed_chain_drawn_by_cg_continues_the_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CG starts from the current rows, which the checkpoint holds: a resumed chain draws what an unbroken one does."""
    monkeypatch.setattr(gibbs_cg, "CG_FROM_RATINGS", 0)
    monkeypatch.setattr(gibbs_cg, "CG_FROM_WIDTH", 0)
    assert_low_rank_chain_resumes(GIBBS, tmp_path)


def test_the_size_rule_keeps_the_cholesky_draws_on_small_data_or_narrow_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    side = als.build_side(
        np.arange(100) % 10, rng.integers(0, 5, 100), rng.normal(size=100), 10, 5, torch.device("cpu")
    )
    assert not gibbs_cg.draws_by_cg(side, 65)  # 100 ratings: small data
    monkeypatch.setattr(gibbs_cg, "CG_FROM_RATINGS", 100)
    assert gibbs_cg.draws_by_cg(side, 65)
    assert not gibbs_cg.draws_by_cg(side, 17)  # the hybrid's dim 16
