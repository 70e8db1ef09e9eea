"""Shared fixtures: an isolated movierec home per test session and small MovieLens-format folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes caches and downloads under its own temporary MOVIEREC_HOME."""
    home = tmp_path_factory.mktemp("movierec-home")
    monkeypatch.setenv("MOVIEREC_HOME", str(home))
    return home


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path
