"""Training across processes (``torchrun ... movierec train --distributed``) with DistributedDataParallel.

Every process (rank) loads the same data, so the id vocabularies, the validation split and the initial weights
agree; each rank then trains on its own shard of the fit ratings and measures validation RMSE on its own shard
of the validation ratings. Gradients are averaged across ranks after every step (DDP), each rank's batch is
``batch_size / world`` so one step still sees ``batch_size`` ratings in all, and the validation errors are
summed across ranks so every rank makes the same early-stopping decision. Only rank 0 writes files or prints.
The driver runs it like any solver: ``ShardedSgd`` is the mini-batch solver on this rank's shards.
Backends: gloo on the CPU, NCCL on CUDA (one GPU per rank: ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.train.sgd import SgdSolver
from movierec.train.solver import Setup

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun sets for each process it starts."""
TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("MOVIEREC_DISTRIBUTED_TIMEOUT", "600")))
"""How long a rank waits for the others at a collective before failing instead of hanging."""


@dataclass(frozen=True)
class Context:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str) -> Context:
    """Join the process group torchrun describes in the environment (once per process); return this rank's place.

    ``device_name`` is the config's device: auto picks CUDA when present; on CUDA each rank takes the GPU
    ``LOCAL_RANK`` and the backend is NCCL, on the CPU it is gloo.
    """
    missing = [name for name in ENV_VARS if not os.environ.get(name)]
    if missing:
        raise MovieRecError(
            f"--distributed needs the environment torchrun sets, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set; launch with "
            "`torchrun --nproc_per_node N -m movierec train ... --distributed`, or drop --distributed."
        )
    numbers = {name: os.environ[name].strip() for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    if not all(value.isdigit() for value in numbers.values()):
        raise MovieRecError(f"torchrun's environment {numbers} holds a non-integer; launch with torchrun.")
    local_rank = int(numbers["LOCAL_RANK"])
    device = _rank_device(device_name, local_rank)
    if not dist.is_initialized():
        dist.init_process_group(_backend(device), timeout=TIMEOUT)
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device)


def join(device_name: str, across_processes: bool) -> Context:
    """torchrun's group when ``across_processes`` (``setup``), else a group of this process alone, so that code
    written for a group of ranks runs unchanged at world size 1."""
    if across_processes:
        return setup(device_name)
    device = _rank_device(device_name, 0)
    if not dist.is_initialized():
        dist.init_process_group(_backend(device), store=dist.HashStore(), rank=0, world_size=1, timeout=TIMEOUT)
    return Context(dist.get_rank(), dist.get_world_size(), 0, device)


@contextlib.contextmanager
def group(device_name: str, across_processes: bool) -> Iterator[Context]:
    """``join``, leaving at the end the group of one process that it made itself (torchrun's group, or one that
    was already joined, is left to whoever joined it)."""
    made = not across_processes and not dist.is_initialized()
    try:
        yield join(device_name, across_processes)
    finally:
        if made:
            teardown()


def _rank_device(device_name: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` on its machine: the GPU ``local_rank`` on CUDA, else the CPU."""
    if device_name == "mps":
        raise MovieRecError("--distributed runs on cpu or cuda, not --device mps; use --device cpu or cuda.")
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise MovieRecError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto.")
    if local_rank >= torch.cuda.device_count():
        raise MovieRecError(
            f"LOCAL_RANK {local_rank} has no GPU of its own (this machine has {torch.cuda.device_count()}); "
            "start at most one process per GPU with --nproc_per_node."
        )
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def teardown() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(ratings: Ratings, rank: int, world: int, seed: int = 0) -> Ratings:
    """Rank ``rank``'s share of ``ratings``: a seeded shuffle cut into ``world`` near-equal parts, so every
    rating lands on exactly one rank and each rank sees a random mix of users and movies."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in 0..{world - 1}")
    order = np.random.default_rng(seed).permutation(len(ratings))
    return ratings.take(np.sort(np.array_split(order, world)[rank]))


def equal_shard(ratings: Ratings, context: Context, seed: int) -> Ratings:
    """This rank's shard trimmed to the smallest shard's size, so every rank runs the same number of batches
    (a rank with one batch more would wait forever at the gradient all-reduce). At most ``world - 1`` ratings
    in all are left out."""
    part = shard(ratings, context.rank, context.world, seed)
    smallest = len(ratings) // context.world
    return part.take(np.arange(smallest)) if len(part) > smallest else part


class ShardedSgd(SgdSolver):
    """The mini-batch solver on this rank's shards: steps through DDP on ``batch_size / world`` ratings at a time,
    and the epoch's training and validation figures summed over every rank, so all ranks stop at the same epoch."""

    def __init__(self, setup: Setup, context: Context) -> None:
        config = setup.config
        shards = replace(
            setup,
            train=equal_shard(setup.train, context, config.seed),
            valid=shard(setup.valid, context.rank, context.world, config.seed),
        )
        batch_size = max(1, -(-config.batch_size // context.world))
        super().__init__(shards, trainer=wrap(setup.module, context), batch_size=batch_size)

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        loss, rmse = super().run_epoch(epoch)
        return reduce_train(loss, rmse, len(self.setup.train), self.setup.device)

    def validation_rmse(self) -> float:
        return reduce_rmse(super().validation_rmse(), len(self.setup.valid), self.setup.device)


def wrap(module: nn.Module, context: Context) -> Any:
    """The module inside DistributedDataParallel, seen by the loop as the module itself (``penalty``, ``low``)."""
    ddp_class = nn.parallel.DistributedDataParallel
    # Buffers (the global mean, the hybrid's rated-movies matrix) are built identically on every rank: no
    # broadcast at every forward. Newer PyTorch names the switch forward_sync_buffers.
    newer = "forward_sync_buffers" in inspect.signature(ddp_class.__init__).parameters
    no_sync: dict[str, Any] = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    ddp = ddp_class(module, device_ids=device_ids, **no_sync)
    return _Trainer(ddp)


class _Trainer:
    """Forward through DDP (so gradients are averaged); the rest reaches the wrapped module."""

    def __init__(self, ddp: nn.parallel.DistributedDataParallel) -> None:
        self.ddp = ddp
        self.module: Any = ddp.module

    def __call__(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.ddp(users, items)

    def train(self) -> None:
        self.ddp.train()

    def eval(self) -> None:
        self.ddp.eval()

    def __getattr__(self, name: str) -> Any:  # penalty, low, high, export, ...
        return getattr(self.module, name)


def reduce_rmse(rmse: float, count: int, device: torch.device) -> float:
    """The RMSE over every rank's ratings, from each rank's RMSE over its ``count`` ratings."""
    squared, total = all_sum([rmse * rmse * count, float(count)], device)
    return math.sqrt(squared / max(1.0, total))


def reduce_train(loss: float, rmse: float, count: int, device: torch.device) -> tuple[float, float]:
    """(mean loss, RMSE) over every rank's training ratings, from each rank's own over its ``count``."""
    loss_sum, squared, total = all_sum([loss * count, rmse * rmse * count, float(count)], device)
    total = max(1.0, total)
    return loss_sum / total, math.sqrt(squared / total)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]
