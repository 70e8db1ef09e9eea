"""Every command, given bad input, exits 2 with one sentence naming the problem and no traceback.

Bad rating files (through ``data info`` and ``train --train-file``), and missing paths, empty folders, plain files
and folders of the wrong kind (a dataset where a run is expected, a run of another model or format) given to every
registered command: the command list is read from the CLI itself, so commands added later are covered too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer

from movierec.artifact.run import write_manifest
from movierec.cli import app, main
from movierec.errors import ArtifactError, DataError

from conftest import write

HEADER = "userId,movieId,rating,timestamp\n"


def ratings_text(seed: int, n_users: int = 30, n_items: int = 12) -> str:
    """A small valid ratings CSV: every user rates about half the movies."""
    rng = np.random.default_rng(seed)
    rows = [
        f"{u},{i},{rng.integers(1, 11) / 2:.1f},{1000 + u * 100 + i}"
        for u in range(1, n_users + 1)
        for i in range(1, n_items + 1)
        if rng.random() < 0.5
    ]
    return HEADER + "\n".join(rows) + "\n"


def leaf_commands() -> Iterator[tuple[list[str], Any]]:
    """(name path, click command) of every registered command, sub-commands included."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield path, command
            return
        for name, sub in sorted(subcommands.items()):
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


def commands_taking(kind: str) -> list[list[str]]:
    """Commands whose first path input is a run folder (``run``), a dataset (``source``) or ``--train-file``."""
    found = []
    for path, command in leaf_commands():
        names = [p.name for p in command.params]
        arguments = [p.name for p in command.params if p.param_type_name == "argument"]
        takes = {
            "run": arguments[:1] in (["run_dir"], ["run_dirs"]),
            "source": arguments[:1] == ["source"],
            "train-file": "train_file" in names and not arguments,
        }
        if takes[kind]:
            found.append(path)
    return found


# values for other required inputs, so that the path under test is what the command trips over
REQUIRED_VALUES = {"movie": "1", "param": "dim", "values": "2,4", "name": "ml-latest-small"}
EXTRA_OPTIONS = {"recommend": ["--user", "1"], "eda": ["--out", "{tmp}/eda"], "report": ["--out", "{tmp}/report"]}


def invocation(path: list[str], target: str, tmp: Path, first_positional: bool = True) -> list[str]:
    """The argument list running command ``path`` on ``target`` with every other required input filled in."""
    command = dict((tuple(p), c) for p, c in leaf_commands())[tuple(path)]
    args = [*path]
    positional_done = not first_positional
    for param in command.params:
        if param.param_type_name == "argument":
            if not positional_done:
                args.append(target)
                positional_done = True
            elif param.required:
                args.append(REQUIRED_VALUES.get(param.name, "1"))
        elif param.required:
            args += [param.opts[0], REQUIRED_VALUES.get(param.name, "1")]
    args += [a.format(tmp=tmp) for a in EXTRA_OPTIONS.get(path[-1], [])]
    return args


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_sentence(code: int, err: str, *fragments: str) -> None:
    assert code == 2, f"exit code {code}, stderr: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert lines[0].rstrip().endswith((".", ")")), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.fixture(autouse=True)
def contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands write relative defaults (runs/, studies) under the test's folder and never start a server."""
    monkeypatch.chdir(tmp_path)

    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a command started a server on bad input")

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", no_server)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid train/test files, a trained run, and damaged or foreign variants of it."""
    root = tmp_path_factory.mktemp("workspace")
    train = write(root / "train.csv", ratings_text(0))
    test = write(root / "test.csv", ratings_text(1))
    small = write(root / "small.csv", ratings_text(2, n_users=10, n_items=5))
    run = root / "run"
    args = ["train", "--train-file", str(train), "--test-file", str(test), "--model", "biased-mf", "--quiet"]
    assert main([*args, "--epochs", "2", "--dim", "4", "--out", str(run)]) == 0
    other = root / "other-run"
    small_args = ["train", "--train-file", str(small), "--test-file", str(small), "--model", "biased-mf", "--quiet"]
    assert main([*small_args, "--epochs", "1", "--dim", "4", "--out", str(other)]) == 0

    foreign = root / "foreign-format"
    shutil.copytree(run, foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    (foreign / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))

    other_model = root / "other-model"  # config says sigmoid-mf, the weights are a biased-mf model
    shutil.copytree(run, other_model)
    config = json.loads((other_model / "config.json").read_text())
    config["train"]["model"] = "sigmoid-mf"
    (other_model / "config.json").write_text(json.dumps(config))
    write_manifest(other_model)

    other_weights = root / "other-weights"  # weights of a run on other data, manifest made to match
    shutil.copytree(run, other_weights)
    shutil.copy(other / "model.safetensors", other_weights / "model.safetensors")
    write_manifest(other_weights)

    dataset = root / "dataset"
    write(dataset / "ratings.csv", ratings_text(3))
    write(dataset / "movies.csv", "movieId,title,genres\n1,A (1999),Drama\n")

    empty = root / "empty"
    empty.mkdir()
    unrelated = root / "unrelated"
    write(unrelated / "notes.txt", "not movielens\n")
    return {
        "train": train,
        "test": test,
        "run": run,
        "foreign-format": foreign,
        "other-model": other_model,
        "other-weights": other_weights,
        "dataset": dataset,
        "empty": empty,
        "unrelated": unrelated,
        "missing": root / "no-such-thing",
        "ratings-file": train,
        "binary-file": run / "model.safetensors",
    }


def ids(commands: list[list[str]]) -> list[str]:
    return [" ".join(c) for c in commands]


# ------------------------------------------------------------------------------------ the command inventory


def test_the_inventory_finds_the_core_commands() -> None:
    assert ["evaluate"] in commands_taking("run")
    assert ["data", "info"] in commands_taking("source")
    assert ["train"] in commands_taking("train-file")


# ---------------------------------------------------------------------------------------- run-folder inputs

RUN_TARGETS = ["missing", "empty", "ratings-file", "dataset", "foreign-format", "other-model", "other-weights"]


