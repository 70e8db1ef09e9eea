"""Checkpoints: one safetensors file per run, rewritten atomically every epoch.

It holds the module's weights, the best epoch's weights (only when that epoch is not the last: else they are the
module's), the optimiser's state and (as JSON metadata) the
epoch counter and history, so a killed run resumes with ``--resume`` losing at most the epoch in flight.
Nothing is pickled: tensors go through safetensors, everything else through JSON. The metadata carries a sha256
of the tensors and the other metadata, so a damaged checkpoint is refused instead of resumed from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save_file
from torch import nn

from movierec import atomic
from movierec.artifact.run import safetensors_metadata
from movierec.config import TrainConfig
from movierec.errors import ArtifactError

CHECKPOINT_FORMAT = 2  # 2: the metadata carries a sha256
CHECKPOINT_NAME = "checkpoint.safetensors"


class OptimizerState(Protocol):
    """The part of a solver the checkpoint keeps beside the weights: a torch optimiser, or ``NoOptimizer``."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class NoOptimizer:
    """Stands in for the optimiser of a solver that keeps none (ALS): checkpoints keep their one format."""

    def state_dict(self) -> dict[str, Any]:
        return {"state": {}, "param_groups": []}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return None


@dataclass
class TrainingState:
    """Where a run stands: last finished epoch, best epoch so far and its weights, per-epoch history."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_rmse: float = float("inf")
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, row: dict[str, float], val_rmse: float, module: nn.Module) -> None:
        """Log an epoch; keep a copy of the weights when it is the best so far."""
        self.epoch = int(row["epoch"])
        self.history.append(row)
        if val_rmse < self.best_val_rmse:
            self.best_val_rmse = val_rmse
            self.best_epoch = self.epoch
            self.best_state = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def save(
    run_dir: Path,
    module: nn.Module,
    optimizer: OptimizerState,
    config: TrainConfig,
    state: TrainingState,
    name: str = CHECKPOINT_NAME,
) -> None:
    """Write the checkpoint ``name`` (one rank's own, under sharded training) in ``run_dir``, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for key, value in module.state_dict().items():  # written before this returns: no copy of CPU tensors needed
        tensors[f"model.{key}"] = value.detach().to("cpu").contiguous()
    if state.best_state is not None and state.best_epoch != state.epoch:  # else the best are the weights above
        for key, value in state.best_state.items():
            tensors[f"best.{key}"] = value.contiguous()
    optimizer_state = optimizer.state_dict()
    for param_id, param_state in optimizer_state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{param_id}.{key}"] = value.detach().to("cpu").clone().contiguous()
    meta = {
        "format": str(CHECKPOINT_FORMAT),
        "config": json.dumps(config.to_dict()),
        "state": json.dumps(
            {
                "epoch": state.epoch,
                "best_epoch": state.best_epoch,
                "best_val_rmse": state.best_val_rmse,
                "history": state.history,
            }
        ),
        "param_groups": json.dumps(optimizer_state["param_groups"]),
    }
    meta["sha256"] = checksum(tensors, meta)
    with atomic.atomic_path(run_dir / name) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load(
    run_dir: Path, module: nn.Module, optimizer: OptimizerState, config: TrainConfig, name: str = CHECKPOINT_NAME
) -> TrainingState:
    """Restore module, optimiser and state from the checkpoint ``name`` in ``run_dir``; a fresh state when there is
    no checkpoint."""
    path = run_dir / name
    if not path.is_file():
        return TrainingState()
    tensors, meta = read(path)
    saved = json.loads(meta["config"])
    for key in ("model", "dim"):
        if saved.get(key) != getattr(config, key):
            raise ArtifactError(
                f"The checkpoint {path} was trained with {key}={saved.get(key)!r}, not {getattr(config, key)!r}; "
                "resume with the same settings or use a new --out folder."
            )
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        module.load_state_dict(model_state)
        optimizer_state: dict[str, Any] = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, param_id, name = key.split(".", 2)
                optimizer_state["state"].setdefault(int(param_id), {})[name] = value
        optimizer.load_state_dict(optimizer_state)
    except (RuntimeError, ValueError, KeyError) as exc:  # shapes of other data, another optimiser
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"The checkpoint {path} does not fit this model and data ({reason}); "
            "resume with the same data and settings or use a new --out folder."
        ) from None
    info = json.loads(meta["state"])
    return TrainingState(
        epoch=int(info["epoch"]),
        best_epoch=int(info["best_epoch"]),
        best_val_rmse=float(info["best_val_rmse"]),
        best_state={k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or model_state,
        history=list(info["history"]),
    )


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint, refusing damaged files and unknown formats with a clear error."""
    try:
        data = path.read_bytes()  # one read: a checkpoint replaced meanwhile cannot mix two versions' parts
        tensors = tensors_from_bytes(data)
        meta = safetensors_metadata(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"The checkpoint {path} is damaged or not a safetensors file ({exc}).") from None
    if meta.get("format") != str(CHECKPOINT_FORMAT):
        raise ArtifactError(
            f"The checkpoint {path} has format {meta.get('format')!r}; this movierec reads format {CHECKPOINT_FORMAT}."
        )
    if meta.get("sha256") != checksum(tensors, meta):
        raise ArtifactError(f"The checkpoint {path} is damaged: its checksum does not match its contents.")
    return tensors, meta


def checksum(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """sha256 over the metadata (but the checksum itself) and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous()
        digest.update(f"\n{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)  # the bytes, not a copy
    return digest.hexdigest()
