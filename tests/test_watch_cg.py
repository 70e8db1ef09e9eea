"""The "likely to watch" fit by conjugate gradients: it reaches the exact row solutions, its objective stays
with the exact fit's after the same sweeps, and the signed taste targets still push a disliked movie's
neighbours down."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.data.ratings import Ratings
from movierec.data.split import random_split
from movierec.data.synthetic import generate_ratings
from movierec.models.watch import Taste
from movierec.train import watch_cg
from movierec.train.als import Side, build_side
from movierec.train.watch import (
    CG_STEPS,
    REFIT_ITERATIONS,
    WatchFactors,
    WatchSettings,
    exact_rows,
    fit_watch,
    watch_objective,
)
from movierec.train.watch import watched as watched_side
from movierec.train.watch_cg import Eigenbasis, cg_rows

CPU = torch.device("cpu")


def padded(table: np.ndarray) -> torch.Tensor:
    """``table`` as a tensor with the zero padding row last."""
    return torch.cat([torch.from_numpy(table), torch.zeros(1, table.shape[1])])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_enough_cg_steps_reach_the_exact_row_solutions(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_cg, "COMPILED", compiled)
    rng = np.random.default_rng(0)
    n_rows, n_cols, dim = 30, 40, 8
    rows, cols = np.nonzero(rng.random((n_rows, n_cols)) < 0.3)
    targets = rng.choice([1.0, -0.5], size=rows.size).astype(np.float32)
    side = build_side(rows, cols, targets, n_rows, n_cols, CPU, block_ratings=64)
    assert len(side.blocks) > 1
    other = padded(rng.normal(size=(n_cols, dim)).astype(np.float32))
    shared = 0.5 * (other.T @ other) + 2.0 * torch.eye(dim)
    exact, iterated = torch.zeros(n_rows + 1, dim), padded(rng.normal(size=(n_rows, dim)).astype(np.float32))
    exact_rows(side, exact, other, shared)
    cg_rows(side, iterated, other, Eigenbasis.of(other.T @ other, 0.5, 2.0), steps=3 * dim)
    torch.testing.assert_close(iterated, exact, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def watched() -> Ratings:
    return generate_ratings(n_users=400, n_items=300, n_ratings=12_000, seed=1)


def objective(train: Ratings, factors: WatchFactors, settings: WatchSettings) -> float:
    side = build_side(train.users, train.items, np.ones(len(train), np.float32), train.n_users, train.n_items, CPU)
    return watch_objective(side, padded(factors.user), padded(factors.item), settings)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_the_cg_fit_ends_within_a_small_margin_of_the_exact_fits_objective(
    watched: Ratings, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_cg, "COMPILED", compiled)
    exact = WatchSettings(dim=16, cg_steps=0)
    iterated = WatchSettings(dim=16, cg_steps=CG_STEPS)
    start = objective(watched, fit_watch(watched, WatchSettings(dim=16, iterations=1, cg_steps=0)), exact)
    best = objective(watched, fit_watch(watched, exact), exact)
    reached = objective(watched, fit_watch(watched, iterated), iterated)
    assert best < start  # the sweeps matter, so the margin below says something
    assert best * (1 - 1e-4) <= reached <= best * 1.0001  # preconditioned, a step does what the exact solve does


def test_the_watched_side_is_the_grouping_with_every_target_one(watched: Ratings) -> None:
    signed = Taste(float(watched.ratings.mean()), margin=1.0, dislike=-0.5).targets(
        watched.users, watched.ratings, watched.n_users
    )
    ones = np.ones(len(watched), np.float32)
    grouped = build_side(watched.users, watched.items, signed, watched.n_users, watched.n_items, CPU, 512)
    expected = build_side(watched.users, watched.items, ones, watched.n_users, watched.n_items, CPU, 512)
    assert (signed < 0).any()
    for got, want in zip(watched_side(grouped).blocks, expected.blocks, strict=True):
        torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)
        torch.testing.assert_close(got.cols, want.cols, rtol=0, atol=0)


def test_the_signed_solve_from_cg_matches_the_exact_one(watched: Ratings) -> None:
    taste = Taste(float(watched.ratings.mean()), margin=1.0, dislike=-0.5)
    exact = fit_watch(watched, WatchSettings(dim=16, cg_steps=0), taste)
    iterated = fit_watch(watched, WatchSettings(dim=16), taste)
    scores = exact.user @ exact.item.T
    assert np.abs(iterated.user @ iterated.item.T - scores).max() < 0.02 * np.abs(scores).max()


def test_a_disliked_movie_pulls_its_neighbours_watch_scores_down() -> None:
    from movierec.data.loader import load_dataset

    train = load_dataset("ml-latest-small").ratings
    settings = WatchSettings(dim=32)
    taste = Taste(float(train.ratings.mean()), margin=1.0, dislike=-0.5)
    signed = fit_watch(train, settings, taste)
    blind = fit_watch(train, settings, Taste(taste.global_mean, dislike=1.0))
    np.testing.assert_array_equal(signed.item, blind.item)  # only the users' last solve differs
    disliked = np.flatnonzero(taste.targets(train.users, train.ratings, train.n_users) < 0)
    unit = signed.item / np.maximum(np.linalg.norm(signed.item, axis=1, keepdims=True), 1e-12)
    changes = []
    for rating in disliked[:: max(1, disliked.size // 300)]:
        user, movie = train.users[rating], train.items[rating]
        neighbours = np.argsort(-(unit @ unit[movie]))[1:11]
        changes.append(signed.item[neighbours] @ (signed.user[user] - blind.user[user]))
    changes_array = np.array(changes)
    assert (changes_array.mean(1) < 0).mean() > 0.9


def test_a_refit_warm_started_from_the_fit_part_reaches_a_fit_from_scratch(watched: Ratings) -> None:
    settings = WatchSettings(dim=16)
    fit_part = random_split(watched, 0.05, seed=0).train  # the driver's fit part: all but a validation share
    earlier = fit_watch(fit_part, settings)
    scratch = objective(watched, fit_watch(watched, settings), settings)
    cold_few = objective(watched, fit_watch(watched, WatchSettings(dim=16, iterations=REFIT_ITERATIONS)), settings)
    warm = fit_watch(watched, WatchSettings(dim=16, iterations=REFIT_ITERATIONS), start=earlier.item)
    assert scratch * 1.002 < cold_few  # as few sweeps from random vectors fall short, so the start is what counts
    assert objective(watched, warm, settings) <= scratch * 1.002


def row_problem(
    rng: np.random.Generator, pairs: np.ndarray, n_rows: int, n_cols: int, dim: int = 12, shuffled: bool = False
) -> tuple[Side, torch.Tensor, torch.Tensor, Eigenbasis]:
    """Signed targets on the distinct ``pairs`` (row, column), grouped into small blocks (in a random order within
    each row with ``shuffled``), random other and starting rows, and the other side's eigenbasis."""
    pairs = np.unique(pairs, axis=0)
    if shuffled:
        pairs = pairs[rng.permutation(len(pairs))]
    targets = rng.choice([1.0, -0.5], size=len(pairs)).astype(np.float32)
    side = build_side(pairs[:, 0], pairs[:, 1], targets, n_rows, n_cols, CPU, block_ratings=128)
    assert len(side.blocks) > 3
    other = padded(rng.normal(size=(n_cols, dim)).astype(np.float32))
    start = padded(rng.normal(size=(n_rows, dim)).astype(np.float32))
    return side, other, start, Eigenbasis.of(other.T @ other, 0.5, 2.0)


