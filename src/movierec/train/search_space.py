"""What `movierec tune` changes from a base configuration: its model's search space (in the model registry).

Every model shares the training knobs (embedding size, learning rate, L2 penalty, optimiser-wide weight decay,
batch size, epochs cap) and adds its own. Settings not listed here (optimizer, patience, validation share,
seed, ...) stay as the base configuration has them, so every trial is scored on the same validation split.
The ranges are centred on what works for MovieLens-sized data and kept to what 2 CPU cores can afford.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from movierec.config import TrainConfig
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.models.registry import Param

if TYPE_CHECKING:
    from optuna.trial import BaseTrial


def search_space(model: str) -> tuple[Param, ...]:
    """The searched parameters of ``model``; an error naming the tunable models for any other name."""
    spec = registry.get(model)
    if not spec.search_space:
        raise MovieRecError(
            f"--model {model!r} has no search space; tunable models are: {', '.join(registry.tunable_names())}."
        )
    return spec.search_space


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
