"""Fast start: the commands that only read a run folder never import torch (it costs about a second).

Each command runs in a fresh interpreter; an import hook records where torch was first imported from, so a
failure names the import chain to make lazy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serve_fixtures import build_run

pytestmark = pytest.mark.slow

WATCH_TORCH = """
import sys, traceback

class WatchTorch:
    stack = None

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and WatchTorch.stack is None:
            frames = traceback.format_stack()[:-1]
            WatchTorch.stack = "".join(f for f in frames if "<frozen importlib" not in f)
        return None

sys.meta_path.insert(0, WatchTorch())
"""
NO_TORCH = """
assert WatchTorch.stack is None, "torch was imported here:\\n" + WatchTorch.stack
assert "torch" not in sys.modules
"""
SERVE = """
import socket
import uvicorn
from movierec.cli import main

started = []
uvicorn.run = lambda app, **options: started.append(app)  # build everything, but start no server
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
assert main(["serve", RUN_DIR, "--port", str(port)]) == 0
assert type(started[0]).__name__ == "FastAPI", started
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("fast-start") / "run")


def run_without_torch(body: str, run_dir: Path) -> None:
    script = WATCH_TORCH + f"RUN_DIR = {str(run_dir)!r}\n" + body + NO_TORCH
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["recommend", "{run}", "--user", "7", "--json"],
        ["recommend", "{run}", "--ratings", "1:5,2:1.5"],
        ["similar", "{run}", "Toy Story"],
        ["onboard", "{run}", "--json"],
    ],
    ids=lambda args: " ".join(a for a in args if a != "{run}"),
)
def test_command_does_not_import_torch(args: list[str], run_dir: Path) -> None:
    argv = [a.replace("{run}", str(run_dir)) for a in args]
    run_without_torch(f"from movierec.cli import main\nassert main({argv!r}) == 0\n", run_dir)


def test_serve_builds_its_app_without_torch(run_dir: Path) -> None:
    run_without_torch(SERVE, run_dir)
