"""The fast training path (``--solver als``): recovery, determinism, early stopping, CLI, the solver itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.config import SOLVERS, TrainConfig
from movierec.data.split import random_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.train import als, driver
from movierec.train.als_solver import MIN_IMPROVEMENT
from movierec.train.driver import EpochStats, fit, last_gain_epoch

from models_fixtures import check_resume_matches_a_straight_run, low_rank_dataset, rmse

ALS = {"solver": "als", "dim": 3, "reg": 0.01, "epochs": 30, "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    dataset, truth = low_rank_dataset()
    return dataset, truth, random_split(dataset.ratings, 0.1, seed=0)


def test_als_recovers_a_low_rank_matrix_near_the_noise_floor(data) -> None:
    dataset, truth, split = data
    result = fit(TrainConfig(**ALS), dataset, split.train, progress=False)
    predicted = result.model.predict(split.test.users, split.test.items)
    floor = truth.ideal_rmse(split.test)
    biases_only = fit(TrainConfig(model="biases"), dataset, split.train, progress=False).model
    assert rmse(predicted, split.test.ratings) < 1.2 * floor
    assert rmse(predicted, split.test.ratings) < 0.8 * rmse(
        biases_only.predict(split.test.users, split.test.items), split.test.ratings
    )
    assert result.history[0].val_rmse > result.best_val_rmse  # it learned, it did not start there


def test_als_is_deterministic_for_a_seed(data) -> None:
    dataset, _, split = data
    config = TrainConfig(**{**ALS, "dim": 8, "epochs": 4})
    first = fit(config, dataset, split.train, progress=False)
    second = fit(config, dataset, split.train, progress=False)
    other = fit(config.replace(seed=1), dataset, split.train, progress=False)
    np.testing.assert_array_equal(first.model.params.user_factors, second.model.params.user_factors)
    assert [h.val_rmse for h in first.history] == [h.val_rmse for h in second.history]
    assert not np.array_equal(first.model.params.user_factors, other.model.params.user_factors)


def test_exact_row_solves_train_the_same_model_as_cg_to_a_small_difference(data) -> None:
    """``als_cg_steps`` 0 reaches the solver (the factors differ from the CG run's) and the CG path lands within
    a hair of it at the same number of sweeps."""
    dataset, _, split = data
    config = TrainConfig(**{**ALS, "dim": 8, "epochs": 6})
    cg = fit(config, dataset, split.train, progress=False)
    exact = fit(config.replace(als_cg_steps=0), dataset, split.train, progress=False)
    assert not np.array_equal(cg.model.params.user_factors, exact.model.params.user_factors)
    cg_rmse = rmse(cg.model.predict(split.test.users, split.test.items), split.test.ratings)
    exact_rmse = rmse(exact.model.predict(split.test.users, split.test.items), split.test.ratings)
    assert abs(cg_rmse - exact_rmse) < 0.01


def test_early_stopping_restores_the_best_epoch(data) -> None:
    # Unregularised with many factors, ALS overfits this small matrix after a few sweeps.
    dataset, _, split = data
    config = TrainConfig(**{**ALS, "dim": 32, "reg": 0.0, "patience": 2})
    result = fit(config, dataset, split.train, progress=False)
    val = [h.val_rmse for h in result.history]
    assert len(val) < config.epochs
    assert result.best_epoch == int(np.argmin(val)) + 1 < len(val)
    assert result.best_val_rmse == min(val)
    # the exported model is the best epoch's: its validation RMSE matches that epoch's, not the last one's
    from movierec.data.split import validation_split

    valid = validation_split(split.train, config.val_fraction, seed=config.seed).test
    predicted = result.model.predict(valid.users, valid.items)
    assert rmse(predicted, valid.ratings) == pytest.approx(result.best_val_rmse, rel=1e-4)
    assert rmse(predicted, valid.ratings) < val[-1]


def test_resume_continues_from_the_checkpoint(data, tmp_path: Path) -> None:
    dataset, _, split = data
    check_resume_matches_a_straight_run(
        fit, TrainConfig(**{**ALS, "dim": 4, "epochs": 4, "patience": 10}), dataset, split.train, tmp_path, 1e-6
    )


def test_history_rows_have_the_loop_fields(data) -> None:
    dataset, _, split = data
    seen: list[EpochStats] = []
    result = fit(TrainConfig(**{**ALS, "epochs": 2}), dataset, split.train, progress=False, on_epoch=seen.append)
    assert seen == result.history and [h.epoch for h in seen] == [1, 2]
    row = seen[-1].to_row()
    assert set(row) == {"epoch", "train_loss", "train_rmse", "val_rmse", "lr", "seconds", "ratings_per_s", "reg"}
    assert all(math.isfinite(v) for v in row.values())
    assert [h.reg for h in seen] == [ALS["reg"]] * 2  # biased-mf keeps its one ridge
    assert row["train_loss"] >= row["train_rmse"] ** 2  # loss = squared error + a non-negative penalty


def test_patience_counts_from_the_last_gain_of_at_least_the_solvers_share() -> None:
    """ALS resets patience only on a relative gain of MIN_IMPROVEMENT; the loop (0) on any lower RMSE."""
    history = [EpochStats(e, 0.0, 0.0, v, 0.0, 1.0, 1.0) for e, v in enumerate([1.0, 0.9, 0.89999, 0.95, 0.8], 1)]
    assert last_gain_epoch(history[:4], 0.0) == 3
    assert last_gain_epoch(history[:4], MIN_IMPROVEMENT) == 2
    assert last_gain_epoch(history, MIN_IMPROVEMENT) == 5
    assert last_gain_epoch([], MIN_IMPROVEMENT) == 0


def test_every_solver_name_has_a_solver() -> None:
    assert set(driver.SOLVERS) == set(SOLVERS)


@pytest.mark.parametrize(
    ("steps", "compiled"), [(4, True), (4, False), (0, False)], ids=["cg-compiled", "cg-torch", "exact"]
)
def test_one_sweep_matches_an_exact_ridge_solve(steps: int, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough CG steps (dim + 1), by the compiled rows and by the torch ops, and the exact solve (steps 0),
    reproduce the closed-form ridge solution for each user."""
    monkeypatch.setattr(als, "COMPILED", compiled)
    rng = np.random.default_rng(0)
    n_users, n_items, dim, reg = 7, 5, 3, 0.1
    users = np.repeat(np.arange(n_users), 4).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, 4, replace=False) for _ in range(n_users)]).astype(np.int32)
    values = rng.normal(0, 1, users.size).astype(np.float32)
    side = als.build_side(users, items, values, n_users, n_items, torch.device("cpu"), block_ratings=8)
    assert len(side.blocks) > 1  # several blocks are exercised
    item_table = als.Factors(torch.randn(n_items + 1, dim), torch.randn(n_items + 1))
    item_table.factors[-1], item_table.bias[-1] = 0.0, 0.0
    user_table = als.Factors(torch.zeros(n_users + 1, dim), torch.zeros(n_users + 1))
    counts = torch.from_numpy(np.bincount(items, minlength=n_items).astype(np.float32))
    als.solve_side(side, user_table, item_table, als.mean_square(item_table.factors, counts), reg, 0.5, steps=steps)
    for u in range(n_users):
        mine = users == u
        x = np.c_[item_table.factors.numpy()[items[mine]], np.ones(mine.sum())].astype(np.float64)
        y = values[mine] - item_table.bias.numpy()[items[mine]]
        penalty = reg * mine.sum() * np.r_[np.ones(dim), 0.5]
        exact = np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)
        got = np.r_[user_table.factors[u].numpy(), user_table.bias[u].numpy()]
        np.testing.assert_allclose(got, exact, rtol=1e-3, atol=1e-4)
    assert float(user_table.factors[-1].abs().sum()) == 0.0  # the padding row stays zero


