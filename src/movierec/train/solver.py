"""What a solver supplies to the training driver: one pass over the data, and what differs per solver.

The driver (``movierec.train.driver``) owns the rest of a fit: the validation split, seeding, the device, building
the registry's module, resume, history, progress, checkpoints, the divergence check, early stopping, restoring
the best epoch and exporting the model. It builds the solver from a ``Setup``, restores a checkpoint into the
module and ``optimizer``, calls ``start``, then per epoch asks for the learning rate, one pass (``run_epoch``) and
the validation RMSE, in that order.

Adding a solver is one module in ``train/`` with a ``Solver`` subclass, named in ``driver.SOLVERS`` under its
``--solver`` name (which ``config.SOLVERS`` lists and the registry's ``ModelSpec.solvers`` allow per model).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.models.factors import FactorParams
from movierec.train.checkpoint import OptimizerState


@dataclass(frozen=True)
class Setup:
    """What the driver hands a solver."""

    config: TrainConfig
    module: Any
    """The registry's module on ``device``, holding its starting weights."""
    train: Ratings
    """The ratings to fit (the training ratings less the validation part)."""
    valid: Ratings
    """The validation ratings carved out of the training ratings."""
    device: torch.device
    data: Dataset | None = None
    """The whole dataset (movies, tags), for a solver that needs more than the module holds."""


class Solver(ABC):
    """One way to train a module; the driver builds one per fit (see the module docstring)."""

    label: ClassVar[str] = "training"
    """The progress bar's description."""
    min_improvement: ClassVar[float] = 0.0
    """The share by which a validation RMSE must beat the best so far to reset the patience counter (0: any
    lower RMSE does). The best epoch restored at the end is the lowest RMSE either way."""
    mean_dtype: ClassVar[type[np.floating[Any]] | None] = None
    """The precision the module's starting global mean is taken in (None: the ratings' own)."""
    stops_early: ClassVar[bool] = True
    """Whether ``config.patience`` ends the run when validation stops improving (False: every epoch runs)."""

    optimizer: OptimizerState
    """What the checkpoint keeps beside the module's weights (``checkpoint.NoOptimizer`` when nothing)."""

    validation_history: list[float]
    """The validation RMSE of every epoch so far, resumed ones included (the driver keeps it)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.validation_history = []

    @staticmethod
    def module_config(config: TrainConfig) -> TrainConfig:
        """The settings the module is built with (the run's own unless the solver cannot train a part)."""
        return config

    def start(self) -> None:
        """Called once before the first epoch, when the module and ``optimizer`` hold their starting state (fresh,
        or restored from the checkpoint)."""
        return None

    def learning_rate(self, epoch: int) -> float:
        """The step size of ``epoch`` (1-based), for the history; 0 for a solver without one."""
        return 0.0

    def regularization(self) -> float:
        """The ridge of the epoch just run, for the history (0 for a solver without one)."""
        return self.setup.config.reg

    @abstractmethod
    def run_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over ``setup.train``; returns (mean loss, train RMSE). The module then holds the new weights."""

    @abstractmethod
    def validation_rmse(self) -> float:
        """RMSE on ``setup.valid`` of the predictions clipped to the rating scale."""

    def export(self, best: dict[str, torch.Tensor] | None) -> FactorParams:
        """The fitted snapshot: the module's export, from the best epoch's weights ``best`` when given."""
        module = self.setup.module
        if best is not None:
            module.load_state_dict({key: value.to(self.setup.device) for key, value in best.items()})
        params: FactorParams = module.export()
        return params

    @abstractmethod
    def divergence(self, epoch: int, loss: float) -> str:
        """The one-sentence error when ``epoch`` ended with a loss that is not finite, naming the setting to change."""


def rating_tensors(ratings: Ratings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(users, items, ratings) as int64, int64 and float32 tensors on ``device``."""
    return (
        torch.from_numpy(ratings.users.astype(np.int64)).to(device),
        torch.from_numpy(ratings.items.astype(np.int64)).to(device),
        torch.from_numpy(ratings.ratings.astype(np.float32)).to(device),
    )
