"""`movierec data ...` end to end through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from movierec.cli import main


def test_info_on_embedded_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "ml-latest-small", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert facts["n_ratings"] == 100836
    assert facts["n_users"] == 610
    assert facts["n_items"] == 9724
    assert facts["n_movies"] == 9742
    assert facts["scale"] == {"low": 0.5, "high": 5.0, "step": 0.5}


def test_info_human_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "ml-latest-small"]) == 0
    out = capsys.readouterr().out
    assert "100,836" in out and "rating histogram" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["data", "info", "ml-5m"], "'ml-5m' is neither a known release"),
        (["data", "info", "/no/such/path"], "'/no/such/path' is neither a known release"),
        (["data", "info", "ml-25m"], "not downloaded yet"),
        (
            ["data", "info", "ml-latest-small", "--duplicates", "first"],
            "--duplicates 'first' is not a policy",
        ),
    ],
)
def test_bad_input_exits_2_with_one_sentence(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in " ".join(err.split())
    assert "Traceback" not in err


def test_empty_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_list_shows_every_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m"):
        assert name in out
    assert "embedded" in out


@pytest.mark.parametrize("command", [[], ["data"], ["data", "info"], ["data", "fetch"], ["data", "list"]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out
