"""`movierec train --distributed`: sharding, the torchrun environment, and two gloo processes matching one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.split import random_split
from movierec.errors import MovieRecError
from movierec.train import distributed
from movierec.train.driver import fit

from models_fixtures import low_rank_dataset

TRAIN_ARGS = [
    "--model",
    "biased-mf",
    "--solver",
    "loop",
    "--dim",
    "8",
    "--epochs",
    "12",
    "--batch-size",
    "256",
    "--lr",
    "0.01",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def test_shards_cover_every_rating_once() -> None:
    ratings = low_rank_dataset()[0].ratings
    parts = [distributed.shard(ratings, rank, 3, seed=7) for rank in range(3)]
    rows = [set(zip(p.users.tolist(), p.items.tolist(), strict=True)) for p in parts]
    assert sum(len(p) for p in parts) == len(ratings)
    assert set().union(*rows) == set(zip(ratings.users.tolist(), ratings.items.tolist(), strict=True))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    again = distributed.shard(ratings, 1, 3, seed=7)
    assert np.array_equal(again.users, parts[1].users) and np.array_equal(again.items, parts[1].items)
    other = distributed.shard(ratings, 1, 3, seed=8)
    assert not np.array_equal(other.users, parts[1].users)


def test_equal_shards_have_the_same_length() -> None:
    ratings = low_rank_dataset()[0].ratings.take(np.arange(1001))
    lengths = {
        len(distributed.equal_shard(ratings, distributed.Context(rank, 3, rank, torch.device("cpu")), 0))
        for rank in range(3)
    }
    assert lengths == {333}


def test_distributed_without_torchrun_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MovieRecError, match="RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set"):
        distributed.setup("cpu")
    assert main(["train", "--distributed", "--out", "/tmp/movierec-never-trained"]) == 2
    assert "launch with `torchrun" in " ".join(capsys.readouterr().err.split())


def test_distributed_refuses_the_als_solver() -> None:
    with pytest.raises(MovieRecError, match="--distributed trains with --solver loop"):
        TrainConfig(model="biased-mf", solver="als", distributed=True)


def test_one_rank_trains_exactly_like_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """World size 1: the shard is all the ratings in their order and DDP averages over one rank."""
    dataset, _ = low_rank_dataset()
    config = TrainConfig(model="biased-mf", dim=4, epochs=3, watch_dim=0, device="cpu")
    single = fit(config, dataset, dataset.ratings, progress=False)
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**env, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    try:
        ranked = fit(config.replace(distributed=True), dataset, dataset.ratings, progress=False)
    finally:
        distributed.teardown()
    assert [h.val_rmse for h in ranked.history] == pytest.approx([h.val_rmse for h in single.history], rel=1e-5)
    assert np.allclose(ranked.model.params.user_factors, single.model.params.user_factors, atol=1e-5)


def two_ranks(args: list[str], cwd: Path, timeout: int, collective_timeout: int) -> dict[str, Any]:
    """``movierec ARGS --distributed`` in two torchrun processes (gloo); rank 0's JSON report. A run that takes
    longer than ``timeout`` seconds fails the test (every worker is killed); ``collective_timeout`` is how long a
    rank waits for the other at a collective."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    command = [*launcher, str(free_port()), "-m", "movierec", *args, "--distributed"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MOVIEREC_DISTRIBUTED_TIMEOUT": str(collective_timeout)}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # so a hang can be ended with every worker torchrun started
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"two-process training did not finish in {timeout} s")
    assert process.returncode == 0, stderr[-3000:]
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stdout  # rank 0 alone reports
    report: dict[str, Any] = json.loads(lines[0])
    return report


@pytest.mark.slow  # two training processes under torchrun and one in-process run: about 10 s on 2 cores
def test_two_gloo_processes_match_one_process(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    data_args = ["--train-file", str(train), "--test-file", str(test), *TRAIN_ARGS, "--json", "--quiet"]
    assert main(["train", *data_args, "--out", str(tmp_path / "single")]) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    out = tmp_path / "multi"
    multi = two_ranks(["train", *data_args, "--out", str(out)], tmp_path, timeout=300, collective_timeout=120)
    assert multi["n_test"] == single["n_test"] == 800
    assert multi["rmse"] == pytest.approx(single["rmse"], rel=0.03)
    assert multi["rmse"] < 0.9 * multi["baselines"]["biases"]["rmse"]  # it learned the interaction, not just biases

    run = load_run(out)
    assert run.config.distributed and run.config.model == "biased-mf"
    assert run.metrics["rmse"] == pytest.approx(multi["rmse"])
    assert 1 <= multi["best_epoch"] <= len(run.history) <= 12
    assert np.isfinite(run.model.predict(run.train.users[:10], run.train.items[:10])).all()
