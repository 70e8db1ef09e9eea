"""The guides' Python examples run as written: each page's ```python blocks in order, in one namespace, in a fresh
folder."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

import movierec

from markdown_code import ROOT, python_blocks

PAGES = sorted(page for page in (ROOT / "docs").glob("*.md") if python_blocks(page))


def test_the_guides_have_examples() -> None:
    assert ROOT / "docs" / "python.md" in PAGES


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {}
    for number, block in enumerate(python_blocks(page), 1):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block, f"{page.name} (example {number})", "exec"), namespace)


def test_the_reference_lists_every_public_name(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    page = (site / "reference" / "index.html").read_text(encoding="utf-8")
    listed = set(re.findall(r'id="movierec\.(\w+)"', page))
    assert listed == set(movierec.__all__)
