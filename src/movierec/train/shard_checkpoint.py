"""Checkpoints of sharded training: every rank saves its own rows, rank 0 writes the manifest last.

In ``RUN/checkpoint-shards/`` after epoch ``e``, rank ``r`` writes ``rank-0000r.epoch-0000e.safetensors`` (the
usual checkpoint format, ``checkpoint.save``: its own rows, the best epoch's, the history; atomic). Once every rank
has written its file (a barrier), rank 0 writes ``manifest.json`` (atomic) naming the epoch and the world size: an
epoch is complete when the manifest names it. A rank then deletes its files older than the epoch before (the
manifest may still name that one until rank 0 has written it), so a kill at any moment leaves the manifest's epoch
on disk for every rank.

``--resume`` reads the manifest on rank 0 and tells every rank which epoch to load; each rank loads its own file
from its own disk, so the files need no shared file system as long as every rank runs where it ran before (the
manifest on rank 0's). It resumes only at the world size that wrote it: rows are owned by ``index % W``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import nn

from movierec import atomic
from movierec.config import TrainConfig
from movierec.errors import ArtifactError, MovieRecError
from movierec.train import checkpoint
from movierec.train.distributed import Context

FOLDER = "checkpoint-shards"
MANIFEST = "manifest.json"
FORMAT = 1


def rank_file(rank: int, epoch: int) -> str:
    return f"rank-{rank:05d}.epoch-{epoch:06d}.safetensors"


class ShardCheckpoints:
    """This rank's checkpoints in ``run_dir``, to be resumed from or not. ``save`` and ``load`` are collective:
    every rank calls them."""

    def __init__(self, run_dir: Path, context: Context, resume: bool) -> None:
        self.folder = Path(run_dir) / FOLDER
        self.run_dir, self.rank, self.world, self.resume = Path(run_dir), context.rank, context.world, resume

    def clear(self) -> None:
        """Start afresh: rank 0 removes the manifest, every rank its own files."""
        if self.rank == 0:
            (self.folder / MANIFEST).unlink(missing_ok=True)
        for path in self._own_files():
            path.unlink(missing_ok=True)

    def save(self, module: nn.Module, config: TrainConfig, state: checkpoint.TrainingState) -> None:
        """Save this rank's rows after epoch ``state.epoch``; once all have, rank 0 names the epoch complete."""
        checkpoint.save(self.folder, module, checkpoint.NoOptimizer(), config, state, rank_file(self.rank, state.epoch))
        dist.barrier()
        if self.rank == 0:
            atomic.write_json(self.folder / MANIFEST, {"format": FORMAT, "world": self.world, "epoch": state.epoch})
        for path in self._own_files():
            if _epoch(path) < state.epoch - 1:
                path.unlink(missing_ok=True)

    def load(self, module: nn.Module, config: TrainConfig) -> checkpoint.TrainingState:
        """Every rank's rows and state at the manifest's epoch, or the same one-sentence refusal on every rank."""
        shared: list[Any] = [self._manifest() if self.rank == 0 else None]
        dist.broadcast_object_list(shared, src=0)
        manifest = shared[0]
        if isinstance(manifest, str):
            raise MovieRecError(manifest)
        epoch = int(manifest["epoch"])
        problem, state = None, checkpoint.TrainingState()
        try:
            state = checkpoint.load(self.folder, module, checkpoint.NoOptimizer(), config, rank_file(self.rank, epoch))
            if state.epoch != epoch:
                problem = f"The checkpoint of rank {self.rank} in {self.folder} for epoch {epoch} is missing; "
                problem += "drop --resume to train from the start."
        except ArtifactError as error:
            problem = f"Rank {self.rank}: {error}"
        problems: list[Any] = [None] * self.world
        dist.all_gather_object(problems, problem)
        first = next((found for found in problems if found is not None), None)
        if first is not None:
            raise ArtifactError(first)
        return state

    def _manifest(self) -> dict[str, Any] | str:
        """The manifest, or the sentence that refuses to resume from it."""
        path = self.folder / MANIFEST
        if not path.is_file():
            return f"--resume needs a checkpoint in {self.run_dir}, and there is none; drop --resume to start."
        try:
            manifest = json.loads(path.read_text())
            world, epoch = int(manifest["world"]), int(manifest["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return f"The checkpoint manifest {path} is damaged; drop --resume to train from the start."
        if manifest.get("format") != FORMAT:
            return (
                f"The checkpoint manifest {path} has format {manifest.get('format')!r}; this movierec reads {FORMAT}."
            )
        if world != self.world:
            return (
                f"The checkpoint in {self.folder} was written by {world} processes, not {self.world}; resume with "
                f"{world} processes (torchrun --nproc_per_node {world}), or drop --resume to train from the start."
            )
        return {"world": world, "epoch": epoch}

    def _own_files(self) -> list[Path]:
        return sorted(self.folder.glob(f"rank-{self.rank:05d}.epoch-*.safetensors"))


def remove(run_dir: Path) -> None:
    """Remove a finished run's shard checkpoints (the manifest first: what is left is never taken for complete)."""
    folder = Path(run_dir) / FOLDER
    (folder / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def _epoch(path: Path) -> int:
    return int(path.name.split(".epoch-")[1].split(".")[0])
