"""Coordinate-wise row draws (``gibbs_coordinate``): each row's exact conditional is their stationary distribution, the
residuals they leave are the training residuals, the draws do not depend on torch's threads, and a chain that draws its
rows so is deterministic (one seed, one chain; resume continues it) and recovers the model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.data.split import random_split
from movierec.models import registry
from movierec.train import als, gibbs, gibbs_coordinate
from movierec.train.driver import make_solver
from movierec.train.gibbs_cg import RowConditional
from movierec.train.gibbs_coordinate import draw_side_coordinates
from test_gibbs import assert_low_rank_chain_is_deterministic_and_recovers_the_model, assert_low_rank_chain_resumes
from test_gibbs_cg import GIBBS, exact_conditional

from models_fixtures import low_rank_dataset

N_USERS, N_ITEMS, DIM = 20_000, 60, 4
ALPHA = 1.7
MEAN, PRECISION = torch.tensor([0.2, -0.1, 0.0, 0.3, 0.1]), torch.tensor([3.0, 8.0, 0.5, 20.0, 1.0])
SHIFT, FIXED = torch.tensor([0.1, 0.0, -0.2, 0.0, 0.4]), torch.tensor([0.5, -1.0, 0.0, 2.0, -0.3])


def _identical_users(n_rated: int) -> tuple[als.Side, als.Factors, np.ndarray, np.ndarray]:
    """Many users with the same ratings of the same movies (one conditional); the side, the movies' rows, the rated
    movies and the ratings."""
    rng = np.random.default_rng(0)
    items = rng.choice(N_ITEMS, n_rated, replace=False)
    ratings = rng.normal(size=n_rated)
    users = np.repeat(np.arange(N_USERS), n_rated)
    side = als.build_side(
        users, np.tile(items, N_USERS), np.tile(ratings, N_USERS), N_USERS, N_ITEMS, torch.device("cpu")
    )
    generator = torch.Generator().manual_seed(1)
    movies = als.Factors(
        torch.cat([torch.randn(N_ITEMS, DIM, generator=generator) * 0.7 + 0.3, torch.zeros(1, DIM)]),
        torch.cat([torch.randn(N_ITEMS, generator=generator) * 0.5, torch.zeros(1)]),
    )
    return side, movies, items, ratings


@pytest.mark.parametrize(
    ("n_rated", "by_position_from", "compiled"),  # fewer ratings than the row's width (the prior decides), and many;
    [  # the compiled loop, and the torch ops (a GPU's) in both layouts
        (2, gibbs_coordinate.BY_POSITION_FROM, True),
        (40, gibbs_coordinate.BY_POSITION_FROM, True),
        (2, gibbs_coordinate.BY_POSITION_FROM, False),
        (40, gibbs_coordinate.BY_POSITION_FROM, False),
        (40, 10**9, False),
    ],
)
def test_coordinate_scans_keep_the_exact_conditional(
    n_rated: int, by_position_from: int, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows drawn from the exact conditional stay so distributed through scans (invariance), and rows started far
    off reach it (mean and covariance over the many users that share it); the residuals left are the ratings'."""
    monkeypatch.setattr(gibbs_coordinate, "BY_POSITION_FROM", by_position_from)
    monkeypatch.setattr(gibbs_coordinate, "COMPILED", compiled)
    side, movies, items, ratings = _identical_users(n_rated)
    design = np.concatenate([movies.factors[items].numpy(), np.ones((n_rated, 1))], 1).astype(np.float64)
    targets = ratings - movies.bias[items].numpy()
    exact_mean, exact_cov = exact_conditional(
        design, targets, ALPHA, (MEAN + SHIFT).numpy(), PRECISION.numpy(), FIXED.numpy()
    )
    rng = np.random.default_rng(2)
    exact = torch.from_numpy(rng.multivariate_normal(exact_mean, exact_cov, N_USERS).astype(np.float32))
    far = torch.randn(N_USERS, DIM + 1, generator=torch.Generator().manual_seed(3)) * 3
    conditional = RowConditional(
        ALPHA, (MEAN, PRECISION), torch.Generator().manual_seed(0), SHIFT.expand(N_USERS + 1, -1),
        FIXED.expand(N_USERS + 1, -1),
    )  # fmt: skip
    scale = np.sqrt(np.diag(exact_cov))
    for start, scans in ((exact, 2), (far, 30)):
        own = als.Factors(torch.cat([start[:, :-1], torch.zeros(1, DIM)]), torch.cat([start[:, -1], torch.zeros(1)]))
        for _ in range(scans):
            squared = draw_side_coordinates(side, own, movies, conditional)
        drawn = torch.cat([own.factors[:-1], own.bias[:-1, None]], 1).double().numpy()
        np.testing.assert_allclose(drawn.mean(0), exact_mean, atol=4 * scale.max() / np.sqrt(N_USERS))
        correlation = np.cov(drawn.T) / np.outer(scale, scale)
        np.testing.assert_allclose(correlation, exact_cov / np.outer(scale, scale), atol=0.04)
        residuals = targets[None, :] - drawn @ design.T
        np.testing.assert_allclose(squared, np.square(residuals).sum(), rtol=1e-4)


