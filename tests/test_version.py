"""The version is recorded once (``movierec.__version__``, which pyproject.toml reads) and the CLI prints it."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pytest

import movierec
from movierec.cli import main

from markdown_code import ROOT


def test_movierec_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"movierec {movierec.__version__}\n"


def test_the_version_is_recorded_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "movierec.__version__"}
    assert version("movierec") == movierec.__version__  # the installed metadata was built from it