@pytest.mark.parametrize("command", commands_taking("run"), ids=ids(commands_taking("run")))
@pytest.mark.parametrize("target", RUN_TARGETS)
def test_run_commands_refuse_what_is_not_a_usable_run(
    command: list[str], target: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace[target]
    code, err = run_cli(invocation(command, str(path), tmp_path), capsys)
    assert_one_sentence(code, " ".join(err.split()) + "\n", str(path))


@pytest.mark.parametrize("command", commands_taking("run"), ids=ids(commands_taking("run")))
def test_run_commands_accept_the_valid_run(
    command: list[str], workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusals above are about the folders: the same command runs on a good one (or fails elsewhere)."""
    if command[-1] == "serve":
        pytest.skip("serving a valid run would start a server")
    code, err = run_cli(invocation(command, str(workspace["run"]), tmp_path), capsys)
    assert code == 0, err


# ------------------------------------------------------------------------------------------ dataset inputs

SOURCE_TARGETS = ["missing", "empty", "run", "unrelated", "binary-file"]


@pytest.mark.parametrize("command", commands_taking("source"), ids=ids(commands_taking("source")))
@pytest.mark.parametrize("target", SOURCE_TARGETS)
def test_data_commands_refuse_what_is_not_a_dataset(
    command: list[str], target: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace[target]
    code, err = run_cli(invocation(command, str(path), tmp_path), capsys)
    assert_one_sentence(code, " ".join(err.split()) + "\n", str(path).rstrip("/"))


TRAIN_FILE_TARGETS = ["missing", "empty", "run", "binary-file"]


@pytest.mark.parametrize("command", commands_taking("train-file"), ids=ids(commands_taking("train-file")))
@pytest.mark.parametrize("target", TRAIN_FILE_TARGETS)
def test_training_commands_refuse_a_bad_train_file(
    command: list[str], target: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace[target]
    args = invocation(command, "", tmp_path, first_positional=False)
    args += ["--train-file", str(path), "--test-file", str(workspace["test"])]
    code, err = run_cli(args, capsys)
    assert_one_sentence(code, " ".join(err.split()) + "\n", str(path))


@pytest.mark.parametrize("target", ["missing", "empty"])
def test_other_path_options_are_checked(
    target: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config, --test-file of evaluate and --ratings-file of recommend, wherever they are registered."""
    path = str(workspace[target])
    cases: list[list[str]] = []
    for command, click_command in leaf_commands():
        names = {p.name for p in click_command.params}
        if "config" in names:
            cases.append([*invocation(command, "", tmp_path, first_positional=False), "--config", path])
        if command[-1] == "evaluate":
            cases.append(["evaluate", str(workspace["run"]), "--test-file", path])
        if "ratings_file" in names and command[-1] == "recommend":
            cases.append(["recommend", str(workspace["run"]), "--ratings-file", path])
    assert cases
    for args in cases:
        code, err = run_cli(args, capsys)
        assert_one_sentence(code, " ".join(err.split()) + "\n", path)


@pytest.mark.parametrize("target", ["missing", "empty"])
def test_movies_file_is_checked(
    target: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(workspace[target])
    for command in commands_taking("train-file"):
        args = invocation(command, "", tmp_path, first_positional=False)
        args += ["--train-file", str(workspace["train"]), "--test-file", str(workspace["test"]), "--movies-file", path]
        code, err = run_cli(args, capsys)
        assert_one_sentence(code, " ".join(err.split()) + "\n", path)


def test_an_output_path_blocked_by_a_file_exits_2(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming an existing file (or a folder under one) is a one-sentence error, not an internal one."""
    blocker = write(tmp_path / "a-file", "x")
    outputs = [str(blocker), str(blocker / "sub")]
    train = ["train", "--train-file", str(workspace["train"]), "--test-file", str(workspace["test"]), "--quiet"]
    commands = {
        "train": [*train, "--model", "biases", "--out"],
        "eda": ["eda", str(workspace["train"]), "--out"],
        "report": ["report", str(workspace["run"]), "--out"],
    }
    registered = {path[-1] for path, _ in leaf_commands()}
    for name, args in commands.items():
        if name not in registered:
            continue
        for out in outputs:
            code, err = run_cli([*args, out], capsys)
            assert_one_sentence(code, " ".join(err.split()) + "\n", str(blocker))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"train": 5}', "must hold a JSON object"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"dim": "abc"}', "--dim 'abc' is not an integer"),
        ('{"dim": true}', "--dim True is not an integer"),
        ('{"epochs": 2.5}', "--epochs 2.5 is not an integer"),
        ('{"lr": "0.1"}', "--lr '0.1' is not a number"),
        ('{"use_tags": 1}', "--use-tags 1 is not true or false"),
        ('{"lr": NaN}', "--lr nan is out of range"),
        ("{", "is not valid JSON"),
    ],
)
def test_config_files_with_wrong_types_exit_2(
    content: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "config.json", content)
    for command, click_command in leaf_commands():
        if "config" in {p.name for p in click_command.params}:
            code, err = run_cli(
                [*invocation(command, "", tmp_path, first_positional=False), "--config", str(config)], capsys
            )
            assert_one_sentence(code, " ".join(err.split()) + "\n", fragment)


HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["recommend", "{run}", "--user", HUGE], HUGE),
        (["recommend", "{run}", "--ratings", f"{HUGE}:4"], "too large"),
        (["recommend", "{run}", "--ratings-file", "{binary}"], "not UTF-8"),
        (["similar", "{run}", HUGE], HUGE),
    ],
)
def test_out_of_range_values_exit_2(
    args: list[str], fragment: str, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    if args[0] not in {path[-1] for path, _ in leaf_commands()}:
        pytest.skip(f"{args[0]} is not registered")
    filled = [a.format(run=workspace["run"], binary=workspace["binary-file"]) for a in args]
    code, err = run_cli(filled, capsys)
    assert_one_sentence(code, " ".join(err.split()) + "\n", fragment)


# --------------------------------------------------------------------------------------- bad rating files

BAD_ROWS = [
    ("1,10,4.0,100\n1,20,3.5\n", ["line 3", "'3.5'"]),
    ("1,10,4.0,100\nabc,20,3.5,100\n", ["line 3", "'abc'"]),
    ("1,10,4.0,100\n1,20,NaN,100\n", ["line 3", "'NaN'"]),
    ("1,10,4.0,100\n1,20,seven,100\n", ["line 3", "'seven'"]),
    ("1,10,4.0,100\n1,20,7.5,100\n", ["line 3", "7.5", "scale"]),
    ("1,10,4.0,100\n1,20,-1,100\n", ["line 3", "-1", "scale"]),
    ("1,10,4.0,100\n2,30,1.0,5\n1,10,3.0,100\n", ["line 4", "user 1", "movie 10", "--duplicates"]),
]
BAD_FILES = [
    (b"", ["is empty"]),
    (b"1,10,4.0,100\n2,10,3.0,100\n", ["line 1", "'1,10,4.0,100'"]),
    (b"userId,movieId,rating\n1,10,4.0\n2,\xe9,3\n", ["line 3", "UTF-8", "\\xe9"]),
    (b"userId,movieId,rating,timestamp\n", ["holds no ratings"]),
]


def bad_file_cases() -> list[tuple[bytes, list[str]]]:
    return [((HEADER + body).encode(), fragments) for body, fragments in BAD_ROWS] + BAD_FILES


def data_info(path: Path, workspace: dict[str, Path]) -> list[str]:
    return ["data", "info", str(path)]


def train_on(path: Path, workspace: dict[str, Path]) -> list[str]:
    return ["train", "--train-file", str(path), "--test-file", str(workspace["test"]), "--model", "biases", "--quiet"]


@pytest.mark.parametrize("command", [data_info, train_on], ids=["data info", "train --train-file"])
@pytest.mark.parametrize(("content", "fragments"), bad_file_cases())
def test_bad_rating_files_name_file_line_and_value(
    command: Any,
    content: bytes,
    fragments: list[str],
    workspace: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bad ratings.csv"
    path.write_bytes(content)
    code, err = run_cli(command(path, workspace), capsys)
    assert_one_sentence(code, err, str(path), *fragments)


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("ratings.dat", "1::10::4::100\n1::20::x::200\n", ["ratings.dat, line 2", "'x'"]),
        ("ratings.dat", "1::10::4::100\n1::20::9::200\n", ["ratings.dat, line 2", "9", "scale"]),
        ("ratings.dat", "1::10::4::100\n1::20::4\n", ["ratings.dat, line 2", "expected 4 columns"]),
        ("u.data", "1\t10\t4\t100\n1\t20\tnan\t200\n", ["u.data, line 2", "'nan'"]),
        ("u.data", "1\t10\t4\t100\n1\t10\t4\t200\n", ["u.data, line 2", "user 1 rates movie 10"]),
        ("u.data", "", ["u.data is empty"]),
    ],
)
def test_bad_dat_and_100k_files(
    name: str, content: str, fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release"
    write(release / name, content)
    code, err = run_cli(["data", "info", str(release)], capsys)
    assert_one_sentence(code, err, *fragments)


MIXED = HEADER + "1,10,4.0,100\n1,20,7.0,100\nx,1,1,1\n2,2,2,2,2\n\n3,3,3.0,3\n1,30,nan,4\n"


def test_skip_invalid_reports_what_it_skipped_also_from_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "mixed.csv", MIXED)
    for _ in range(2):  # the second run reads the Parquet cache and must still tell
        code = main(["data", "info", str(path), "--skip-invalid", "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert json.loads(captured.out.strip().splitlines()[-1])["n_ratings"] == 2
        err = " ".join(captured.err.split())
        assert "skipped 5 rows" in err
        for reason in ("ratings outside the scale", "non-integer userIds", "wrong column count", "empty lines"):
            assert reason in err
        assert "non-finite ratings" in err


def test_duplicate_policy_reports_merges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "dups.csv", HEADER + "1,10,4.0,1\n1,10,2.0,2\n2,10,1.0,3\n")
    assert main(["data", "info", str(path), "--duplicates", "mean", "--json"]) == 0
    captured = capsys.readouterr()
    assert "merged 1 duplicate ratings" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["n_ratings"] == 2


def test_a_clean_file_reports_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "clean.csv", ratings_text(4))
    assert main(["data", "info", str(path), "--json"]) == 0
    assert capsys.readouterr().err == ""


SKIP_INVALID_RUNS = {
    "data info": lambda path, ws, tmp: ["data", "info", str(path), "--json"],
    "eda": lambda path, ws, tmp: ["eda", str(path), "--out", str(tmp / "eda")],
    "train": lambda path, ws, tmp: [*train_on(path, ws), "--out", str(tmp / "run"), "--json"],
    "sweep": lambda path, ws, tmp: [
        "sweep", "--param", "dim", "--values", "2", "--train-file", str(path), "--test-file", str(ws["test"]),
        "--epochs", "1", "--quiet", "--out", str(tmp / "sweep"),
    ],
    "tune": lambda path, ws, tmp: [
        "tune", "--train-file", str(path), "--test-file", str(ws["test"]), "--trials", "1", "--out", str(tmp / "tune"),
    ],
}  # fmt: skip
SLOW_TO_RUN = {"eda", "tune"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_RUN else n for n in sorted(SKIP_INVALID_RUNS)]
)
def test_every_reading_command_reports_what_skip_invalid_skipped(
    name: str, workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if name.split()[-1] not in {path[-1] for path, _ in leaf_commands()}:
        pytest.skip(f"{name} is not registered")
    path = write(tmp_path / "train.csv", workspace["train"].read_text() + "5,99,11,1\nbad,row\n")
    assert main([*SKIP_INVALID_RUNS[name](path, workspace, tmp_path), "--skip-invalid"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: skipped 2 rows: 1 ratings outside the scale, 1 rows with a wrong column count" in err
    if "--test-file" in SKIP_INVALID_RUNS[name](path, workspace, tmp_path):
        assert f"{workspace['test']}: no rows skipped" in err


# ------------------------------------------------------------------------------------------- --debug


def movierec(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "movierec", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_debug_lets_the_error_through(tmp_path: Path) -> None:
    """With --debug the error is not caught, so Python prints its traceback."""
    with pytest.raises(ArtifactError, match="does not exist"):
        main(["evaluate", str(tmp_path / "nowhere"), "--debug"])
    with pytest.raises(DataError, match="is empty"):
        main(["data", "info", str(write(tmp_path / "empty.csv", "")), "--debug"])


@pytest.mark.slow
def test_debug_shows_the_traceback_and_plain_runs_do_not(tmp_path: Path) -> None:
    """As a user sees it: a real process, its exit code and its stderr."""
    missing = tmp_path / "nowhere"
    plain = movierec("evaluate", str(missing))
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: The run folder {missing} does not exist")
    debug = movierec("evaluate", str(missing), "--debug")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "ArtifactError" in debug.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--bogus"], "No such option: --bogus"),
        (["train", "--epochs", "many"], "'--epochs'"),
        (["recommend"], "Missing argument"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_exit_2_with_clicks_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err and "Traceback" not in err
