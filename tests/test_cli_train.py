"""`movierec train` and `movierec evaluate` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from movierec.cli import main
from movierec.data.split import random_split
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
    assert set(trained["baselines"]) == {"global-mean", "biases", "popularity"}
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