def test_the_draws_do_not_depend_on_the_threads() -> None:
    """Slices drawn side by side by worker threads (``slice_workers``) give the very draws of one thread drawing them
    in turn, and leave torch's thread setting as it was."""
    side, movies, _, _ = _identical_users(40)
    side = replace(side, blocks=[part for block in side.blocks for part in als.cache_slices(block, 64)])
    assert len(side.blocks) > 4  # several slices, so that the workers share them
    threads = torch.get_num_threads()
    drawn = []
    for count in (1, 3):
        torch.set_num_threads(count)
        try:
            own = als.Factors(torch.zeros(N_USERS + 1, DIM), torch.zeros(N_USERS + 1))
            conditional = RowConditional(ALPHA, (MEAN, PRECISION), torch.Generator().manual_seed(0))
            squared = draw_side_coordinates(side, own, movies, conditional)
            assert torch.get_num_threads() == count
        finally:
            torch.set_num_threads(threads)
        drawn.append((own.factors, own.bias, squared))
    assert torch.equal(drawn[0][0], drawn[1][0]) and torch.equal(drawn[0][1], drawn[1][1])
    assert drawn[0][2] == drawn[1][2]


def test_the_compiled_scan_draws_what_the_torch_ops_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """One scan from the same rows and noise by the compiled loop and by the torch ops (a GPU's path): the same rows
    and residuals up to float32 rounding (the sums run in another order)."""
    side, movies, _, _ = _identical_users(40)
    drawn = []
    for compiled in (True, False):
        monkeypatch.setattr(gibbs_coordinate, "COMPILED", compiled)
        own = als.Factors(torch.zeros(N_USERS + 1, DIM), torch.zeros(N_USERS + 1))
        conditional = RowConditional(ALPHA, (MEAN, PRECISION), torch.Generator().manual_seed(0))
        squared = draw_side_coordinates(side, own, movies, conditional)
        drawn.append((own.factors, own.bias, squared))
    torch.testing.assert_close(drawn[0][0], drawn[1][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(drawn[0][1], drawn[1][1], rtol=1e-4, atol=1e-5)
    assert drawn[0][2] == pytest.approx(drawn[1][2], rel=1e-4)
    assert not torch.equal(drawn[0][0], torch.zeros_like(drawn[0][0]))


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 7), (40, 2, 65), (2, 300, 64)])
def test_transposed_is_the_transpose(shape: tuple[int, int, int]) -> None:
    values = torch.randn(shape)
    rows = shape[0]
    expected = values.reshape(rows, -1).T.reshape(-1)
    assert torch.equal(gibbs_coordinate.transposed(values, rows), expected)


def _coordinate_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gibbs_coordinate, "COORDINATE_FROM_RATINGS", 0)
    monkeypatch.setattr(gibbs_coordinate, "COORDINATE_FROM_WIDTH", 0)


def test_a_chain_drawn_coordinate_wise_is_deterministic_and_recovers_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    _coordinate_draws(monkeypatch)
    assert_low_rank_chain_is_deterministic_and_recovers_the_model(GIBBS)


def test_a_resumed_chain_drawn_coordinate_wise_continues_the_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _coordinate_draws(monkeypatch)
    assert_low_rank_chain_resumes(GIBBS, tmp_path)


def test_the_noise_precision_sees_the_residuals_the_movie_draw_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """Biased MF's sweep takes the training residuals' sum of squares from the coordinate-wise movie draw instead of
    predicting every rating again: the two agree."""
    _coordinate_draws(monkeypatch)
    seen: list[float] = []
    draw = gibbs.draw_noise_precision
    monkeypatch.setattr(
        gibbs, "draw_noise_precision", lambda squared, *rest: seen.append(squared) or draw(squared, *rest)
    )
    dataset, _ = low_rank_dataset()
    config = registry.config_for("biased-mf", **GIBBS)
    parts = random_split(dataset.ratings, 0.1, seed=0)
    solver = make_solver(config, dataset, parts.train, parts.test, torch.device("cpu"))
    solver.start()
    for epoch in (1, 2):
        solver.run_epoch(epoch)
    state = solver.state
    assert state.drawn_squares is not None
    users, items, ratings = state.train_ratings
    residual = ratings - als.predict(state.users, state.items, state.mean, users, items)
    assert seen[-1] == pytest.approx(float(residual.double().square().sum()), rel=1e-5)
