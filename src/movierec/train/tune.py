"""Hyperparameter search with Optuna: TPE sampling, pruning on per-epoch validation RMSE, SQLite studies.

A study lives in its storage (``sqlite:///PATH``), so running the same command again adds trials to it, and
several processes can add trials to one study at once. Each trial draws a configuration from the model's
search space (``search_space.py``), fits it on the training ratings only (``fit`` carves its own validation
split out of them) and is scored by its best validation RMSE; the test ratings are never seen.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from movierec import atomic
from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.errors import MovieRecError
from movierec.train.driver import EpochStats, fit
from movierec.train.search_space import base_params, search_space, searched, suggest_config

PRUNER_STARTUP_TRIALS = 5
"""Completed trials before pruning starts: the median needs a few full curves to mean anything."""
PRUNER_WARMUP_EPOCHS = 3
"""Epochs every trial runs before it can be pruned; the first epochs say little about the last."""
SAMPLER_STARTUP_TRIALS = 8
"""Trials drawn at random (after the base configuration) before TPE models the results."""
SQLITE_TIMEOUT_S = 60
"""How long a process waits for another's write lock on the SQLite file before giving up."""
HEARTBEAT_S = 30
"""Running trials beat this often; one silent for four beats (its process killed) is marked failed."""

CONFIG_NAME = "best_config.json"
HISTORY_NAME = "history.png"
IMPORTANCES_NAME = "importances.png"
SUMMARY_NAME = "summary.json"

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def storage_url(storage: str | Path) -> str:
    """An Optuna storage URL; a plain path means an SQLite file there. Makes the SQLite file's folder."""
    text = str(storage)
    if "://" not in text:
        text = f"sqlite:///{Path(text).resolve()}"
    if text.startswith("sqlite:"):
        if not text.startswith("sqlite:///") or text == "sqlite:///" or ":memory:" in text:
            raise MovieRecError(f"--storage {text!r} is not an SQLite file; write it as sqlite:///PATH/tune.db.")
        Path(text.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return text


def open_study(
    storage: str,
    study_name: str,
    base: TrainConfig,
    data: dict[str, Any],
    sampler_seed: int | None = None,
) -> optuna.Study:
    """Create the study in ``storage``, or load it when it exists and tunes the same model on the same data.

    A new study's first trial is the base configuration itself (moved into the ranges), so tuning starts from
    the shipped defaults and can only report something at least as good on validation. The sampler is seeded
    with ``sampler_seed`` plus the trials already stored, so a resumed study does not replay the random
    start-up configurations of the first run.
    """
    search_space(base.model)  # a clear error for an untunable model before anything is created
    with _schema_lock(storage):  # one process at a time creates tables, the study and its first trial
        try:
            study = optuna.create_study(
                storage=_rdb_storage(storage),
                study_name=study_name,
                direction="minimize",
                pruner=optuna.pruners.MedianPruner(
                    n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
                ),
                load_if_exists=True,
            )
        except optuna.exceptions.StorageInternalError as exc:
            raise MovieRecError(f"The study storage {storage} cannot be opened ({exc}).") from None
        _claim(study, {"model": base.model, "fixed": fixed_settings(base), "data": data})
        if not study.trials:
            study.enqueue_trial(base_params(base), user_attrs={"source": "base config"}, skip_if_exists=True)
    seed = None if sampler_seed is None else sampler_seed + len(study.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(
            n_startup_trials=SAMPLER_STARTUP_TRIALS, seed=seed, multivariate=True, constant_liar=True
        )
    return study


def fixed_settings(base: TrainConfig) -> dict[str, Any]:
    """The settings a study holds fixed: the base configuration without the searched fields."""
    names = {param.name for param in searched(base)}
    return {key: value for key, value in base.to_dict().items() if key not in names}


def make_objective(base: TrainConfig, dataset: Dataset, train: Ratings) -> Callable[[optuna.Trial], float]:
    """A trial: draw a configuration, fit it on ``train``, report each epoch's validation RMSE, maybe prune."""

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, base)
        trial.set_user_attr("config", config.to_dict())

        def on_epoch(stats: EpochStats) -> None:
            if not (math.isfinite(stats.train_loss) and math.isfinite(stats.val_rmse)):
                trial.set_user_attr("diverged_at_epoch", stats.epoch)
                raise optuna.TrialPruned(f"diverged at epoch {stats.epoch}")
            trial.report(stats.val_rmse, stats.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {stats.epoch} (val RMSE {stats.val_rmse:.4f})")

        result = fit(config, dataset, train, run_dir=None, progress=False, on_epoch=on_epoch)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", len(result.history))
        return result.best_val_rmse

    return objective


def tune(
    study: optuna.Study,
    dataset: Dataset,
    train: Ratings,
    base: TrainConfig,
    trials: int,
    timeout: float | None = None,
    on_trial: TrialCallback | None = None,
) -> int:
    """Add ``trials`` trials to ``study`` (fewer when ``timeout`` seconds pass first); return how many ran here."""
    if trials < 1:
        raise MovieRecError(f"--trials {trials} is out of range; use at least 1.")
    if timeout is not None and timeout <= 0:
        raise MovieRecError(f"--timeout {timeout} is out of range; use a number of seconds above 0.")
    finished: list[int] = []

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial.number)
        if on_trial is not None:
            on_trial(study, trial)

    study.optimize(make_objective(base, dataset, train), n_trials=trials, timeout=timeout, callbacks=[after_trial])
    return len(finished)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials in the storage by state (those queued but not started are not counted)."""
    states = [trial.state for trial in study.get_trials(deepcopy=False) if trial.state != TrialState.WAITING]
    return {
        "trials_completed": states.count(TrialState.COMPLETE),
        "trials_pruned": states.count(TrialState.PRUNED),
        "trials_failed": states.count(TrialState.FAIL),
        "trials_running": states.count(TrialState.RUNNING),
        "trials_total": len(states),
    }


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The completed trial with the lowest validation RMSE; an error when none has completed."""
    if not any(trial.state == TrialState.COMPLETE for trial in study.get_trials(deepcopy=False)):
        tally = counts(study)
        raise MovieRecError(
            f"The study {study.study_name!r} has no completed trial yet ({tally['trials_pruned']} pruned, "
            f"{tally['trials_failed']} failed); run more trials."
        )
    return study.best_trial


def best_config(study: optuna.Study) -> TrainConfig:
    """The full configuration of the best trial, as `movierec train --config` reads it."""
    return TrainConfig.from_dict(best_trial(study).user_attrs["config"], source=f"study {study.study_name}")


def summarize(study: optuna.Study) -> dict[str, Any]:
    """Best value and params, the trial counts, and what the study tunes."""
    best = best_trial(study)
    return {
        "study": study.study_name,
        "model": study.user_attrs.get("model"),
        "best_value": best.value,
        "best_params": best.params,
        "best_trial": best.number,
        "best_epoch": best.user_attrs.get("best_epoch"),
        **counts(study),
    }


def write_outputs(study: optuna.Study, out: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the best config (for `movierec train --config`), the two plots and the summary under ``out``.

    Returns the summary (``summarize`` plus ``extra`` and the paths written).
    """
    from movierec.train.tune_plots import plot_history, plot_importances

    best = best_trial(study)
    config_path = out / CONFIG_NAME
    tuning = {"study": study.study_name, "trial": best.number, "best_val_rmse": best.value}
    atomic.write_json(
        config_path, {"train": best_config(study).to_dict(), "tuning": {**tuning, "data": study.user_attrs.get("data")}}
    )
    plots = [plot_history(study, out / HISTORY_NAME), plot_importances(study, out / IMPORTANCES_NAME)]
    summary = {**summarize(study), **(extra or {}), "config": str(config_path), "plots": [str(p) for p in plots]}
    atomic.write_json(out / SUMMARY_NAME, summary)
    return summary


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    engine: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=4 * HEARTBEAT_S
            )
    except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as exc:
        raise MovieRecError(f"--storage {url!r} cannot be opened ({exc}); use sqlite:///PATH/tune.db.") from None


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Serialise opening a SQLite study: two processes creating its tables at once would collide."""
    if not url.startswith("sqlite:///"):
        yield
        return
    path = Path(url[len("sqlite:///") :] + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _claim(study: optuna.Study, attrs: dict[str, Any]) -> None:
    """Record what the study tunes; refuse to mix trials of another model, data or fixed settings into it."""
    for key, value in attrs.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise MovieRecError(
                f"The study {study.study_name!r} was started with {key} {stored}, not {value}; "
                "rerun with the same settings or name another --study."
            )