def test_the_compiled_rows_take_the_torch_ops_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """One and two CG steps by the compiled loop (``als_kernel.watch_cg_block``) land where the torch ops land, on
    one worker thread and on three (short and long rows, signed targets, a column nobody rated)."""
    rng = np.random.default_rng(4)
    n_rows, n_cols = 50, 30
    cols = (rng.pareto(1.0, 3_000) * 2).astype(np.int64).clip(0, n_cols - 2)
    side, other, start, basis = row_problem(rng, np.c_[rng.integers(0, n_rows, 3_000), cols], n_rows, n_cols)
    threads = torch.get_num_threads()
    for steps in (1, 2):
        solved = {}
        for compiled, count in ((False, 1), (True, 1), (True, 3)):
            monkeypatch.setattr(watch_cg, "COMPILED", compiled)
            torch.set_num_threads(count)
            solved[compiled, count] = start.clone()
            cg_rows(side, solved[compiled, count], other, basis, steps)
        torch.set_num_threads(threads)
        torch.testing.assert_close(solved[True, 1], solved[False, 1], rtol=1e-4, atol=1e-5)
        assert torch.equal(solved[True, 1], solved[True, 3])
        assert not torch.allclose(solved[True, 1], start)


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_the_tiled_loop_takes_the_block_loops_steps(order: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``TILED_FROM`` the other table is read a few rows at a time (``als_kernel.watch_cg_tiled``): 1 to 3 CG
    steps land where the block loop lands, on one worker thread and on three, whether each row's columns come
    sorted (ratings grouped from files sorted by user) or not."""
    rng = np.random.default_rng(5)
    n_rows, n_cols = 60, 45
    pairs = np.c_[rng.integers(0, n_rows, 2_500), rng.integers(0, n_cols - 1, 2_500)]
    side, other, start, basis = row_problem(rng, pairs, n_rows, n_cols, shuffled=order == "shuffled")
    threads = torch.get_num_threads()
    monkeypatch.setattr(watch_cg, "TILE_BYTES", 4 * other.shape[1] * 7)  # tiles of 7 rows: 7 of them
    for steps in (1, 2, 3):
        solved = {}
        for tiled_from, count in ((1 << 40, 1), (0, 1), (0, 3)):
            monkeypatch.setattr(watch_cg, "TILED_FROM", tiled_from)
            torch.set_num_threads(count)
            solved[tiled_from, count] = start.clone()
            cg_rows(side, solved[tiled_from, count], other, basis, steps)
        torch.set_num_threads(threads)
        torch.testing.assert_close(solved[0, 1], solved[1 << 40, 1], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(solved[0, 3], solved[0, 1], rtol=1e-6, atol=1e-7)
        assert not torch.allclose(solved[0, 1], start)
