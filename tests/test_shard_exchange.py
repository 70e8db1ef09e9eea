"""RowFetch across two real processes (gloo): a fetch in many rounds brings the same rows as one in a single round."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from movierec.train import shard_exchange
from movierec.train.distributed import Context
from movierec.train.shard_exchange import Exchange, RowFetch
from test_distributed import free_port

N_ROWS, WIDTH = 101, 3


def _fetch_in_rounds(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        exchange = Exchange(Context(rank=rank, world=world, local_rank=rank, device=torch.device("cpu")))
        table = torch.arange(N_ROWS * WIDTH, dtype=torch.float32).view(N_ROWS, WIDTH)
        own = table[rank::world].clone()  # row i at local position i // world
        needed = np.random.default_rng(rank).choice(N_ROWS, 60, replace=False)
        plan = RowFetch.plan(needed, exchange)
        whole = plan.fetch(own)
        shard_exchange.FETCH_ROUND_BYTES = 5 * WIDTH * 4  # five rows a round: many rounds, runs cut unevenly
        sent_before = exchange.bytes_sent
        rounds = plan.fetch(own)
        assert exchange.bytes_sent - sent_before > 0
        arrival = sorted(needed.tolist(), key=lambda row: (row % world, row))  # by owner, ascending within each
        expected = torch.cat([table[arrival], torch.zeros(1, WIDTH)])
        positions = torch.from_numpy(plan.positions(needed))
        torch.save({"whole": whole, "rounds": rounds, "expected": expected, "at": whole[positions],
                    "rows": table[torch.from_numpy(needed)]}, Path(out) / f"rank{rank}.pt")  # fmt: skip
    finally:
        dist.destroy_process_group()


def test_a_fetch_in_rounds_brings_what_one_round_brings(tmp_path: Path) -> None:
    mp.spawn(_fetch_in_rounds, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(got["rounds"], got["whole"])
        assert torch.equal(got["whole"], got["expected"])  # grouped by owner, ascending within each, padding last
        assert torch.equal(got["at"], got["rows"])  # positions() finds every needed row