def test_padding_blocks_cover_every_rating_once() -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 50, 2_000).astype(np.int32)
    items = rng.integers(0, 30, 2_000).astype(np.int32)
    values = rng.normal(0, 1, 2_000).astype(np.float32)
    side = als.build_side(users, items, values, 60, 30, torch.device("cpu"), block_ratings=256)
    seen = []
    for block in side.blocks:
        valid = block.cols != 30
        assert bool((valid.sum(1) == block.counts.to(torch.long)).all())
        assert float(block.values[~valid].abs().sum()) == 0.0
        rows = block.rows[:, None].expand_as(block.cols)[valid]
        seen.append(torch.stack([rows, block.cols[valid].long()], 1))
    pairs = torch.cat(seen).numpy()
    expected = np.c_[users, items]
    assert sorted(map(tuple, pairs)) == sorted(map(tuple, expected))
    assert float(side.counts[50:].sum()) == 0.0  # users 50..59 have no ratings and no block rows


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3_000), st.integers(1, 80), st.booleans(), st.integers(0, 2**32 - 1))
def test_the_compiled_grouping_builds_the_sorted_grouping(n: int, n_rows: int, in_order: bool, seed: int) -> None:
    """``build_side`` by the compiled pass (a cursor per row) and by sorting the ratings by row: the same blocks,
    to the bit, for ratings in any order or already grouped (the sort's shortcut), with rows that have none."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_rows, n).astype(np.int32)
    rows = np.sort(rows) if in_order else rows
    cols, values = rng.integers(0, 40, n).astype(np.int32), rng.normal(0, 1, n).astype(np.float32)
    sides = []
    for compiled_from in (10**12, 0):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(als, "COMPILED_GROUPING_FROM", compiled_from)
            sides.append(als.build_side(rows, cols, values, n_rows, 40, torch.device("cpu"), block_ratings=64))
    assert len(sides[0].blocks) == len(sides[1].blocks)
    assert torch.equal(sides[0].counts, sides[1].counts)
    for sorted_block, compiled_block in zip(sides[0].blocks, sides[1].blocks, strict=True):
        for name in ("rows", "cols", "values", "counts"):
            assert torch.equal(getattr(sorted_block, name), getattr(compiled_block, name))


def test_als_refuses_models_it_cannot_train() -> None:
    with pytest.raises(MovieRecError, match="--solver als trains biased-mf and hybrid, not 'sigmoid-mf'"):
        registry.check(TrainConfig(solver="als", model="sigmoid-mf"))
    with pytest.raises(MovieRecError, match="--solver 'newton' is not valid"):
        TrainConfig(solver="newton")


def test_train_cli_with_solver_als(tmp_path: Path, capsys: pytest.CaptureFixture[str], data) -> None:
    from movierec.cli import main  # here, so the solver tests run where the CLI's extras are not installed

    split = data[2]
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    for part, path in ((split.train, train_csv), (split.test, test_csv)):
        frame = part.to_frame()
        frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
        frame.to_csv(path, index=False)
    out = tmp_path / "run"
    args = [
        "train",
        "--train-file",
        str(train_csv),
        "--test-file",
        str(test_csv),
        "--model",
        "biased-mf",
        "--solver",
        "als",
    ]
    assert main([*args, "--dim", "3", "--reg", "0.01", "--epochs", "5", "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((out / "config.json").read_text())
    assert saved.get("train", saved)["solver"] == "als"
    assert metrics["rmse"] < 0.5  # the noise is 0.2 on ratings spanning several stars
    assert main([*args, "--model", "sigmoid-mf", "--out", str(tmp_path / "bad")]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_als_on_cuda_matches_the_cpu(data) -> None:
    dataset, _, split = data
    config = TrainConfig(**{**ALS, "dim": 8, "epochs": 3})
    on_cpu = fit(config, dataset, split.train, progress=False)
    on_gpu = fit(config.replace(device="cuda"), dataset, split.train, progress=False)
    for cpu_stats, gpu_stats in zip(on_cpu.history, on_gpu.history, strict=True):
        assert gpu_stats.val_rmse == pytest.approx(cpu_stats.val_rmse, rel=1e-3)
    users, items = split.test.users, split.test.items
    np.testing.assert_allclose(on_gpu.model.predict(users, items), on_cpu.model.predict(users, items), atol=1e-2)


def test_cache_slices_solve_the_same_rows_as_whole_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slicing a block's rows to fit the cache budget solves the very same ridge regressions (the torch ops slice;
    the compiled rows solve whole blocks)."""
    monkeypatch.setattr(als, "COMPILED", False)
    rng = np.random.default_rng(3)
    users = rng.integers(0, 40, 3_000).astype(np.int32)
    items = rng.integers(0, 25, 3_000).astype(np.int32)
    values = rng.normal(0, 1, 3_000).astype(np.float32)
    side = als.build_side(users, items, values, 40, 25, torch.device("cpu"))
    item_table = als.Factors(torch.randn(26, 6), torch.randn(26))
    item_table.factors[-1], item_table.bias[-1] = 0.0, 0.0
    scale = als.mean_square(item_table.factors, torch.ones(25))
    solved = []
    for budget in (1 << 30, 64):  # whole blocks; then slices of one or two rows
        monkeypatch.setattr(als, "CPU_CACHE_FLOATS", budget)
        parts = [part for block in side.blocks for part in als.cache_slices(block, 6)]
        assert torch.equal(torch.cat([p.rows for p in parts]), torch.cat([b.rows for b in side.blocks]))
        if budget == 64:
            assert len(parts) > len(side.blocks)
        users_table = als.Factors(torch.zeros(41, 6), torch.zeros(41))
        als.solve_side(side, users_table, item_table, scale, 0.1, 0.5, 3)
        solved.append(users_table.factors.clone())
    torch.testing.assert_close(solved[0], solved[1], rtol=1e-4, atol=1e-5)


