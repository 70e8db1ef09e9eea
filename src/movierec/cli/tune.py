"""`movierec tune`: search a model's hyperparameters with Optuna on the training ratings of a split."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import optuna
import torch
import typer
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from movierec.cli.options import ParseFlags, parse_options, parse_report_printer
from movierec.cli.train import DataFlags
from movierec.config import TrainConfig
from movierec.data.source import DataOptions, load_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.models.registry import DEFAULT_MODEL
from movierec.train.search_space import search_space
from movierec.train.tune import counts, open_study, storage_url, tune, write_outputs

console = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)


def tune_command(
    data: DataFlags.data = "ml-latest-small",
    split: DataFlags.split = "random",
    test_fraction: DataFlags.test_fraction = 0.1,
    split_seed: DataFlags.split_seed = 0,
    train_file: DataFlags.train_file = None,
    test_file: DataFlags.test_file = None,
    movies_file: DataFlags.movies_file = None,
    model: Annotated[str, typer.Option(help="Model to tune: biased-mf, sigmoid-mf or hybrid.")] = DEFAULT_MODEL,
    trials: Annotated[int, typer.Option(help="Trials to add to the study in this run.")] = 30,
    timeout: Annotated[float | None, typer.Option(help="Start no new trial after this many seconds.")] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage, e.g. sqlite:///PATH/tune.db (default: OUT/tune.db).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name in the storage (default: the model's name).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the best config, plots and summary (default runs/tune-STUDY).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="JSON config of the settings not searched (patience, seed, ...).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the sampler (default: fresh randomness; give each process its own).")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads per trial; run one process per core on one study.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON summary line.")] = False,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Tune a model's hyperparameters (TPE sampler, pruning on validation RMSE); rerun to continue the study."""
    started = time.perf_counter()
    base = (TrainConfig.from_file(config) if config else registry.config_for(model)).replace(model=model)
    search_space(base.model)
    if threads < 1:
        raise MovieRecError(f"--threads {threads} is out of range; use at least 1.")
    study_name = study or base.model
    out_dir = out or Path("runs") / f"tune-{study_name}"
    url = storage_url(storage or out_dir / "tune.db")
    data_options = DataOptions(data, split, test_fraction, split_seed, train_file, test_file, movies_file)
    parse = parse_options(duplicates, skip_invalid, scale)
    dataset, parts = load_split(data_options, parse, on_report=parse_report_printer(parse))
    train = parts.train  # the test ratings go no further; fit carves its validation split out of these
    dataset = dataclasses.replace(dataset, ratings=train)
    optuna.logging.set_verbosity(logging.WARNING)
    torch.set_num_threads(threads)
    the_study = open_study(url, study_name, base, data_options.to_dict(), sampler_seed=seed)
    before = counts(the_study)["trials_total"]
    if not as_json:
        console.print(
            f"Study {study_name!r} in {url}: {before} trials so far; adding {trials} "
            f"on {len(train):,} training ratings."
        )
    ran = tune(the_study, dataset, train, base, trials, timeout, on_trial=None if as_json else _print_trial)
    extra = {
        "trials_this_run": ran,
        "seconds": round(time.perf_counter() - started, 1),
        "storage": url,
    }
    summary = write_outputs(the_study, out_dir, extra)
    if not as_json:
        console.print(
            f"Best validation RMSE {summary['best_value']:.4f} (trial {summary['best_trial']}); "
            f"{summary['trials_completed']} completed, {summary['trials_pruned']} pruned in the study. "
            f"Config: {summary['config']}  Plots: {', '.join(summary['plots'])}"
        )
    print(json.dumps(summary, default=_plain))


def _print_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    params = "  ".join(f"{key}={_short(value)}" for key, value in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        best = study.best_value
        epochs = trial.user_attrs.get("epochs_run")
        console.print(f"trial {trial.number}: val RMSE {trial.value:.4f} (best {best:.4f}), {epochs} epochs  {params}")
    elif trial.state == TrialState.PRUNED:
        last = max(trial.intermediate_values, default=0)
        value = trial.intermediate_values.get(last, float("nan"))
        console.print(f"trial {trial.number}: pruned at epoch {last} (val RMSE {value:.4f})  {params}")
    else:
        console.print(f"trial {trial.number}: {trial.state.name.lower()}  {params}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plain(value: Any) -> Any:
    return float(value) if hasattr(value, "__float__") else str(value)
