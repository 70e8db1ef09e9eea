"""Checkpoints over a run's life: a run killed with SIGKILL mid-epoch keeps its checkpoint, resumes with
``--resume`` and ends where an unbroken run ends; a run that finishes removes its checkpoint unless asked to keep it.

The kill test runs real ``python -m movierec train`` processes with the same environment, so the killed run, the
resumed run and the unbroken reference run compute with the same thread settings.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from movierec.artifact.run import read_history
from movierec.config import TrainConfig
from movierec.data.source import DataOptions
from movierec.data.split import random_split
from movierec.data.synthetic import generate_low_rank
from movierec.train import checkpoint
from movierec.train.session import train_run

EPOCHS = 14
KILL_AFTER_EPOCH = 3  # wait for this many checkpoints, then kill somewhere inside the next epoch


def write_split(root: Path) -> tuple[Path, Path]:
    truth = generate_low_rank(800, 200, 12_000, rank=3, noise_std=0.3, seed=1)
    split = random_split(truth.ratings, 0.1, seed=0)
    paths = root / "train.csv", root / "test.csv"
    for part, path in zip((split.train, split.test), paths, strict=True):
        frame = part.to_frame()
        frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
        frame.to_csv(path, index=False)
    return paths


def train_args(train: Path, test: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "movierec", "train", "--train-file", str(train), "--test-file", str(test),
        "--model", "biased-mf", "--dim", "8", "--epochs", str(EPOCHS), "--batch-size", "256", "--lr", "0.01",
        "--patience", "100", "--seed", "3", "--device", "cpu", "--out", str(out), "--json",
    ]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def checkpoint_state(run_dir: Path) -> dict[str, Any] | None:
    """The training state in the run's checkpoint, or None while there is none."""
    path = run_dir / checkpoint.CHECKPOINT_NAME
    if not path.is_file():
        return None
    _, meta = checkpoint.read(path)  # a torn file would raise here: the write is atomic, so it never is
    state: dict[str, Any] = json.loads(meta["state"])
    return state


def run_to_the_end(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("keep", [False, True])
def test_a_finished_run_removes_its_checkpoint_unless_kept(tmp_path: Path, keep: bool) -> None:
    train, test = write_split(tmp_path)
    config = TrainConfig(model="biased-mf", dim=4, epochs=2, watch_dim=0, device="cpu")
    data = DataOptions(train_file=str(train), test_file=str(test))
    run = tmp_path / "run"
    train_run(config, data, run, progress=False, keep_checkpoint=keep)
    assert (run / "manifest.json").is_file()
    assert (run / checkpoint.CHECKPOINT_NAME).is_file() == keep
    if keep:  # a kept checkpoint is the finished run's state: resuming it trains no further epoch
        state = checkpoint_state(run)
        assert state is not None and state["epoch"] == 2
        train_run(config, data, run, progress=False, resume=True, keep_checkpoint=True)
        assert [int(row["epoch"]) for row in read_history(run / "history.csv")] == [1, 2]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_unbroken_run(tmp_path: Path) -> None:
    train, test = write_split(tmp_path)
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        train_args(train, test, killed_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
    )
    try:
        deadline = time.monotonic() + 600
        seen: dict[str, Any] | None = None
        while time.monotonic() < deadline and process.poll() is None:
            seen = checkpoint_state(killed_dir)
            if seen is not None and seen["epoch"] >= KILL_AFTER_EPOCH:
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr}"
        assert seen is not None and seen["epoch"] >= KILL_AFTER_EPOCH
        epoch_seconds = float(seen["history"][-1]["seconds"])
        time.sleep(random.uniform(0.2, 0.8) * epoch_seconds)  # somewhere inside the next epoch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    # what the killed run left: a readable checkpoint no older than the last one seen, and no finished run
    left = checkpoint_state(killed_dir)
    assert left is not None
    k = left["epoch"]
    assert seen["epoch"] <= k < EPOCHS
    assert [row["epoch"] for row in left["history"]] == list(range(1, k + 1))
    assert not (killed_dir / "manifest.json").exists()

    resumed = run_to_the_end([*train_args(train, test, killed_dir), "--resume"])
    assert checkpoint_state(killed_dir) is None  # finished: the checkpoint is gone
    history = read_history(killed_dir / "history.csv")
    assert [int(row["epoch"]) for row in history] == list(range(1, EPOCHS + 1))
    # epochs 1..k come from the checkpoint (their timings are the killed run's own), k+1.. were trained again
    assert history[:k] == [{key: float(v) for key, v in row.items()} for row in left["history"]]

    unbroken = run_to_the_end(train_args(train, test, tmp_path / "unbroken"))
    reference = read_history(tmp_path / "unbroken" / "history.csv")
    assert [row["val_rmse"] for row in history] == pytest.approx([row["val_rmse"] for row in reference], abs=1e-6)
    assert resumed["best_val_rmse"] == pytest.approx(unbroken["best_val_rmse"], abs=1e-6)
    assert resumed["rmse"] == pytest.approx(unbroken["rmse"], abs=1e-6)
    assert resumed["ndcg@10"] == pytest.approx(unbroken["ndcg@10"], abs=1e-6)