def test_the_compiled_rows_solve_what_the_torch_ops_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled CG rows (``als_kernel``) and the torch ops take the same steps from the same start: the hybrid's
    movie half (a fixed offset, a prior, the recorded sums) and the errors returned agree to float32 rounding, on
    one worker thread and on three."""
    rng = np.random.default_rng(5)
    n_users, n_items, dim = 60, 30, 7
    users = rng.integers(0, n_users, 4_000).astype(np.int32)
    items = (rng.pareto(1.0, 4_000) * 3).astype(np.int64).clip(0, n_items - 2).astype(np.int32)  # one movie unrated
    values = rng.normal(0, 1, 4_000).astype(np.float32)
    side = als.build_side(items, users, values, n_items, n_users, torch.device("cpu"), block_ratings=256)
    assert len(side.blocks) > 3 and max(b.cols.shape[1] for b in side.blocks) > 200  # short and long rows

    def table(rows: int) -> als.Factors:
        factors, bias = torch.from_numpy(rng.normal(0, 0.5, (rows + 1, dim)).astype(np.float32)), torch.randn(rows + 1)
        factors[-1], bias[-1] = 0.0, 0.0
        return als.Factors(factors, bias)

    user_rows, start, offset = table(n_users), table(n_items), table(n_items)
    scale = als.mean_square(user_rows.factors, torch.ones(n_users))
    threads = torch.get_num_threads()
    solved = {}
    for compiled, count in ((False, 1), (True, 1), (True, 3)):
        monkeypatch.setattr(als, "COMPILED", compiled)
        torch.set_num_threads(count)
        own = als.Factors(start.factors.clone(), start.bias.clone())
        sums = als.RowSums.zeros(n_items, dim, torch.device("cpu"))
        error = als.solve_side(side, own, user_rows, scale, 0.1, 0.3, 3, offset, (1.0, 5.0), sums)
        solved[compiled, count] = (own.factors, own.bias, sums.gradient, sums.squares, error)
    torch.set_num_threads(threads)
    for compiled_run in (solved[True, 1], solved[True, 3]):
        for got, expected in zip(compiled_run, solved[False, 1], strict=True):
            torch.testing.assert_close(got, expected, rtol=2e-4, atol=2e-4)
    for got, expected in zip(solved[True, 1], solved[True, 3], strict=True):
        assert torch.equal(got, expected)  # the threads share whole blocks: the same sums in the same order
    assert not torch.equal(solved[True, 1][0], start.factors)  # rows did move
