"""Run comparison (`movierec report`) and sweeps (`movierec sweep`) on tiny data, through the real CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.split import random_split
from movierec.data.synthetic import generate_low_rank
from movierec.errors import MovieRecError
from movierec.reports import compare
from movierec.reports import sweep as sweep_module
from movierec.reports.compare import RunSummary, best_run, plot_learning_curves, plot_sweep, read_summaries
from movierec.reports.sweep_values import parse_values

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Train and test CSVs: 120 users × 60 movies, 3,000 ratings of a rank-3 model."""
    truth = generate_low_rank(120, 60, 3_000, rank=3, noise_std=0.2, seed=1, interaction_std=0.8)
    split = random_split(truth.ratings, 0.1, seed=0)
    root = tmp_path_factory.mktemp("files")
    paths = root / "train.csv", root / "test.csv"
    for part, path in zip((split.train, split.test), paths, strict=True):
        frame = part.to_frame()
        frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
        frame.to_csv(path, index=False)
    return paths


def data_args(files: tuple[Path, Path], dim: bool = True) -> list[str]:
    return ["--train-file", str(files[0]), "--test-file", str(files[1]), "--epochs", "2", *(["--dim", "4"] * dim)]


@pytest.fixture(scope="module")
def swept(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-value learning-rate sweep, run once for the tests that read it."""
    out = tmp_path_factory.mktemp("sweep")
    args = ["sweep", "--param", "lr", "--values", "0.002, 0.05", *data_args(files), "--out", str(out), "--quiet"]
    assert main(args) == 0
    return out


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_sweep_trains_one_run_per_value(swept: Path) -> None:
    runs = sorted((swept / "runs").iterdir())
    assert [r.name for r in runs] == ["lr-0.002", "lr-0.05"]
    for run, lr in zip(runs, (0.002, 0.05), strict=True):
        config = json.loads((run / "config.json").read_text())["train"]
        assert config["lr"] == lr
        assert config["dim"] == 4 and config["epochs"] == 2  # the other train options reach every run
        assert (run / "manifest.json").is_file()


def test_sweep_picks_the_lowest_validation_rmse(swept: Path) -> None:
    val = {lr: read_metrics(swept / "runs" / f"lr-{lr:g}")["best_val_rmse"] for lr in (0.002, 0.05)}
    summary = json.loads((swept / "sweep.json").read_text())
    assert summary["param"] == "lr" and summary["values"] == [0.002, 0.05]
    assert summary["best_value"] == min(val, key=val.__getitem__)
    assert summary["failed"] == {}


def test_sweep_report_is_self_contained(swept: Path) -> None:
    page = (swept / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # learning curves and the sweep figure
    assert not re.search(r"""src=["'](?!data:)""", page)  # nothing loaded from elsewhere
    assert "lr=0.002" in page and "lr=0.05" in page
    for name in ("learning_curves.png", "sweep.png"):
        assert (swept / name).read_bytes()[:8] == PNG_MAGIC
    table = pd.read_csv(swept / "metrics.csv")
    assert list(table["lr"]) == [0.002, 0.05]
    for row in table.itertuples():
        assert row.rmse == pytest.approx(read_metrics(swept / "runs" / f"lr-{row.lr:g}")["rmse"])


def test_a_train_share_sweep_is_the_learning_curve_against_data_volume(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--param", "train-share", "--values", "0.25,0.5,1", *data_args(files), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    runs = [load_run(out / "runs" / f"train-share-{share:g}") for share in (0.25, 0.5, 1)]
    full = pd.read_csv(files[0])
    assert [len(run.train) for run in runs] == [round(len(full) * share) for share in (0.25, 0.5, 1)]
    pairs = [set(zip(run.train.users.tolist(), run.train.items.tolist(), strict=True)) for run in runs]
    assert pairs[0] < pairs[1] < pairs[2]  # one seed: each share holds the smaller ones
    n_test = {read_metrics(run.path)["n_test"] for run in runs}
    assert n_test == {len(pd.read_csv(files[1]))}  # the test split stays whole
    assert [run.data.get("train_share", 1.0) for run in runs] == [0.25, 0.5, 1.0]
    assert list(pd.read_csv(out / "metrics.csv")["train_share"]) == [0.25, 0.5, 1.0]
    summary = json.loads((out / "sweep.json").read_text())
    assert set(summary["runs"]) == {"0.25", "0.5", "1"} and summary["best_value"] in (0.25, 0.5, 1.0)


def test_any_numeric_setting_can_be_swept(files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--param", "watch-reg", "--values", "5,20", *data_args(files), "--watch-dim", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    saved = [json.loads((out / "runs" / f"watch-reg-{v}" / "config.json").read_text())["train"] for v in (5, 20)]
    assert [(s["watch_reg"], s["watch_dim"]) for s in saved] == [(5.0, 2), (20.0, 2)]


def test_report_compares_runs(swept: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [swept / "runs" / "lr-0.002", swept / "runs" / "lr-0.05"]
    out = tmp_path / "report"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    assert str(out / "report.html") in capsys.readouterr().out.replace("\n", "")
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1  # no sweep figure outside a sweep
    assert not (out / "sweep.png").exists()
    for run in runs:
        metrics = read_metrics(run)
        assert f"{metrics['rmse']:.4f}" in page and f"{metrics['best_val_rmse']:.4f}" in page
    biases = read_metrics(runs[0])["baselines"]["biases"]["rmse"]
    assert f"{biases:.4f}" in page  # same split, so the baselines are shown once


def test_report_of_one_run(swept: Path, tmp_path: Path) -> None:
    assert main(["report", str(swept / "runs" / "lr-0.05"), "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "learning_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_learning_curves_draw_each_runs_history(swept: Path) -> None:
    runs = read_summaries([swept / "runs" / "lr-0.002", swept / "runs" / "lr-0.05"])
    fig = plot_learning_curves(runs)
    train_ax, val_ax = fig.axes[:2]
    for ax, key in ((train_ax, "train_rmse"), (val_ax, "val_rmse")):
        lines = [line for line in ax.get_lines() if line.get_label() in {r.label for r in runs}]
        assert len(lines) == 2
        for line, run in zip(lines, runs, strict=True):
            assert list(line.get_ydata()) == pytest.approx([row[key] for row in run.history])


def fake_run(lr: float, val: float, test: float) -> RunSummary:
    history = [
        {"epoch": 1.0, "train_rmse": 1.0, "val_rmse": val + 0.1},
        {"epoch": 2.0, "train_rmse": 0.9, "val_rmse": val},
    ]
    metrics = {"best_val_rmse": val, "rmse": test, "best_epoch": 2}
    return RunSummary(Path(f"lr-{lr}"), f"lr={lr}", TrainConfig(lr=lr), metrics, history, {})


def test_validation_not_test_chooses_the_best() -> None:
    runs = [fake_run(0.001, 0.95, 0.80), fake_run(0.01, 0.90, 0.85), fake_run(0.1, 1.10, 1.20)]
    assert best_run(runs) is runs[1]
    fig = plot_sweep(runs, "lr")
    marks = [line for line in fig.axes[0].get_lines() if "lowest validation" in str(line.get_label())]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [0.01, 0.01]
    assert fig.axes[0].get_xscale() == "log"


def test_runs_without_validation_have_no_best() -> None:
    assert best_run([fake_run(0.01, math.nan, 0.9)]) is None


def test_table_adds_fields_that_differ() -> None:
    runs = [fake_run(0.01, 0.9, 0.9), fake_run(0.01, 0.9, 0.9)]
    runs[1] = RunSummary(runs[1].path, "b", TrainConfig(lr=0.01, seed=7), runs[1].metrics, runs[1].history, {})
    assert compare.differing_fields(runs) == ["seed"]
    frame = compare.metrics_frame(runs)
    assert list(frame["seed"]) == [0, 7]
    header, rows = compare.table_rows(frame, ["seed"])
    assert "seed" in header and rows[0][header.index("test MAE")] == "—"


def test_a_failed_value_is_recorded_and_the_sweep_goes_on(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sweep_module.train_run

    def diverge_on_big_lr(settings: TrainConfig, *args: object, **kwargs: object) -> dict:
        if settings.lr > 1:
            raise MovieRecError(f"Training diverged at epoch 1 (loss nan); lower --lr (now {settings.lr}).")
        return real(settings, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep_module, "train_run", diverge_on_big_lr)
    out = tmp_path / "sweep"
    assert main(["sweep", "--param", "lr", "--values", "0.01,5", *data_args(files), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert list(summary["failed"]) == ["5"] and "diverged" in summary["failed"]["5"]
    assert summary["best_value"] == 0.01
    assert "lr=5 failed" in (out / "report.html").read_text()


def test_every_value_failing_is_an_error(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def always_diverge(*args: object, **kwargs: object) -> dict:
        raise MovieRecError("Training diverged at epoch 1 (loss nan); lower --lr.")

    monkeypatch.setattr(sweep_module, "train_run", always_diverge)
    args = ["sweep", "--param", "lr", "--values", "3,5", *data_args(files), "--out", str(tmp_path / "s"), "--quiet"]
    assert main(args) == 2
    assert "Every run of the sweep failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("param", "text", "expected"),
    [("lr", "0.001, 0.01", [0.001, 0.01]), ("dim", "8,16", [8, 16]), ("batch-size", "512", [512])],
)
def test_values_parse(param: str, text: str, expected: list[float]) -> None:
    values = parse_values(param, text)
    assert values == expected
    assert all(isinstance(v, int) for v in values) == (param in ("dim", "batch-size"))


@pytest.mark.parametrize(
    ("param", "text", "fragment"),
    [
        ("lr", "abc", "'abc', which is not a number"),
        ("lr", "", "not a comma-separated list"),
        ("lr", "0.1,,0.2", "not a comma-separated list"),
        ("lr", "0.1,0.1", "repeats a value"),
        ("lr", "nan", "finite number"),
        ("dim", "8.5", "whole numbers"),
        (
            "momentum",
            "0.9",
            "cannot be swept; choose one of: dim, epochs, lr, reg, weight-decay, batch-size, patience, val-fraction, "
            "init-std, fold-in-reg, seed, als-cg-steps, watch-dim, watch-reg, watch-unobserved, watch-iterations, "
            "watch-dislike, watch-margin, gibbs-burn-in, gibbs-thin, gibbs-stored, train-share.",
        ),
        ("optimizer", "0.9", "cannot be swept"),
    ],
)
def test_bad_values_are_refused(param: str, text: str, fragment: str) -> None:
    with pytest.raises(MovieRecError, match=re.escape(fragment)):
        parse_values(param, text)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--param", "use-tags", "--values", "1,2"], "--param 'use-tags' cannot be swept"),
        (["--param", "lr", "--values", "0.01,20"], "--lr 20.0 is out of range"),
        (["--param", "dim", "--values", "0,4"], "--dim 0 is out of range"),
        (["--param", "lr", "--values", "0.01,0.1", "--lr", "0.1"], "was given while sweeping lr"),
        (
            ["--param", "train-share", "--values", "0.5,1", "--train-share", "0.5"],
            "was given while sweeping train-share",
        ),
        (["--param", "train-share", "--values", "0.5,1.5"], "--train-share 1.5 is out of range"),
        (["--param", "lr", "--values", "0.01,0.1", "--model", "biases"], "fitted in closed form"),
    ],
)
def test_bad_sweeps_exit_2_before_training(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", *extra, *data_args(files, dim=False), "--out", str(out), "--quiet"]) == 2
    assert fragment in capsys.readouterr().err
    assert not (out / "runs").exists()


def test_report_refuses_what_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "not a complete movierec run" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_report_refuses_a_damaged_history(swept: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(swept / "runs" / "lr-0.05", run)
    (run / "history.csv").write_text("epoch,train_rmse\n1,oops\n")
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 2
    assert "damaged" in capsys.readouterr().err


def test_identical_folder_names_are_told_apart(swept: Path, tmp_path: Path) -> None:
    import shutil

    for parent in ("a", "b"):
        shutil.copytree(swept / "runs" / "lr-0.05", tmp_path / parent / "run")
    runs = read_summaries([tmp_path / "a" / "run", tmp_path / "b" / "run"])
    assert [r.label for r in runs] == ["a/run", "b/run"]
    assert np.isfinite(runs[0].metric("rmse"))
