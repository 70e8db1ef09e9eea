"""`movierec train` and `movierec evaluate` through the real CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import typer

from movierec.cli import app, main
from movierec.cli.flags import field_help
from movierec.config import TrainConfig
from movierec.data.source import DataOptions
from movierec.data.split import random_split
from movierec.models import ease
from movierec.models.registry import DEFAULT_MODEL

from models_fixtures import low_rank_dataset

JSON_KEYS = {"model", "rmse", "mae", "n_train", "n_test", "n_unknown", "ndcg@10", "recall@10"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    dataset, _ = low_rank_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    root = tmp_path_factory.mktemp("files")
    train, test = root / "train.csv", root / "test.csv"
    for part, path in ((split.train, train), (split.test, test)):
        frame = part.to_frame()
        frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
        frame.to_csv(path, index=False)
    return train, test


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_train_from_files_then_evaluate(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    out = tmp_path / "run"
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--epochs", "3", "--dim", "4"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    trained = last_json(capsys.readouterr().out)
    assert set(trained) >= JSON_KEYS
    assert trained["model"] == DEFAULT_MODEL and trained["n_test"] == 800
    assert set(trained["baselines"]) == {"global-mean", "biases", "popularity", "ease"}
    for name in ("config.json", "model.safetensors", "metrics.json", "history.csv", "manifest.json"):
        assert (out / name).is_file(), name
    assert main(["evaluate", str(out), "--test-file", str(test), "--json"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert evaluated["rmse"] == pytest.approx(trained["rmse"], abs=1e-6)


def test_train_prints_the_comparison_table(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--model", "biases", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    for name in ("biases", "global-mean", "popularity", "RMSE", "NDCG@10"):
        assert name in out


PEOPLE_KEYS = {"coverage@10", "personalization@10", "pop_recall@10"}


def test_every_row_reports_what_people_feel(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    movies = tmp_path / "movies.csv"
    ids = sorted(set(pd.read_csv(train)["movieId"]) | set(pd.read_csv(test)["movieId"]))
    genres = ["Comedy", "Drama|Comedy", "Horror", "Drama"]
    catalog = {"movieId": ids, "title": [f"Movie {i}" for i in ids], "genres": [genres[i % 4] for i in ids]}
    pd.DataFrame(catalog).to_csv(movies, index=False)
    out = tmp_path / "run"
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--movies-file", str(movies)]
    assert main([*args, "--epochs", "2", "--dim", "4", "--out", str(out), "--json"]) == 0
    trained = last_json(capsys.readouterr().out)
    rows = [trained, *trained["baselines"].values()]
    assert [row["model"] for row in rows] == [DEFAULT_MODEL, "global-mean", "biases", "popularity", "ease"]
    for row in rows:
        assert set(row) >= PEOPLE_KEYS | {"miscalibration@10", "ndcg@10"}, row["model"]
        assert 0 <= row["personalization@10"] <= 1 and row["miscalibration@10"] >= 0
    assert "rmse" not in trained["baselines"]["ease"]  # EASE ranks only
    assert main(["evaluate", str(out)]) == 0
    table = capsys.readouterr().out
    for header in ("coverage", "personal-", "pop.", "miscalib-", "ease", "Steck 2018"):
        assert header in table
    ease_line = next(line for line in table.splitlines() if line.startswith("│ ease"))
    assert f"{trained['baselines']['ease']['miscalibration@10']:.4f}" in ease_line
    assert main(["evaluate", str(out), "--json"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert evaluated["miscalibration@10"] == pytest.approx(trained["miscalibration@10"])
    assert evaluated["baselines"]["ease"]["ndcg@10"] == pytest.approx(trained["baselines"]["ease"]["ndcg@10"])


def test_ease_is_left_out_with_a_note_on_a_large_catalog(
    files, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ease, "MAX_ITEMS", 50)  # the tiny catalog has 100 movies
    train, test = files
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--model", "biases", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    assert "EASE left out" in " ".join(capsys.readouterr().out.split())
    assert main([*args, "--json"]) == 0
    row = last_json(capsys.readouterr().out)["baselines"]["ease"]
    assert set(row) == {"model", "note"} and "100 movies" in row["note"]


def test_every_model_setting_has_a_flag(files, tmp_path: Path) -> None:
    train, test = files
    out = tmp_path / "run"
    flags = ["--model", "hybrid", "--no-genres", "--no-tags", "--no-implicit", "--watch-dim", "0"]
    flags += ["--fold-in-reg", "0.9", "--init-std", "0.02", "--val-fraction", "0.1", "--epochs", "1", "--dim", "3"]
    assert (
        main(["train", "--train-file", str(train), "--test-file", str(test), *flags, "--out", str(out), "--quiet"]) == 0
    )
    saved = json.loads((out / "config.json").read_text())["train"]
    assert (saved["use_genres"], saved["use_tags"], saved["use_implicit"], saved["watch_dim"]) == (
        False,
        False,
        False,
        0,
    )
    assert (saved["fold_in_reg"], saved["init_std"], saved["val_fraction"], saved["dim"]) == (0.9, 0.02, 0.1, 3)


def test_every_config_and_data_field_is_a_train_flag_with_its_docstring_as_help() -> None:
    params = {p.name: p for p in typer.main.get_command(app).commands["train"].params}
    for settings in (TrainConfig, DataOptions):
        docs = field_help(settings)
        for field in dataclasses.fields(settings):
            assert field.name in params, field.name
            assert params[field.name].help.startswith(docs[field.name]), field.name
    assert params["use_tags"].opts == ["--tags"] and params["use_tags"].secondary_opts == ["--no-tags"]
    assert params["distributed"].opts == ["--distributed"] and not params["distributed"].secondary_opts


def test_the_watch_settings_have_flags(files, tmp_path: Path) -> None:
    train, test = files
    out = tmp_path / "run"
    flags = ["--watch-dim", "2", "--watch-reg", "5", "--watch-unobserved", "0.5", "--watch-iterations", "3"]
    flags += ["--model", "biased-mf", "--epochs", "1", "--dim", "3", "--schedule", "cosine", "--patience", "2"]
    assert (
        main(["train", "--train-file", str(train), "--test-file", str(test), *flags, "--out", str(out), "--quiet"]) == 0
    )
    saved = json.loads((out / "config.json").read_text())["train"]
    assert (saved["watch_dim"], saved["watch_reg"], saved["watch_unobserved"], saved["watch_iterations"]) == (
        2,
        5.0,
        0.5,
        3,
    )
    assert (saved["schedule"], saved["patience"]) == ("cosine", 2)


@pytest.mark.parametrize("keep", [False, True])
def test_a_finished_run_keeps_its_checkpoint_only_when_asked(keep: bool, files, tmp_path: Path) -> None:
    train, test = files
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--model", "biased-mf", "--epochs", "2"]
    args += ["--dim", "4", "--watch-dim", "0"]
    out = tmp_path / "run"
    assert main([*args, "--out", str(out), "--quiet", *(["--keep-checkpoint"] * keep)]) == 0
    assert (out / "model.safetensors").is_file()
    assert (out / "checkpoint.safetensors").is_file() == keep


def test_train_share_trains_on_part_of_the_training_split(
    files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--model", "biased-mf", "--epochs", "2"]
    args += ["--dim", "4", "--watch-dim", "0"]
    whole, half = tmp_path / "whole", tmp_path / "half"
    assert main([*args, "--out", str(whole), "--json"]) == 0
    full = last_json(capsys.readouterr().out)
    assert main([*args, "--train-share", "0.5", "--out", str(half), "--json"]) == 0
    part = last_json(capsys.readouterr().out)
    assert part["n_train"] == full["n_train"] // 2 and part["n_test"] == full["n_test"] == 800
    assert json.loads((half / "config.json").read_text())["data"]["train_share"] == 0.5
    assert "train_share" not in json.loads((whole / "config.json").read_text())["data"]  # as runs before it
    assert DataOptions(**json.loads((whole / "config.json").read_text())["data"]).train_share == 1.0
    assert main(["evaluate", str(half), "--json"]) == 0  # rebuilds the run's own split, its share included
    assert last_json(capsys.readouterr().out)["rmse"] == pytest.approx(part["rmse"], abs=1e-6)


def test_a_config_files_model_is_checked_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "svd"}))
    assert main(["train", "--config", str(config), "--data", "ml-7m"]) == 2
    assert "--model 'svd' is not valid" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "reg"), [([], 0.3), (["--reg", "0.2"], 0.2), (["--solver", "loop"], 0.1)])
def test_the_als_hybrid_has_its_own_default_reg(extra: list[str], reg: float, files, tmp_path: Path) -> None:
    train, test = files
    solver = [] if "--solver" in extra else ["--solver", "als"]
    flags = ["--model", "hybrid", *solver, *extra, "--epochs", "1", "--dim", "3", "--watch-dim", "0"]
    out = tmp_path / "run"
    assert (
        main(["train", "--train-file", str(train), "--test-file", str(test), *flags, "--out", str(out), "--quiet"]) == 0
    )
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["reg"] == reg and saved["use_implicit"] == ("--solver" in extra)  # ALS has no SVD++ term


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--model", "svd"], "--model 'svd' is not valid"),
        (["--model", "svd", "--data", "ml-7m"], "--model 'svd' is not valid"),
        (["--solver", "als", "--model", "sigmoid-mf", "--data", "ml-7m"], "--solver als trains biased-mf and hybrid"),
        (["--lr", "-1"], "--lr -1.0 is out of range"),
        (["--dim", "0"], "--dim 0 is out of range"),
        (["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not valid"),
        (["--device", "tpu"], "--device 'tpu' is not valid"),
        (["--split", "weird"], "--split 'weird' is not valid"),
        (["--test-fraction", "1.5"], "--test-fraction 1.5 is out of range"),
        (["--data", "ml-7m"], "'ml-7m' is neither a known release"),
        (["--train-file", "/no/such.csv", "--test-file", "/no/such.csv"], "/no/such.csv does not exist"),
        (["--train-file", "/no/such.csv"], "--train-file and --test-file go together"),
        (["--config", "/no/such.json"], "config file /no/such.json does not exist"),
        (["--resume", "--out", "/tmp/movierec-never-trained"], "--resume needs a checkpoint"),
        (["--fold-in-reg", "-1"], "--fold-in-reg -1.0 is negative"),
        (["--watch-dim", "-1"], "--watch-dim -1 is out of range"),
        (["--val-fraction", "0.7"], "--val-fraction 0.7 is out of range"),
        (["--init-std", "-0.1"], "--init-std -0.1 is negative"),
        (["--watch-reg", "-1"], "--watch-reg -1.0 is negative"),
        (["--watch-iterations", "0"], "--watch-iterations 0 is out of range"),
        (["--watch-dislike", "2"], "--watch-dislike 2.0 is out of range; use a value in [-10, 1]"),
        (["--watch-dislike", "-11"], "--watch-dislike -11.0 is out of range"),
        (["--watch-margin", "-0.5"], "--watch-margin -0.5 is negative; use a value >= 0"),
        (["--train-share", "0"], "--train-share 0.0 is out of range; use a value in (0, 1]"),
        (["--train-share", "1.5"], "--train-share 1.5 is out of range"),
        (["--solver", "als", "--model", "sigmoid-mf"], "--solver als trains biased-mf and hybrid, not 'sigmoid-mf'"),
    ],
)
def test_bad_train_flags_exit_2(extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *extra]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert fragment in err
    assert "Traceback" not in err


def test_config_file_with_unknown_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"dimm": 3}))
    assert main(["train", "--config", str(path)]) == 2
    assert "unknown setting(s) ['dimm']" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["missing", "empty", "foreign"])
def test_evaluate_refuses_what_is_not_a_run(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "x"
    if target != "missing":
        folder.mkdir()
    if target == "foreign":
        (folder / "manifest.json").write_text('{"format": 99, "files": {}}')
    assert main(["evaluate", str(folder)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(folder) in err and "Traceback" not in err


def test_damaged_model_file_is_refused(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--train-file",
                str(train),
                "--test-file",
                str(test),
                "--epochs",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["evaluate", str(out)]) == 2
    assert "model.safetensors is damaged" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_main_job_on_the_embedded_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path), "--json"]) == 0
    metrics = last_json(capsys.readouterr().out)
    assert metrics["n_train"] + metrics["n_test"] == 100836
    assert metrics["rmse"] < metrics["baselines"]["biases"]["rmse"]
    assert metrics["ndcg@10"] > metrics["baselines"]["popularity"]["ndcg@10"]
    for row in (metrics, *metrics["baselines"].values()):  # the embedded catalog has genres and fits EASE
        assert {"coverage@10", "personalization@10", "pop_recall@10", "miscalibration@10"} <= set(row), row["model"]
