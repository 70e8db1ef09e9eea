"""`movierec tune`: search spaces, the objective's reporting and pruning, resumable studies, the written config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import typer
from optuna.trial import TrialState

from movierec.artifact.run import load_run
from movierec.cli import app, main
from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.data.source import DataOptions, load_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.train import tune as tune_module
from movierec.train.search_space import search_space, searched, suggest_config
from movierec.train.tune import best_config, make_objective, open_study, storage_url, write_outputs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


def tiny_ratings_csv(folder: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """About half of a 40 x 30 matrix rated from biases plus a rank-2 taste, rounded to half stars."""
    rng = np.random.default_rng(seed)
    user_taste, item_taste = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    rows = ["userId,movieId,rating,timestamp"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=n_items // 2, replace=False):
            score = 3.5 + 0.3 * rng.normal() + 0.6 * float(user_taste[u] @ item_taste[i])
            rating = float(np.clip(np.round(score * 2) / 2, 0.5, 5.0))
            rows.append(f"{u + 1},{10 * (i + 1)},{rating},{1_000_000 + u * 100 + int(i)}")
    path = folder / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """Exit code, the last stdout line as JSON (when it is), and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    try:
        last = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        last = None
    return code, last, captured.err


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    return tiny_ratings_csv(tmp_path)


