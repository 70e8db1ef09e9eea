"""The mini-batch solver (``--solver loop``): gradient steps on seeded shuffled batches.

Each epoch shuffles the fit ratings, then per batch: loss = squared error + ``reg`` times the squared norms of
the rows the batch touched, one optimiser step. Validation RMSE is measured on the module's raw predictions
clipped to the rating scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.train.solver import Setup, Solver, rating_tensors


class SgdSolver(Solver):
    """The configured optimiser over mini-batches; ``trainer`` and ``batch_size`` let a wrapper step the module
    through DDP on a share of each batch (``movierec.train.distributed``)."""

    def __init__(self, setup: Setup, *, trainer: Any = None, batch_size: int | None = None) -> None:
        super().__init__(setup)
        config = setup.config
        self.optimizer: torch.optim.Optimizer = make_optimizer(config, setup.module)
        self.trainer = setup.module if trainer is None else trainer
        self.step_config = config if batch_size is None else config.replace(batch_size=batch_size)
        self.batches = BatchSource(setup.train, setup.device)
        self.valid = rating_tensors(setup.valid, setup.device)

    def learning_rate(self, epoch: int) -> float:
        return learning_rate(self.setup.config, epoch)

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(epoch)
        return run_epoch(self.trainer, self.optimizer, self.batches, self.step_config, epoch)

    def validation_rmse(self) -> float:
        return evaluate_rmse(self.setup.module, *self.valid, self.setup.config.batch_size * 8)

    def divergence(self, epoch: int, loss: float) -> str:
        return f"Training diverged at epoch {epoch} (loss {loss}); lower --lr (now {self.setup.config.lr})."


class BatchSource:
    """The training ratings as tensors on the device, served in a seeded shuffled order each epoch."""

    def __init__(self, ratings: Ratings, device: torch.device) -> None:
        self.users, self.items, self.ratings = rating_tensors(ratings, device)
        self.device = device

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def epoch(self, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(self), generator=generator).to(self.device)
        for start in range(0, len(self), batch_size):
            index = order[start : start + batch_size]
            yield self.users[index], self.items[index], self.ratings[index]


def run_epoch(
    module: Any, optimizer: torch.optim.Optimizer, batches: BatchSource, config: TrainConfig, epoch: int
) -> tuple[float, float]:
    """One pass over the training ratings; returns (mean loss, train RMSE)."""
    module.train()
    loss_sum = squared_sum = 0.0
    for users, items, ratings in batches.epoch(config.batch_size, config.seed, epoch):
        predicted = module(users, items)
        squared = (predicted - ratings).pow(2)
        loss = squared.mean() + config.reg * module.penalty(users, items).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(users)
        squared_sum += float(squared.detach().sum())
    n = max(1, len(batches))
    return loss_sum / n, math.sqrt(squared_sum / n)


@torch.no_grad()
def evaluate_rmse(
    module: Any, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, batch_size: int
) -> float:
    """RMSE of the module's raw predictions, clipped to the rating scale, on held-out ratings."""
    module.eval()
    low, high = float(module.low), float(module.high)
    squared = 0.0
    for start in range(0, int(users.shape[0]), batch_size):
        predicted = module(users[start : start + batch_size], items[start : start + batch_size]).clamp(low, high)
        squared += float((predicted - ratings[start : start + batch_size]).pow(2).sum())
    return math.sqrt(squared / max(1, int(users.shape[0])))


def make_optimizer(config: TrainConfig, module: nn.Module) -> torch.optim.Optimizer:
    params = list(module.parameters())
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=0.9)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)
    dense = [p for p in params if p.dim() == 0]
    sparse = [p for p in params if p.dim() > 0]
    if dense:
        raise MovieRecError(f"--optimizer sparse-adam does not fit model {config.model!r}; use adam.")
    return torch.optim.SparseAdam(sparse, lr=config.lr)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate for ``epoch`` (1-based) under the configured schedule."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    if config.schedule == "step":
        return config.lr * 0.5 ** ((epoch - 1) // 10)
    return config.lr
