"""Sharded ALS at several world sizes on this machine: memory per rank, accuracy, time and traffic per epoch.

The same synthetic ratings (ML-25M-shaped, ``data.synthetic.generate_ratings``) are split 90/10 and written once as
shards (as many parts as the largest world size; ``movierec data shard``); each world size then trains biased-mf
with sharded ALS in that many gloo processes on 127.0.0.1 (``driver.train_sharded``). Prints one JSON object per
world size, then a JSON list of them as the last line:

- ``peak_rss_gb_per_rank``: the largest rank's peak resident memory over the whole job: training, then the end
  (``driver.finish_sharded``: the tables and the summary gathered, the model finished on rank 0) and its scoring
  beside the baselines (``sharded_finish.sharded_metrics``); the run folder is not written (its ``train.parquet``
  is streamed one part at a time); ``data_rss_gb_per_rank`` is the same less what the rank held before it read
  its parts (the interpreter and torch); ``train_peak_rss_gb_per_rank`` the largest rank's peak when training
  ends and ``finish_peak_rss_gb_per_rank`` when the end (``finish_sharded``, the "likely to watch" fit included)
  is done, before the scoring, so each phase's own share shows;
- ``rmse``: test RMSE of the finished model (clipped to the scale), as the run's metrics report it;
- ``seconds_per_epoch``: the mean epoch time (validation included); with more ranks than cores it is
  oversubscribed;
- ``bytes_sent_per_epoch``: bytes every rank together sent to other ranks per epoch (rows, sums), start-up left
  out.

    python benchmarks/distributed_scale.py --world 1,2,4 [--ratings 5000000] [--epochs 8] [--dim 64] [--watch-dim 128]
        [--json]

``--watch-dim`` is the "likely to watch" component's size (the default of ``movierec train``; 0 leaves it out).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from movierec.config import TrainConfig
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, RatingScale
from movierec.data.shard import ShardSet, write_shards
from movierec.data.split import random_split
from movierec.data.synthetic import generate_ratings
from movierec.train.distributed import join
from movierec.train.driver import finish_sharded, train_sharded
from movierec.train.sharded_finish import sharded_metrics


def rss_gb() -> float:
    """This process's peak resident memory so far, in GB: ``VmHWM``, not ``ru_maxrss``, which a spawned worker
    inherits from the parent it was forked from before its exec (here the parent holding the generated ratings,
    0.69 GB at 5M ratings: a floor under every rank's figure)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024 / 1e9


def current_rss_gb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def worker(rank: int, world: int, port: int, folder: str, config: TrainConfig, out: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    before = current_rss_gb()
    shards = ShardSet.open(Path(folder))
    trained = [train_sharded(config, shards, progress=False)]  # handed over, so finish_sharded can let go of it
    train_peak, seconds = rss_gb(), [h.seconds for h in trained[0].history]
    sent = trained[0].solver.bytes_per_epoch / max(1, len(seconds))
    finished = finish_sharded(trained.pop(), shards, config, join(config.device, True), 0.0)
    finish_peak = rss_gb()
    metrics = None if finished is None else sharded_metrics(finished[0].model, finished[1], shards.scale, None)
    peak = rss_gb()
    every: list[Any] = [None] * world
    dist.all_gather_object(every, [peak, peak - before, sent, train_peak, finish_peak])
    if metrics is not None:
        result = {
            "world": world,
            "peak_rss_gb_per_rank": round(max(f[0] for f in every), 4),
            "data_rss_gb_per_rank": round(max(f[1] for f in every), 4),
            "train_peak_rss_gb_per_rank": round(max(f[3] for f in every), 4),
            "finish_peak_rss_gb_per_rank": round(max(f[4] for f in every), 4),
            "rmse": round(float(metrics["rmse"]), 5),
            "seconds_per_epoch": round(float(np.mean(seconds)), 4),
            "bytes_sent_per_epoch": int(sum(f[2] for f in every)),
            "watch_dim": config.watch_dim,
            "epochs": len(seconds),
            "ratings": int(shards.manifest["n_train"]),
        }
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default="1,2,4", help="World sizes, comma-separated.")
    parser.add_argument("--ratings", type=int, default=5_000_000, help="Synthetic ratings in all (train + test).")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--watch-dim", type=int, default=TrainConfig().watch_dim)
    parser.add_argument("--json", action="store_true", help="Only the JSON lines.")
    args = parser.parse_args()
    worlds = [int(w) for w in args.world.split(",")]
    n_users, n_items = max(200, args.ratings // 120), max(300, args.ratings // 400)
    ratings = generate_ratings(n_users, n_items, args.ratings, seed=0)
    dataset = Dataset("synthetic", ratings, align_movies(None, ratings.item_vocab), scale=RatingScale(0.5, 5.0, 0.5))
    split = random_split(ratings, 0.1, seed=0)
    config = TrainConfig(
        model="biased-mf", solver="als", dim=args.dim, epochs=args.epochs, reg=0.05, patience=args.epochs,
        watch_dim=args.watch_dim, device="cpu", distributed=True, shards="-",
    )  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shards"
        write_shards(dataset, split, int(np.lcm.reduce(worlds)), folder, {"data": "synthetic"})
        del ratings, dataset, split
        for world in worlds:
            out = Path(tmp) / f"world-{world}.json"
            mp.spawn(worker, args=(world, free_port(), str(folder), config, str(out)), nprocs=world, join=True)
            result = json.loads(out.read_text())
            results.append(result)
            print(json.dumps(result), flush=True)
    if not args.json:
        print(f"{args.ratings:,} synthetic ratings, dim {args.dim}, {os.cpu_count()} cores", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
