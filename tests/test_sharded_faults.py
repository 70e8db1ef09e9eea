"""Sharded ALS checkpoints and faults: every rank saves its own rows and rank 0 the manifest; ``--resume``
continues from the last complete epoch at the same world size (and refuses another in one sentence); a rank killed
with SIGKILL makes the other fail at once with a message naming it, and ``--resume`` then finishes the run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist

from movierec.artifact.run import read_history
from movierec.config import TrainConfig
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, RatingScale
from movierec.data.shard import write_shards
from movierec.data.source import DataOptions
from movierec.data.split import random_split
from movierec.data.synthetic import generate_low_rank
from movierec.errors import ArtifactError, MovieRecError
from movierec.train.session import train_run
from movierec.train.shard_checkpoint import FOLDER, MANIFEST, rank_file
from test_distributed import free_port

from models_fixtures import low_rank_dataset

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MOVIEREC_DISTRIBUTED_TIMEOUT": "30"}
KILL_AFTER_EPOCH = 3


def shard_folder(root: Path, dataset: Dataset, parts: int) -> Path:
    folder = root / "shards"
    write_shards(dataset, random_split(dataset.ratings, 0.1, seed=0), parts, folder, {"data": "synthetic"})
    return folder


def als(shards: Path, **settings: Any) -> TrainConfig:
    given: dict[str, Any] = {"dim": 4, "epochs": 3, "patience": 100, "watch_dim": 0, "device": "cpu", **settings}
    return TrainConfig(model="biased-mf", solver="als", shards=str(shards), **given)


def epochs(run: Path) -> list[int]:
    return [int(row["epoch"]) for row in read_history(run / "history.csv")]


def test_world_one_checkpoints_each_epoch_and_resumes(tmp_path: Path) -> None:
    shards = shard_folder(tmp_path, low_rank_dataset()[0], 2)
    run, data = tmp_path / "run", DataOptions()
    train_run(als(shards), data, run, progress=False, keep_checkpoint=True)
    assert not dist.is_initialized()  # the group of one process that training made is left again
    assert json.loads((run / FOLDER / MANIFEST).read_text()) == {"format": 1, "world": 1, "epoch": 3}
    assert sorted(p.name for p in (run / FOLDER).glob("rank-*")) == [rank_file(0, 2), rank_file(0, 3)]

    more = als(shards, epochs=5)
    train_run(more, data, run, progress=False, resume=True, keep_checkpoint=True)
    resumed = read_history(run / "history.csv")
    train_run(more, data, tmp_path / "fresh", progress=False)
    assert not (tmp_path / "fresh" / FOLDER).exists()  # a finished run removes its checkpoints
    assert epochs(run) == [1, 2, 3, 4, 5]
    fresh = read_history(tmp_path / "fresh" / "history.csv")
    assert [row["val_rmse"] for row in resumed] == pytest.approx([row["val_rmse"] for row in fresh], abs=1e-7)

    manifest = run / FOLDER / MANIFEST
    (run / FOLDER / rank_file(0, 5)).write_bytes(b"damaged")
    with pytest.raises(ArtifactError, match=r"Rank 0: The checkpoint .* is damaged"):
        train_run(more, data, run, progress=False, resume=True)
    manifest.write_text(json.dumps({"format": 1, "world": 2, "epoch": 5}))
    with pytest.raises(MovieRecError, match="written by 2 processes, not 1; resume with 2 processes"):
        train_run(more, data, run, progress=False, resume=True)
    manifest.unlink()
    with pytest.raises(MovieRecError, match="--resume needs a checkpoint in"):
        train_run(more, data, run, progress=False, resume=True)
    assert not dist.is_initialized()


def launch(rank: int, port: int, args: list[str]) -> subprocess.Popen[str]:
    """One rank of two, started as a second machine would start it (no torchrun agent to stop the survivor)."""
    env = {**ENV, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
    env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    command = [sys.executable, "-m", "movierec", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def manifest_epoch(run: Path) -> int:
    try:
        return int(json.loads((run / FOLDER / MANIFEST).read_text())["epoch"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow  # two processes killed mid-training, two resumed, one reference run: about 40 s on 2 cores
def test_a_killed_rank_is_named_and_resume_finishes_the_run(tmp_path: Path) -> None:
    truth = generate_low_rank(2000, 600, 100_000, rank=4, noise_std=0.3, seed=1)
    ratings = truth.ratings
    ratings.ratings[:] = ratings.ratings.clip(0.5, 5.0)
    dataset = Dataset("synthetic", ratings, align_movies(None, ratings.item_vocab), scale=RatingScale(0.5, 5.0, 0.5))
    shards = shard_folder(tmp_path, dataset, 2)
    run = tmp_path / "run"
    args = ["train", "--shards", str(shards), "--model", "biased-mf", "--solver", "als", "--dim", "16"]
    args += ["--epochs", "40", "--patience", "100", "--watch-dim", "0", "--json", "--quiet", "--distributed"]
    args += ["--out", str(run)]
    port = free_port()
    ranks = [launch(rank, port, args) for rank in range(2)]
    try:
        deadline = time.monotonic() + 300
        while manifest_epoch(run) < KILL_AFTER_EPOCH and time.monotonic() < deadline and ranks[0].poll() is None:
            time.sleep(0.02)
        assert ranks[0].poll() is None and manifest_epoch(run) >= KILL_AFTER_EPOCH, "the run ended before the kill"
        ranks[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = ranks[0].communicate(timeout=60)
        waited = time.monotonic() - killed_at
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert ranks[1].returncode == -signal.SIGKILL
    assert ranks[0].returncode == 2, stderr[-2000:]
    assert "rank 1 of 2 is gone" in " ".join(stderr.split()), stderr[-2000:]
    assert waited < 30  # well within the collectives' timeout: the broken connection is seen at once
    left = manifest_epoch(run)
    assert KILL_AFTER_EPOCH <= left < 40 and not (run / "manifest.json").exists()

    port = free_port()
    ranks = [launch(rank, port, [*args, "--resume"]) for rank in range(2)]
    outputs = [process.communicate(timeout=300) for process in ranks]
    assert [process.returncode for process in ranks] == [0, 0], outputs[0][1][-2000:]
    assert epochs(run) == list(range(1, 41)) and not (run / FOLDER).exists()

    reference = tmp_path / "reference"
    unbroken = [sys.executable, "-m", "movierec", *args[:-3], "--out", str(reference)]  # world size 1, in one go
    assert subprocess.run(unbroken, env=ENV, capture_output=True, timeout=300, check=False).returncode == 0
    with open(run / "history.csv") as resumed, open(reference / "history.csv") as whole:
        pairs = zip(csv.DictReader(resumed), csv.DictReader(whole), strict=True)
        assert all(float(a["val_rmse"]) == pytest.approx(float(b["val_rmse"]), abs=1e-5) for a, b in pairs)
    metrics = [json.loads((folder / "metrics.json").read_text())["rmse"] for folder in (run, reference)]
    assert metrics[0] == pytest.approx(metrics[1], abs=1e-4)