# --- search spaces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(registry.tunable_names()))
def test_every_draw_is_a_valid_config_of_the_model(model: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    base = TrainConfig(model=model, seed=7)
    for _ in range(20):
        trial = study.ask()
        config = suggest_config(trial, base)
        assert config.model == model and config.seed == 7
        assert set(trial.params) == {param.name for param in search_space(model)}
        for name, value in trial.params.items():
            assert getattr(config, name) == value
        study.tell(trial, 1.0)
    assert {"dim", "lr", "reg", "batch_size", "epochs"} <= set(trial.params)


@pytest.mark.parametrize(
    ("base", "left_out"),
    [
        (TrainConfig(solver="als"), {"lr", "batch_size", "weight_decay"}),
        (TrainConfig(optimizer="sparse-adam"), {"weight_decay"}),
    ],
)
def test_settings_the_base_makes_moot_are_not_searched(base: TrainConfig, left_out: set[str]) -> None:
    names = {param.name for param in searched(base)}
    assert names == {param.name for param in search_space(base.model)} - left_out
    trial = optuna.create_study().ask()
    config = suggest_config(trial, base)
    assert set(trial.params) == names and config.weight_decay == base.weight_decay


def test_hybrid_searches_its_feature_switches() -> None:
    names = {param.name for param in search_space("hybrid")}
    assert {"use_genres", "use_tags", "use_implicit"} <= names


def test_untunable_model_is_a_clear_error() -> None:
    with pytest.raises(MovieRecError, match="'biases' has no search space; tunable models are"):
        search_space("biases")


# --- the objective ----------------------------------------------------------------------------------------


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def tiny_split(ratings_csv: Path) -> tuple[Any, Ratings]:
    dataset, parts = load_split(DataOptions(data=str(ratings_csv)))
    return dataset, parts.train


def test_objective_reports_every_epoch_and_returns_the_best(ratings_csv: Path) -> None:
    dataset, train = tiny_split(ratings_csv)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner(), sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(make_objective(TrainConfig(patience=2), dataset, train), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    epochs = sorted(trial.intermediate_values)
    assert epochs == list(range(1, len(epochs) + 1)) and epochs
    assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
    assert trial.user_attrs["epochs_run"] == len(epochs)
    assert TrainConfig.from_dict(trial.user_attrs["config"]).dim == trial.params["dim"]


def test_a_pruned_trial_stops_at_the_epoch_the_pruner_says(ratings_csv: Path) -> None:
    dataset, train = tiny_split(ratings_csv)
    study = optuna.create_study(pruner=AlwaysPrune(), sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(make_objective(TrainConfig(), dataset, train), n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    assert all(list(t.intermediate_values) == [1] for t in study.trials)


def test_no_completed_trial_is_a_clear_error(tmp_path: Path, ratings_csv: Path) -> None:
    dataset, train = tiny_split(ratings_csv)
    study = optuna.create_study(pruner=AlwaysPrune())
    study.optimize(make_objective(TrainConfig(), dataset, train), n_trials=1)
    with pytest.raises(MovieRecError, match="no completed trial yet \\(1 pruned, 0 failed\\)"):
        write_outputs(study, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_resumed_seeded_study_does_not_replay_its_first_draws(tmp_path: Path) -> None:
    url = storage_url(tmp_path / "s.db")
    first = open_study(url, "s", TrainConfig(), {"data": "x"}, sampler_seed=0)
    drawn = []
    for _ in range(3):
        trial = first.ask()
        suggest_config(trial, TrainConfig())
        drawn.append(trial.params)
        first.tell(trial, 1.0)
    again = open_study(url, "s", TrainConfig(), {"data": "x"}, sampler_seed=0)
    for _ in range(3):
        trial = again.ask()
        suggest_config(trial, TrainConfig())
        assert trial.params and trial.params not in drawn


def test_a_new_study_tries_the_base_config_first(tmp_path: Path) -> None:
    base = TrainConfig(dim=24, lr=0.004, reg=0.07, weight_decay=0.0, batch_size=2048, epochs=35, init_std=0.02)
    study = open_study(storage_url(tmp_path / "s.db"), "s", base, {"data": "x"}, sampler_seed=0)
    trial = study.ask()
    config = suggest_config(trial, base)
    # weight decay 0 sits below the log range, 35 epochs between its steps: each moves to the nearest value
    assert config == base.replace(weight_decay=1e-7, epochs=30)
    study.tell(trial, 1.0)
    again = open_study(storage_url(tmp_path / "s.db"), "s", base, {"data": "x"}, sampler_seed=0)
    assert suggest_config(again.ask(), base) != config


# --- storage and study identity ---------------------------------------------------------------------------


def test_storage_url_accepts_paths_and_sqlite_urls(tmp_path: Path) -> None:
    assert storage_url(tmp_path / "a" / "t.db") == f"sqlite:///{tmp_path / 'a' / 't.db'}"
    assert (tmp_path / "a").is_dir()
    assert storage_url(f"sqlite:///{tmp_path}/b/t.db") == f"sqlite:///{tmp_path}/b/t.db"
    with pytest.raises(MovieRecError, match="is not an SQLite file"):
        storage_url("sqlite:///:memory:")


def test_a_study_refuses_trials_of_another_model_or_data(tmp_path: Path) -> None:
    url = storage_url(tmp_path / "s.db")
    open_study(url, "s", TrainConfig(), {"data": "x"})
    with pytest.raises(MovieRecError, match="was started with model biased-mf, not sigmoid-mf"):
        open_study(url, "s", TrainConfig(model="sigmoid-mf"), {"data": "x"})
    with pytest.raises(MovieRecError, match="was started with data"):
        open_study(url, "s", TrainConfig(), {"data": "y"})
    with pytest.raises(MovieRecError, match="was started with fixed"):
        open_study(url, "s", TrainConfig(patience=9), {"data": "x"})


# --- the command ------------------------------------------------------------------------------------------


def test_tune_resumes_and_writes_a_config_that_trains(
    tmp_path: Path, ratings_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "studies" / "tune.db"
    out = tmp_path / "out"
    args = ["tune", "--data", str(ratings_csv), "--model", "biased-mf", "--trials", "3"]
    args += ["--storage", f"sqlite:///{db}", "--study", "tiny", "--out", str(out), "--seed", "0", "--json"]

    code, summary, err = run_cli(capsys, *args)
    assert code == 0, err
    assert summary is not None
    assert summary["trials_this_run"] == 3 and summary["trials_total"] == 3
    assert summary["trials_completed"] + summary["trials_pruned"] == 3

    code, summary, err = run_cli(capsys, *args)
    assert code == 0, err
    assert summary is not None
    assert summary["trials_this_run"] == 3 and summary["trials_total"] == 6
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    assert len(stored.trials) == 6
    assert {t.state for t in stored.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert summary["best_value"] == pytest.approx(stored.best_value)
    assert summary["best_params"] == stored.best_params

    for name in ("history.png", "importances.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((out / "summary.json").read_text())["trials_total"] == 6

    config_path = Path(summary["config"])
    tuned = TrainConfig.from_file(config_path)
    assert tuned == best_config(stored)
    for name, value in stored.best_params.items():
        assert getattr(tuned, name) == value

    run_dir = tmp_path / "run"
    code, metrics, err = run_cli(
        capsys, "train", "--config", str(config_path), "--data", str(ratings_csv), "--out", str(run_dir), "--json"
    )
    assert code == 0, err
    assert metrics is not None and metrics["model"] == "biased-mf" and np.isfinite(metrics["rmse"])
    assert load_run(run_dir).config == tuned


def test_tune_never_gives_the_test_ratings_to_a_trial(
    tmp_path: Path, ratings_csv: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real_fit = tune_module.fit

    def recording_fit(config: TrainConfig, dataset: Any, train: Ratings, **kwargs: Any) -> Any:
        assert dataset.ratings is train and kwargs["run_dir"] is None
        seen.extend(zip(train.users.tolist(), train.items.tolist(), strict=True))
        return real_fit(config, dataset, train, **kwargs)

    monkeypatch.setattr(tune_module, "fit", recording_fit)
    code, _, err = run_cli(
        capsys, "tune", "--data", str(ratings_csv), "--trials", "2", "--out", str(tmp_path / "o"), "--json"
    )
    assert code == 0, err
    _, parts = load_split(DataOptions(data=str(ratings_csv)))
    test_pairs = set(zip(parts.test.users.tolist(), parts.test.items.tolist(), strict=True))
    assert seen and test_pairs and not test_pairs & set(seen)


def test_flags_fix_the_settings_tune_does_not_search(
    tmp_path: Path, ratings_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "--data", str(ratings_csv), "--model", "biased-mf", "--trials", "1", "--out", str(tmp_path)]
    code, summary, err = run_cli(capsys, *args, "--patience", "2", "--watch-dim", "0", "--train-share", "0.5", "--json")
    assert code == 0, err
    assert summary is not None
    tuned = TrainConfig.from_file(Path(summary["config"]))
    assert (tuned.patience, tuned.watch_dim) == (2, 0)
    stored = optuna.load_study(study_name="biased-mf", storage=summary["storage"])
    assert stored.user_attrs["data"]["train_share"] == 0.5
    flags = {param.name for param in typer.main.get_command(app).commands["tune"].params}
    assert "patience" in flags and not flags & {"dim", "lr", "use_tags"}  # tune draws the searched settings


def test_rerun_with_another_model_on_the_same_study_exits_2(
    tmp_path: Path, ratings_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(ratings_csv), "--trials", "1", "--study", "s", "--out", str(tmp_path / "o"), "--json"]
    assert run_cli(capsys, "tune", *common, "--model", "biased-mf")[0] == 0
    code, _, err = run_cli(capsys, "tune", *common, "--model", "sigmoid-mf")
    assert code == 2
    assert "was started with model biased-mf, not sigmoid-mf" in " ".join(err.split())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "biases"], "--model 'biases' has no search space"),
        (["--trials", "0"], "--trials 0 is out of range"),
        (["--timeout", "-1"], "--timeout -1.0 is out of range"),
        (["--storage", "sqlite://"], "is not an SQLite file"),
        (["--threads", "0"], "--threads 0 is out of range"),
    ],
)
def test_bad_flags_exit_2_with_one_sentence(
    tmp_path: Path, ratings_csv: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, "tune", "--data", str(ratings_csv), "--out", str(tmp_path / "o"), *flags)
    assert code == 2
    assert message in " ".join(err.split())


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path, ratings_csv: Path) -> None:
    db = tmp_path / "tune.db"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    common = ["tune", "--data", str(ratings_csv), "--trials", "2", "--study", "shared", "--storage", f"sqlite:///{db}"]
    commands = [
        [sys.executable, "-m", "movierec", *common, "--out", str(tmp_path / f"out{n}"), "--seed", str(n), "--json"]
        for n in range(2)
    ]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for c in commands]
    results = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [r[1].decode()[-2000:] for r in results]
    stored = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")
    assert len(stored.trials) == 4
    assert sorted(t.number for t in stored.trials) == [0, 1, 2, 3]
    assert {t.state for t in stored.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
