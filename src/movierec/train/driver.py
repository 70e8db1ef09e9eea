"""The one training driver, readable top to bottom.

``fit`` carves a validation split out of the training ratings and fits closed-form models at once. For a trained
model it builds the module and the solver ``config.solver`` names (``SOLVERS``; see ``movierec.train.solver``),
resumes from the checkpoint, then for each epoch: one pass of the solver, validation RMSE, a history row, a
checkpoint, the divergence check, and early stopping when validation stops improving. It ends by restoring the
best epoch and exporting a ``FactorModel`` with its ranking weights chosen on the validation ratings.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from movierec.config import TrainConfig
from movierec.data import shard
from movierec.data.ratings import Dataset, Ratings
from movierec.data.shard import ShardSet
from movierec.data.split import Split, validation_split
from movierec.errors import MovieRecError
from movierec.evaluate.genres import movie_genres
from movierec.models import registry
from movierec.models.baselines import popularity_prior
from movierec.models.factors import FactorModel, FactorParams, population_prior
from movierec.train import checkpoint, distributed, rank_watch
from movierec.train.als_solver import AlsSolver
from movierec.train.freed_memory import give_back_freed_memory, hold_little
from movierec.train.gibbs import GibbsSolver
from movierec.train.rank_weight import choose_rank_weight, weight_users
from movierec.train.sgd import SgdSolver
from movierec.train.shard_checkpoint import ShardCheckpoints
from movierec.train.shard_exchange import Exchange
from movierec.train.sharded_als import ShardedAls, ShardRows, feature_count, meta_template
from movierec.train.sharded_finish import WEIGHT_USERS, ShardSummary, gather_summary
from movierec.train.sharded_gibbs import ShardedGibbs
from movierec.train.sharded_watch import fit_sharded_watch
from movierec.train.solver import Setup, Solver
from movierec.train.watch import WatchFactors, fit_configured

SOLVERS: dict[str, type[Solver]] = {"loop": SgdSolver, "als": AlsSolver, "gibbs": GibbsSolver}
"""Every solver, by its ``--solver`` name (``TrainConfig.solver``)."""


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_rmse: float
    val_rmse: float
    lr: float
    seconds: float
    ratings_per_s: float
    reg: float = 0.0
    """The ridge the epoch ran with (the ALS hybrid walks a path to ``--reg``); 0 where none applies (the sampler
    learns its priors), as ``lr`` is 0 for ALS, and in checkpoints written before it was recorded."""

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
    """Fit ``config.model`` on ``train``: closed form, or epochs of the solver ``config.solver`` names."""
    spec = registry.get(registry.check(config).model)
    started = time.perf_counter()
    split = validation_split(train, fraction=config.val_fraction, seed=config.seed)
    fit_part, val_part = split.train, split.test
    genres = movie_genres(data.movies, train.n_items)
    if spec.closed_form is not None:
        baseline = spec.closed_form
        weight = choose_rank_weight(FactorModel(baseline(fit_part, data.scale)), fit_part, val_part, genres)
        model = FactorModel(baseline(train, data.scale), config.model).with_rank_weight(weight.params.rank_weight)
        return FitResult(model, seconds=time.perf_counter() - started)

    ranks = distributed.setup(config.device) if config.distributed else None
    device = ranks.device if ranks is not None else resolve_device(config.device)
    solver = make_solver(config, data, fit_part, val_part, device, ranks)
    module = solver.setup.module
    save_dir = run_dir
    if ranks is not None and not ranks.is_main:  # every rank may resume; only rank 0 writes or prints
        save_dir, progress, on_epoch = None, False, None

    state = checkpoint.TrainingState()
    if resume and run_dir is not None:
        state = checkpoint.load(run_dir, module, solver.optimizer, config)
    save = None if save_dir is None else functools.partial(checkpoint.save, save_dir, module, solver.optimizer, config)
    history = run_epochs(solver, state, len(fit_part), save=save, progress=progress, on_epoch=on_epoch)
    params = solver.export(state.best_state)
    del solver, module, save  # the solver's ratings by user and by movie: the finish's own fits need the room
    give_back_freed_memory()
    model = finish_model(params, split, train, config, genres)
    return FitResult(model, history, state.best_epoch, state.best_val_rmse, time.perf_counter() - started)


@dataclass
class ShardedTraining:
    """Sharded ALS trained on one rank: the solver (its rows, its traffic), where it ended, and its history."""

    solver: ShardedAls
    state: checkpoint.TrainingState
    history: list[EpochStats]
    is_main: bool


def fit_sharded(
    config: TrainConfig,
    shards: ShardSet,
    run_dir: Path | None,
    resume: bool,
    *,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> tuple[FitResult, ShardSummary] | None:
    """Fit ``config`` with sharded ALS on ``shards`` (``train_sharded``; checkpoints in ``run_dir``, ``resume`` from
    them). Rank 0 then gathers the tables and what finishing and scoring the model needs (``sharded_finish``: the
    counts, the sampled users' ratings, the test ratings, the biases baseline), finishes the model as ``fit`` does
    and returns it with that summary; the other ranks return None. A rank that dies makes the others fail naming
    it (``rank_watch``)."""
    started = time.perf_counter()
    with distributed.group(config.device, config.distributed) as ranks, rank_watch.watched(ranks):
        checkpoints = ShardCheckpoints(run_dir, ranks, resume) if run_dir is not None else None
        # no name holds the training here, so that finish_sharded can let go of it (its solver, its ratings)
        return finish_sharded(
            train_sharded(config, shards, checkpoints, progress=progress, on_epoch=on_epoch), shards, config, ranks,
            started,
        )  # fmt: skip


def finish_sharded(
    trained: ShardedTraining, shards: ShardSet, config: TrainConfig, ranks: distributed.Context, started: float
) -> tuple[FitResult, ShardSummary] | None:
    """``fit_sharded``'s end, on every rank of ``ranks``: the "likely to watch" fits, the summary and the tables
    gathered, then on rank 0 the finished model (timed from ``started``) and the summary; None on the other ranks.
    It lets go of ``trained``'s ratings first (the solver keeps its rows; the caller should hold no other name for
    it), reads the rank's own ratings again (training held them grouped, not as read) for the component, fitted
    across the ranks (``sharded_watch``: no rank ever holds every rating) and the summary, and lets go of them
    then. Rank 0 gathers the first fit's rows of only the users that choose the ranking weights and the model's
    tables, finishes the model and chooses its ranking weights, and only then receives the refit (the others wait
    for it in the gather), so it never holds both fits, nor the exported tables beside the finished ones."""
    solver, state, history = trained.solver, trained.state, trained.history
    del trained
    solver.let_go_of_ratings()
    give_back_freed_memory()
    own = shards.read_owned(ranks.rank, ranks.world)
    exchange = Exchange(ranks)
    fits = fit_sharded_watch(own, config, solver.mean, exchange) if config.watch_dim else None
    give_back_freed_memory()
    summary = gather_summary(own, shards, config.val_fraction, config.seed, exchange)
    n_items = own.n_items
    del own
    weighed = exchange.broadcast(None if summary is None else weight_users(summary.valid, WEIGHT_USERS))
    fitted = fits.fit_gathered(weighed, exchange) if fits is not None else None
    params = solver.gather(state.best_state)
    del solver
    model = None
    if params is not None and summary is not None:  # rank 0 ranks, while the others wait to send the refit
        genres = movie_genres(shards.movies, n_items)  # rank 0 alone reads the movies
        finished = finish_params(params, summary.fit, config, fitted, owned=True)
        del params, fitted
        model = choose_rank_weight(FactorModel(finished, config.model), summary.fit, summary.valid, genres)
        del finished
    refitted = fits.refit_gathered(exchange) if fits is not None else None
    del fits
    if model is None or summary is None:
        return None
    model = with_watch_refit(model, summary.train, config, refitted)
    del refitted
    give_back_freed_memory()  # what finishing freed, before the model is scored and saved
    result = FitResult(model, history, state.best_epoch, state.best_val_rmse, time.perf_counter() - started)
    return result, summary


def train_sharded(
    config: TrainConfig,
    shards: ShardSet,
    checkpoints: ShardCheckpoints | None = None,
    *,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> ShardedTraining:
    """The epochs of sharded ALS (``train/sharded_als.py``), or with ``--solver gibbs`` of the sharded sampler
    (``train/sharded_gibbs.py``), on the shard folder ``shards``, across torchrun's processes with
    ``config.distributed`` (else in this process alone, world size 1): each rank reads only its parts. With
    ``checkpoints`` every rank saves its rows (and its chain) each epoch (``shard_checkpoint``), and continues from
    the last complete epoch when they are to be resumed. Only rank 0 shows progress and hears ``on_epoch``. In a
    process of its own (``config.distributed``) a rank hands large freed blocks straight back to the system for the
    rest of the process (``hold_little``): it exists to hold little, and what the epochs leave in the heaps would
    still be there at the end, where every rank's peak is (20M ratings, 4 ranks: the largest rank's peak 1.054 GB
    with it set from the end on, 0.962 from the start; mean epoch seconds at world 1, idle machine, 1.87-2.16 with
    it against 1.85-1.89 without)."""
    if config.distributed:
        hold_little()
    ranks = distributed.join(config.device, config.distributed)
    fit_own, val_own = held_out(shards.read_owned(ranks.rank, ranks.world), config)
    n_ratings = int(distributed.all_sum([float(len(fit_own))], ranks.device)[0])
    vocabularies = val_own.take(np.zeros(0, np.int64))  # all that building the module reads of the ratings
    spec = registry.get(registry.check(config).model)
    assert spec.build is not None, "sharded training trains a model with a module builder"
    dataset = shards.dataset(vocabularies)
    build = functools.partial(spec.build, AlsSolver.module_config(config), dataset, vocabularies)
    template = meta_template(build)
    size = (vocabularies.n_users, vocabularies.n_items, feature_count(template))
    rows = ShardRows(*size, config.dim, config.init_std, config.seed, ranks)
    kind = ShardedGibbs if config.solver == "gibbs" else ShardedAls
    solver = kind(Setup(config, rows, fit_own, val_own, ranks.device, dataset), ranks, template, build)
    del fit_own, val_own  # the solver lets go of them once it has grouped them (``start``)
    if not ranks.is_main:
        progress, on_epoch = False, None
    state, save = checkpoint.TrainingState(), None
    if checkpoints is not None:
        checkpoints = solver.checkpointed(checkpoints)
        if checkpoints.resume:
            state = checkpoints.load(rows, config)
        else:
            checkpoints.clear()
        save = functools.partial(checkpoints.save, rows, config)
    history = run_epochs(solver, state, n_ratings, save=save, progress=progress, on_epoch=on_epoch)
    return ShardedTraining(solver, state, history, ranks.is_main)


def held_out(ratings: Ratings, config: TrainConfig) -> Split:
    """``ratings`` less their validation ratings, and those, as ``config`` carves them (``shard.held_out``)."""
    return shard.held_out(ratings, config.val_fraction, config.seed)


def run_epochs(
    solver: Solver,
    state: checkpoint.TrainingState,
    n_ratings: int,
    *,
    save: Callable[[checkpoint.TrainingState], None] | None,
    progress: bool,
    on_epoch: EpochCallback | None,
) -> list[EpochStats]:
    """Start ``solver`` and run its epochs from ``state`` (fresh, or resumed) until ``config.epochs`` or early
    stopping: history, a checkpoint through ``save`` after each epoch (None: none), progress, the divergence
    check. ``n_ratings`` (the ratings one epoch fits, on every rank together) gives the throughput. Returns the
    whole history."""
    config, module = solver.setup.config, solver.setup.module
    solver.start()
    history = [EpochStats(**row) for row in state.history]  # type: ignore[arg-type]
    solver.validation_history = [stats.val_rmse for stats in history]
    last_gain = last_gain_epoch(history, solver.min_improvement)

    with _progress_bar(progress) as bar:
        task = bar.add_task(solver.label, total=config.epochs, completed=state.epoch, status="")
        for epoch in range(state.epoch + 1, config.epochs + 1):
            tick = time.perf_counter()
            lr = solver.learning_rate(epoch)
            train_loss, train_rmse = solver.run_epoch(epoch)
            val_rmse = solver.validation_rmse()
            solver.validation_history.append(val_rmse)
            seconds = time.perf_counter() - tick
            stats = EpochStats(
                epoch, train_loss, train_rmse, val_rmse, lr, seconds, n_ratings / seconds, solver.regularization()
            )
            if val_rmse < state.best_val_rmse * (1 - solver.min_improvement):
                last_gain = epoch
            history.append(stats)
            state.record(stats.to_row(), val_rmse, module)
            if save is not None:
                save(state)
            if on_epoch is not None:
                on_epoch(stats)
            bar.update(task, advance=1, status=_status(stats, state))
            if not math.isfinite(train_loss):
                raise MovieRecError(solver.divergence(epoch, train_loss))
            if solver.stops_early and epoch - last_gain >= config.patience:
                break
    return history


def finish_model(
    params: FactorParams, parts: Split, train: Ratings, config: TrainConfig, genres: np.ndarray | None
) -> FactorModel:
    """The fitted ``params`` finished for scoring (``finish_params`` on the fit part of ``parts``), with ranking
    weights chosen on its validation part (``genres``: each movie's) and "likely to watch" refitted on ``train``.
    ``finish_sharded`` takes the same steps with both fits of that component made across the ranks."""
    model = FactorModel(finish_params(params, parts.train, config), config.model)
    model = choose_rank_weight(model, parts.train, parts.test, genres)
    return with_watch_refit(model, train, config)


def make_solver(
    config: TrainConfig,
    data: Dataset,
    train: Ratings,
    valid: Ratings,
    device: torch.device,
    ranks: distributed.Context | None = None,
) -> Solver:
    """The solver ``config.solver`` names (sharded across ``ranks`` when given), over a freshly seeded module
    built by the registry and started from the mean rating of ``train``."""
    kind = SOLVERS[config.solver]
    build = registry.get(config.model).build
    assert build is not None, "a solver trains a model with a module builder"
    torch.manual_seed(config.seed)
    module: Any = build(kind.module_config(config), data, train).to(device)
    module.init_from_mean(float(train.ratings.mean(dtype=kind.mean_dtype)))
    setup = Setup(config, module, train, valid, device, data)
    return distributed.ShardedSgd(setup, ranks) if ranks is not None else kind(setup)


def last_gain_epoch(history: list[EpochStats], min_improvement: float) -> int:
    """The last epoch of ``history`` that reset the patience counter: it beat the best before it by
    ``min_improvement`` (a share)."""
    best, last = math.inf, 0
    for stats in history:
        if stats.val_rmse < best * (1 - min_improvement):
            last = stats.epoch
        best = min(best, stats.val_rmse)
    return last


def finish_params(
    params: FactorParams,
    train: Ratings,
    config: TrainConfig,
    fitted: WatchFactors | None = None,
    owned: bool = False,
) -> FactorParams:
    """Add what scoring needs beyond the weights: which rows were trained (untrained rows are zeroed, so they
    score as the fallback), the popularity prior, the "likely to watch" component fitted on ``train``, and the
    population prior that new users are folded in from. ``fitted`` is that component when it was fitted elsewhere.
    With ``owned`` (the caller lets go of ``params``) the untrained rows are zeroed in ``params``' own tables
    instead of in copies."""
    user_known = train.user_counts() > 0
    item_known = params.item_known if params.item_known.size else train.item_counts() > 0
    factors = fitted if fitted is not None else fit_configured(train, config, params.global_mean)
    finished = replace(
        params,
        user_bias=_trained_rows(params.user_bias, user_known, owned),
        item_bias=_trained_rows(params.item_bias, item_known, owned),
        user_factors=_trained_rows(params.user_factors, user_known, owned),
        item_factors=_trained_rows(params.item_factors, item_known, owned),
        user_known=user_known,
        item_known=item_known,
        item_prior=popularity_prior(train),
        fold_in_reg=config.fold_in_reg,
        watch_user=factors.user if factors else params.watch_user,
        watch_item=factors.item if factors else params.watch_item,
        watch_reg=config.watch_reg,
        watch_unobserved=config.watch_unobserved,
        watch_dislike=config.watch_dislike,
        watch_margin=config.watch_margin,
    )
    prior_mean, prior_precision = population_prior(finished, weights=train.user_counts())
    return replace(finished, fold_in_mean=prior_mean, fold_in_precision=prior_precision)


def _trained_rows(values: np.ndarray, known: np.ndarray, owned: bool) -> np.ndarray:
    """``values`` (float32) with the rows whose ``known`` is False set to zero: in place when ``owned``."""
    if owned and values.dtype == np.float32 and values.flags.writeable:
        values[~known] = 0.0
        return values
    if values.ndim == 1:
        return np.where(known, values, 0.0).astype(np.float32, copy=False)
    return (values * known[:, None]).astype(np.float32, copy=False)


def with_watch_refit(
    model: FactorModel, train: Ratings, config: TrainConfig, refitted: WatchFactors | None = None
) -> FactorModel:
    """``model`` whose "likely to watch" component is fitted again on all of ``train``: the validation ratings
    have chosen the ranking weights, and the component gains from them as much as from any other ratings. It
    starts from the movie vectors fitted on the fit part: a few sweeps reach the objective of a fit from scratch
    (``watch.REFIT_ITERATIONS``). ``refitted`` is that refit when it was made elsewhere."""
    start = model.params.watch_item if model.params.has_watch else None
    factors = refitted
    if factors is None and start is not None:
        factors = fit_configured(train, config, model.params.global_mean, start)
    if factors is None:
        return model
    return FactorModel(replace(model.params, watch_user=factors.user, watch_item=factors.item), model.name)


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
