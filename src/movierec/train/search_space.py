"""What `movierec tune` may change for each trained model: ranges over ``TrainConfig`` fields, by model name.

Every model shares the training knobs (embedding size, learning rate, L2 penalty, optimiser-wide weight decay,
batch size, epochs cap) and adds its own. Settings not listed here (optimizer, patience, validation share,
seed, ...) stay as the base configuration has them, so every trial is scored on the same validation split.
The ranges are centred on what works for MovieLens-sized data and kept to what 2 CPU cores can afford.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from optuna.trial import BaseTrial

from movierec.config import TrainConfig
from movierec.errors import MovieRecError

Kind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Param:
    """One searched ``TrainConfig`` field: an int or float range (optionally log-scaled) or a list of choices."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: int = 1
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: BaseTrial) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step, log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def nearest(self, value: Any) -> Any:
        """The value in this range closest to ``value`` (None for a choice it does not offer)."""
        if self.kind == "choice":
            return value if value in self.choices else None
        clipped = min(max(float(value), self.low), self.high)
        if self.kind == "float":
            return clipped
        steps = round((clipped - self.low) / self.step)
        return int(self.low) + self.step * min(steps, math.floor((self.high - self.low) / self.step))


TRAINING = (
    Param("dim", "int", 8, 128, log=True),
    Param("lr", "float", 1e-3, 2e-2, log=True),
    Param("reg", "float", 0.01, 0.5, log=True),
    Param("weight_decay", "float", 1e-7, 1e-4, log=True),
    Param("batch_size", "choice", choices=(512, 1024, 2048)),
    Param("epochs", "int", 10, 50, step=10),
)
"""Shared by every trained model. Batches below 512 and dims above 128 are left out: slower, not better."""

FACTORS = (Param("init_std", "float", 0.005, 0.1, log=True),)
"""Knobs of the factor tables every factor model has."""

SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "biased-mf": (*TRAINING, *FACTORS),
    "sigmoid-mf": (*TRAINING, *FACTORS),
    "hybrid": (
        *TRAINING,
        *FACTORS,
        Param("use_genres", "choice", choices=(True, False)),
        Param("use_tags", "choice", choices=(True, False)),
        Param("use_implicit", "choice", choices=(True, False)),
    ),
}


def search_space(model: str) -> tuple[Param, ...]:
    """The searched parameters of ``model``; an error naming the tunable models for any other name."""
    if model not in SEARCH_SPACES:
        raise MovieRecError(f"--model {model!r} has no search space; tunable models are: {', '.join(SEARCH_SPACES)}.")
    return SEARCH_SPACES[model]


UNUSED_BY_ALS = frozenset({"lr", "batch_size", "weight_decay"})
"""Settings the ALS solver (``--solver als``) never reads: it has no optimiser and no mini-batches."""


def searched(base: TrainConfig) -> tuple[Param, ...]:
    """The parameters searched from ``base``: its model's space, less what its fixed settings make moot."""
    moot = set(UNUSED_BY_ALS) if base.solver == "als" else set()
    if base.optimizer == "sparse-adam":
        moot.add("weight_decay")  # sparse Adam refuses weight decay
    return tuple(param for param in search_space(base.model) if param.name not in moot)


def suggest_config(trial: BaseTrial, base: TrainConfig) -> TrainConfig:
    """``base`` with every searched field drawn by ``trial``."""
    return base.replace(**{param.name: param.suggest(trial) for param in searched(base)})


def base_params(base: TrainConfig) -> dict[str, Any]:
    """``base``'s own values as trial parameters (each moved into its range), to try the base first."""
    values = {param.name: param.nearest(getattr(base, param.name)) for param in searched(base)}
    return {name: value for name, value in values.items() if value is not None}


def _check() -> None:
    """Every searched name is a ``TrainConfig`` field (caught at import, not mid-study)."""
    known = {f.name for f in fields(TrainConfig)}
    for model, space in SEARCH_SPACES.items():
        unknown = [param.name for param in space if param.name not in known]
        if unknown:
            raise AssertionError(f"search space of {model} names unknown settings {unknown}")


_check()
