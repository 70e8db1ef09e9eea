"""`movierec tune`: search a model's hyperparameters with Optuna on the training ratings of a split."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from movierec.checks import check_fields, valid, within
from movierec.cli.flags import FlagGroup, field_flags, with_flags
from movierec.cli.options import DATA, PARSE, TrainFlags, config_flags, parse_report_printer
from movierec.data.movielens import ParseOptions
from movierec.data.source import DataOptions, load_split
from movierec.models import registry

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

console = Console(highlight=False, soft_wrap=True)

SEARCHED = {param.name for model in registry.tunable_names() for param in registry.get(model).search_space}
"""Settings some model's search space covers: tune draws them, so they have no flag here."""
TUNE_SETTINGS = config_flags(
    registry.tunable_names(), omit={"seed", "distributed", *SEARCHED}, model_default=registry.DEFAULT_MODEL, auto=False
)
"""The settings every trial shares (--seed here seeds the sampler; --config can fix the training seed)."""


@dataclass(frozen=True)
class StudyRun:
    """How one `movierec tune` adds trials to its study, and where it writes what it found."""

    trials: int = 30
    """Trials to add to the study in this run."""
    timeout: float | None = None
    """Start no new trial after this many seconds."""
    storage: str | None = None
    """Optuna storage, e.g. sqlite:///PATH/tune.db (default: OUT/tune.db)."""
    study: str | None = None
    """Study name in the storage (default: the model's name)."""
    out: Path | None = None
    """Folder for the best config, plots and summary (default runs/tune-STUDY)."""
    seed: int | None = None
    """Seed of the sampler (default: fresh randomness; give each process its own)."""
    threads: int = valid(1, within(lambda threads: threads >= 1, "at least 1"))
    """CPU threads per trial; run one process per core on one study."""

    def __post_init__(self) -> None:
        check_fields(self)


STUDY_RUN = FlagGroup(field_flags(StudyRun), build=StudyRun)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)


@with_flags(data=DATA, settings=TUNE_SETTINGS, run=STUDY_RUN, parse=PARSE)
def tune_command(
    *,
    data: DataOptions,
    settings: TrainFlags,
    run: StudyRun,
    as_json: Annotated[bool, typer.Option("--json", help="Print only one JSON summary line.")] = False,
    parse: ParseOptions,
) -> None:
    """Tune a model's hyperparameters (TPE sampler, pruning on validation RMSE); rerun to continue the study."""
    import logging

    import optuna
    import torch

    from movierec.train.search_space import search_space
    from movierec.train.tune import counts, open_study, storage_url, tune, write_outputs

    started = time.perf_counter()
    base = settings.config()
    search_space(base.model)
    study_name = run.study or base.model
    out_dir = run.out or Path("runs") / f"tune-{study_name}"
    url = storage_url(run.storage or out_dir / "tune.db")
    dataset, parts = load_split(data, parse, on_report=parse_report_printer(parse))
    train = parts.train  # the test ratings go no further; fit carves its validation split out of these
    dataset = dataclasses.replace(dataset, ratings=train)
    optuna.logging.set_verbosity(logging.WARNING)
    torch.set_num_threads(run.threads)
    the_study = open_study(url, study_name, base, data.to_dict(), sampler_seed=run.seed)
    before = counts(the_study)["trials_total"]
    if not as_json:
        console.print(
            f"Study {study_name!r} in {url}: {before} trials so far; adding {run.trials} "
            f"on {len(train):,} training ratings."
        )
    ran = tune(the_study, dataset, train, base, run.trials, run.timeout, on_trial=None if as_json else _print_trial)
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
    from optuna.trial import TrialState

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
