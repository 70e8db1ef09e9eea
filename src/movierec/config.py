"""The training configuration: typed, validated on creation, saved in every run folder.

CLI flags map one to one onto these fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from movierec.errors import MovieRecError

OPTIMIZERS = ("adam", "sgd", "sparse-adam", "adagrad")
SCHEDULES = ("none", "cosine", "step")
DEVICES = ("auto", "cpu", "cuda", "mps")
SOLVERS = ("loop", "als")
Optimizer = Literal["adam", "sgd", "sparse-adam", "adagrad"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run. Defaults are the tuned ones for ml-latest-small."""

    model: str = "biased-mf"
    """Which model (``movierec.models.registry`` lists them and checks the name). A bare ``TrainConfig()`` holds
    the field defaults; ``registry.config_for()`` gives the shipped defaults of the default model."""
    dim: int = 64
    """Embedding size (factors per user and per movie)."""
    epochs: int = 40
    """Most epochs to train; early stopping usually ends sooner."""
    lr: float = 0.005
    """Learning rate."""
    reg: float = 0.1
    """L2 penalty on the rows each batch touches, added to the loss."""
    weight_decay: float = 0.0
    """Optimiser-wide weight decay: shrinks every row at every step, touched or not."""
    batch_size: int = 1024
    """Ratings per mini-batch."""
    optimizer: str = "adam"
    """adam, sgd, sparse-adam or adagrad."""
    schedule: str = "none"
    """Learning-rate schedule: none, cosine or step (halve every 10 epochs)."""
    patience: int = 3
    """Epochs without a better validation RMSE before stopping; the best epoch is restored."""
    val_fraction: float = 0.05
    """Share of the training ratings carved out for validation (the test set never chooses anything)."""
    init_std: float = 0.05
    """Standard deviation of the initial factors."""
    fold_in_reg: float = 0.6
    """Noise variance of a new user's ratings against the trained users' Gaussian prior when folding in (smaller
    trusts the few ratings more); a ridge penalty where a model has no such prior."""
    seed: int = 0
    """Seed for initialisation, shuffling and the validation split."""
    device: str = "auto"
    """auto, cpu, cuda or mps; auto picks CUDA when present."""
    solver: str = "loop"
    """loop (gradient steps, --optimizer) or als (fast alternating least squares: biased-mf; hybrid without SVD++)."""
    watch_dim: int = 64
    """Size of the "likely to watch" component of the ranking score (implicit ALS); 0 turns it off."""
    watch_reg: float = 10.0
    """Ridge penalty of the "likely to watch" component."""
    watch_unobserved: float = 1.0
    """Weight of the movies a user did not rate in the "likely to watch" component."""
    watch_iterations: int = 8
    """Alternating sweeps of the "likely to watch" component."""
    use_genres: bool = True
    """hybrid: add learned genre and release-year embeddings to each movie."""
    use_tags: bool = True
    """hybrid: add learned embeddings of user tags to each movie (when the data has tags)."""
    use_implicit: bool = True
    """hybrid: add the SVD++ term, a normalised sum over the movies the user rated."""
    distributed: bool = False
    """Train across the processes torchrun starts (DistributedDataParallel; each rank trains on its shard)."""

    def __post_init__(self) -> None:
        for field in fields(self):  # a config file can hold any JSON: check types before values
            _typed(field.name, getattr(self, field.name), str(field.type))
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("solver", self.solver, SOLVERS)
        _positive_int("dim", self.dim, 1, 4096)
        _positive_int("epochs", self.epochs, 1, 10_000)
        _positive_int("batch_size", self.batch_size, 1, 10_000_000)
        _positive_int("patience", self.patience, 1, 1000)
        _positive_int("watch_dim", self.watch_dim, 0, 1024)
        _positive_int("watch_iterations", self.watch_iterations, 1, 100)
        if not 0 < self.lr <= 10:
            raise MovieRecError(f"--lr {self.lr} is out of range; use a learning rate in (0, 10], e.g. 0.005.")
        for name in ("reg", "weight_decay", "init_std", "fold_in_reg", "watch_reg", "watch_unobserved"):
            if getattr(self, name) < 0:
                flag = name.replace("_", "-")
                raise MovieRecError(f"--{flag} {getattr(self, name)} is negative; use a value >= 0.")
        if not 0 < self.val_fraction < 0.5:
            raise MovieRecError(f"--val-fraction {self.val_fraction} is out of range; use a value in (0, 0.5).")
        if self.distributed and self.solver != "loop":
            raise MovieRecError(f"--distributed trains with --solver loop, not {self.solver!r}; use --solver loop.")
        if self.distributed and self.optimizer == "sparse-adam":
            raise MovieRecError("--distributed cannot be used with --optimizer sparse-adam; use adam instead.")
        if self.optimizer == "sparse-adam" and self.weight_decay:
            raise MovieRecError("--weight-decay cannot be used with --optimizer sparse-adam; use adam instead.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(values, dict):
            raise MovieRecError(f"{source} must hold a JSON object of settings, not {type(values).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MovieRecError(f"{source} has unknown setting(s) {unknown}; valid settings are {sorted(known)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        if path.is_dir():
            raise MovieRecError(f"The config file {path} is a folder; give the path of a JSON file.")
        if not path.is_file():
            raise MovieRecError(f"The config file {path} does not exist.")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MovieRecError(f"The config file {path} is not valid JSON ({exc.args[0]}).") from None
        if not isinstance(values, dict):
            raise MovieRecError(f"The config file {path} must hold a JSON object of settings.")
        values = values.get("train", values)
        return cls.from_dict(values, source=str(path))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def _typed(name: str, value: Any, kind: str) -> None:
    valid = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }.get(kind, True)
    if not valid:
        raise MovieRecError(f"--{name.replace('_', '-')} {value!r} is not {_KINDS[kind]}; give {_KINDS[kind]}.")


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise MovieRecError(f"--{name} {value!r} is not valid; choose one of: {', '.join(valid)}.")


def _positive_int(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        flag = name.replace("_", "-")
        raise MovieRecError(f"--{flag} {value} is out of range; use an integer from {low} to {high}.")
