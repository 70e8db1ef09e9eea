"""The one training loop, readable top to bottom.

``fit`` carves a validation split out of the training ratings, builds the module, then for each epoch:
shuffles, runs mini-batches (loss = squared error + L2 on the rows each batch touched), measures validation
RMSE, writes a checkpoint, and stops early when validation stops improving, restoring the best epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import validation_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.models.baselines import popularity_prior
from movierec.models.factors import FactorModel, FactorParams, population_prior
from movierec.train import checkpoint, distributed
from movierec.train.rank_weight import choose_rank_weight
from movierec.train.watch import WatchSettings, fit_watch


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_rmse: float
    val_rmse: float
    lr: float
    seconds: float
    ratings_per_s: float

    def to_row(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class FitResult:
    model: FactorModel
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    best_val_rmse: float = math.nan
    seconds: float = 0.0


EpochCallback = Callable[[EpochStats], None]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit device that is missing is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MovieRecError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise MovieRecError("--device mps was asked for but MPS is not available; use --device cpu or auto.")
    return torch.device(name)


def fit(
    config: TrainConfig,
    data: Dataset,
    train: Ratings,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Fit ``config.model`` on ``train``; baselines are closed form, the rest run the loop below."""
    spec = registry.get(registry.check(config).model)
    if config.solver != "loop" and spec.trained:  # the fast path, movierec.train.fast
        from movierec.train.fast import fit_fast

        return fit_fast(config, data, train, run_dir=run_dir, resume=resume, progress=progress, on_epoch=on_epoch)
    started = time.perf_counter()
    split = validation_split(train, fraction=config.val_fraction, seed=config.seed)
    fit_part, val_part = split.train, split.test
    if spec.closed_form is not None:
        baseline = spec.closed_form
        weight = choose_rank_weight(FactorModel(baseline(fit_part, data.scale)), fit_part, val_part)
        model = FactorModel(baseline(train, data.scale), config.model).with_rank_weight(weight.params.rank_weight)
        return FitResult(model, seconds=time.perf_counter() - started)

    torch.manual_seed(config.seed)
    ranks = distributed.setup(config.device) if config.distributed else None
    device = ranks.device if ranks is not None else resolve_device(config.device)
    assert spec.build is not None
    module: Any = spec.build(config, data, fit_part).to(device)
    module.init_from_mean(float(fit_part.ratings.mean()))
    optimizer = make_optimizer(config, module)
    trainer, step_config, val_rows, save_dir = module, config, val_part, run_dir
    if ranks is None:
        batches = BatchSource(fit_part, device)
    else:  # each rank steps on its shard, batch_size / world at a time, and measures its validation shard
        trainer = distributed.wrap(module, ranks)
        step_config = config.replace(batch_size=max(1, -(-config.batch_size // ranks.world)))
        batches = BatchSource(distributed.equal_shard(fit_part, ranks, config.seed), device)
        val_rows = distributed.shard(val_part, ranks.rank, ranks.world, config.seed)
        save_dir = run_dir if ranks.is_main else None  # every rank may resume; only rank 0 writes or prints
        progress, on_epoch = progress and ranks.is_main, on_epoch if ranks.is_main else None
    val_users, val_items, val_ratings = _tensors(val_rows, device)

    state = checkpoint.TrainingState()
    if resume and run_dir is not None:
        state = checkpoint.load(run_dir, module, optimizer, config)
    history = [EpochStats(**row) for row in state.history]  # type: ignore[arg-type]

    with _progress_bar(progress) as bar:
        task = bar.add_task("training", total=config.epochs, completed=state.epoch, status="")
        for epoch in range(state.epoch + 1, config.epochs + 1):
            tick = time.perf_counter()
            lr = learning_rate(config, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss, train_rmse = run_epoch(trainer, optimizer, batches, step_config, epoch)
            val_rmse = evaluate_rmse(module, val_users, val_items, val_ratings, config.batch_size * 8)
            if ranks is not None:  # every rank sees the same figures, so all stop at the same epoch
                train_loss, train_rmse = distributed.reduce_train(train_loss, train_rmse, len(batches), device)
                val_rmse = distributed.reduce_rmse(val_rmse, len(val_rows), device)
            seconds = time.perf_counter() - tick
            stats = EpochStats(epoch, train_loss, train_rmse, val_rmse, lr, seconds, len(fit_part) / seconds)
            history.append(stats)
            state.record(stats.to_row(), val_rmse, module)
            if save_dir is not None:
                checkpoint.save(save_dir, module, optimizer, config, state)
            if on_epoch is not None:
                on_epoch(stats)
            bar.update(task, advance=1, status=_status(stats, state))
            if not math.isfinite(train_loss):
                raise MovieRecError(
                    f"Training diverged at epoch {epoch} (loss {train_loss}); lower --lr (now {config.lr})."
                )
            if epoch - state.best_epoch >= config.patience:
                break

    if state.best_state is not None:
        module.load_state_dict({k: v.to(device) for k, v in state.best_state.items()})
    params = finish_params(module.export(), fit_part, config)
    model = choose_rank_weight(FactorModel(params, config.model), fit_part, val_part)
    return FitResult(model, history, state.best_epoch, state.best_val_rmse, time.perf_counter() - started)


def finish_params(params: FactorParams, train: Ratings, config: TrainConfig) -> FactorParams:
    """Add what scoring needs beyond the weights: which rows were trained (untrained rows are zeroed, so they
    score as the fallback), the popularity prior, the "likely to watch" component fitted on ``train``, and the
    population prior that new users are folded in from."""
    user_known = train.user_counts() > 0
    item_known = params.item_known if params.item_known.size else train.item_counts() > 0
    watch = WatchSettings(config.watch_dim, config.watch_reg, config.watch_unobserved, config.watch_iterations)
    factors = fit_watch(train, watch, seed=config.seed) if watch.dim else None
    finished = replace(
        params,
        user_bias=np.where(user_known, params.user_bias, 0.0).astype(np.float32),
        item_bias=np.where(item_known, params.item_bias, 0.0).astype(np.float32),
        user_factors=(params.user_factors * user_known[:, None]).astype(np.float32),
        item_factors=(params.item_factors * item_known[:, None]).astype(np.float32),
        user_known=user_known,
        item_known=item_known,
        item_prior=popularity_prior(train),
        fold_in_reg=config.fold_in_reg,
        watch_user=factors.user if factors else params.watch_user,
        watch_item=factors.item if factors else params.watch_item,
        watch_reg=watch.reg,
        watch_unobserved=watch.unobserved,
    )
    prior_mean, prior_precision = population_prior(finished, weights=train.user_counts())
    return replace(finished, fold_in_mean=prior_mean, fold_in_precision=prior_precision)


class BatchSource:
    """The training ratings as tensors on the device, served in a seeded shuffled order each epoch."""

    def __init__(self, ratings: Ratings, device: torch.device) -> None:
        self.users, self.items, self.ratings = _tensors(ratings, device)
        self.device = device

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def epoch(self, batch_size: int, seed: int, epoch: int) -> Any:
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


def _tensors(ratings: Ratings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(ratings.users.astype(np.int64)).to(device),
        torch.from_numpy(ratings.items.astype(np.int64)).to(device),
        torch.from_numpy(ratings.ratings.astype(np.float32)).to(device),
    )


def _status(stats: EpochStats, state: checkpoint.TrainingState) -> str:
    return (
        f"epoch {stats.epoch}  loss {stats.train_loss:.4f}  val RMSE {stats.val_rmse:.4f} "
        f"(best {state.best_val_rmse:.4f} @ {state.best_epoch})  {stats.ratings_per_s / 1e6:.2f}M ratings/s"
    )


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        disable=not enabled,
        transient=False,
    )
