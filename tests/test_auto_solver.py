"""`--solver auto`, the default: the solver chosen by the data's size (gibbs on small data, ALS on large), counted
from the ratings files before they are parsed, and recorded in the run folder by the name it resolved to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from movierec.cli import main
from movierec.cli.options import TrainFlags
from movierec.data.movielens import count_rating_lines
from movierec.data.source import DataOptions, count_ratings
from movierec.errors import DataError, MovieRecError
from movierec.models import registry
from movierec.reports.sweep_values import swept_solver
from test_cli_errors import HEADER, ratings_text

from conftest import write


def never_counted() -> int:
    raise AssertionError("the ratings were counted where their number cannot matter")


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [
        ("ratings.csv", HEADER + "1,1,4.0,1\n2,1,3.0,2\n", 2),
        ("ratings.csv", HEADER + "1,1,4.0,1\n2,1,3.0,2", 2),  # no newline after the last line
        ("ratings.csv", HEADER, 0),
        ("ratings.csv", "", 0),
        ("ratings.dat", "1::1::4::1\n2::1::3::2\n3::2::5::3\n", 3),
        ("u.data", "1\t1\t4\t1\n2\t1\t3\t2\n", 2),
    ],
)
def test_rating_lines_are_counted_in_every_layout(tmp_path: Path, name: str, text: str, lines: int) -> None:
    write(tmp_path / name, text)
    assert count_rating_lines(tmp_path) == lines
    if name == "ratings.csv":  # a user's ratings CSV, named as a file
        assert count_rating_lines(tmp_path / name) == lines


def test_the_embedded_data_counts_its_ratings_and_a_folder_without_ratings_is_refused(tmp_path: Path) -> None:
    assert count_ratings(DataOptions()) == 100_836
    with pytest.raises(DataError, match="holds no MovieLens ratings"):
        count_rating_lines(tmp_path)


def test_train_and_test_files_count_together(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", HEADER + "1,1,4.0,1\n2,1,3.0,2\n")
    test = write(tmp_path / "test.csv", HEADER + "1,2,4.0,3\n")
    assert count_ratings(DataOptions(train_file=str(train), test_file=str(test))) == 3
    with pytest.raises(MovieRecError, match="is a folder; expected a CSV file there"):
        count_ratings(DataOptions(train_file=str(tmp_path), test_file=str(test)))
    with pytest.raises(MovieRecError, match="does not exist"):
        count_ratings(DataOptions(train_file=str(tmp_path / "missing.csv"), test_file=str(test)))


@pytest.mark.parametrize(
    ("settings", "ratings", "solver"),
    [
        ({"model": "hybrid"}, registry.GIBBS_UP_TO, "gibbs"),
        ({"model": "hybrid"}, registry.GIBBS_UP_TO + 1, "als"),
        ({}, 100_836, "gibbs"),  # the default model
        ({"model": "biased-mf"}, 25_000_095, "als"),
        ({"model": "hybrid", "use_time": True}, 25_000_095, "gibbs"),  # only gibbs has time effects
    ],
)
def test_auto_chooses_by_size(settings: dict[str, object], ratings: int, solver: str) -> None:
    assert registry.auto_solver(settings, lambda: ratings) == solver


@pytest.mark.parametrize(
    ("settings", "solver"),
    [
        ({"model": "sigmoid-mf"}, "loop"),  # its only solver
        ({"model": "biases"}, "loop"),  # closed form: no solver trains it
        ({"model": "hybrid", "distributed": True}, "loop"),  # --distributed without shards trains by the loop
        ({"model": "biased-mf", "shards": "shards/", "distributed": True}, "als"),
    ],
)
def test_auto_without_a_choice_never_counts(settings: dict[str, object], solver: str) -> None:
    assert registry.auto_solver(settings, never_counted) == solver


def test_a_shipped_burn_in_never_takes_every_sweep() -> None:
    assert registry.config_for("hybrid", solver="gibbs").gibbs_burn_in == 10
    assert registry.config_for("hybrid", solver="gibbs", epochs=11).gibbs_burn_in == 10
    assert registry.config_for("hybrid", solver="gibbs", epochs=10).gibbs_burn_in == 5
    assert registry.config_for("hybrid", solver="gibbs", epochs=10, gibbs_burn_in=10).gibbs_burn_in == 10  # given


def test_flags_resolve_auto_by_the_data_and_tune_keeps_the_loop(tmp_path: Path) -> None:
    data = DataOptions()
    assert TrainFlags(None, {}).config(data).solver == "gibbs"
    assert TrainFlags(None, {"solver": "auto", "model": "biased-mf"}).config(data).solver == "gibbs"
    assert TrainFlags(None, {"solver": "als"}).config(data).solver == "als"
    assert TrainFlags(None, {}).config().solver == "loop"  # no data: `movierec tune`, whose spaces are the loop's
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"model": "hybrid", "solver": "als", "epochs": 3}))
    assert TrainFlags(config_file, {}).config(data).solver == "als"  # a config file's solver stands
    assert TrainFlags(config_file, {"solver": "auto"}).config(data).solver == "gibbs"


def test_train_without_a_solver_samples_small_data_and_records_gibbs(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", ratings_text(0))
    test = write(tmp_path / "test.csv", ratings_text(1))
    run = tmp_path / "run"
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--dim", "4", "--epochs", "6"]
    assert main([*args, "--quiet", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())["train"]
    assert (config["model"], config["solver"], config["gibbs_burn_in"]) == ("hybrid", "gibbs", 3)


def test_a_sweep_of_a_loop_setting_trains_the_loop_unless_a_solver_is_given() -> None:
    assert swept_solver("lr", None) == swept_solver("batch_size", "auto") == "loop"
    assert swept_solver("lr", "als") == "als"
    assert swept_solver("dim", None) is None  # auto stands: dim matters to every solver


def test_an_unknown_solver_is_refused_naming_auto_among_the_valid_ones() -> None:
    with pytest.raises(MovieRecError, match=r"--solver 'fast' is not valid; choose one of: auto, loop, als, gibbs\."):
        TrainFlags(None, {"solver": "fast"}).config(DataOptions())
    with pytest.raises(MovieRecError, match="choose one of: auto, loop"):
        registry.config_for_data("hybrid", never_counted, solver="fast")
