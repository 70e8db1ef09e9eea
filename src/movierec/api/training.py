"""``fit``: train a model the way `movierec train` does and write its run folder; ``sweep``: one run per value."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec.api._settings import check_names
from movierec.api.data import Data, load_data
from movierec.api.runs import Comparison, Run, load_run
from movierec.config import TrainConfig
from movierec.models import registry
from movierec.reports.sweep import run_sweep
from movierec.reports.sweep_values import swept_solver
from movierec.train.session import train_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAIN_SETTINGS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "distributed"))


def fit(
    data: Data | str = "ml-latest-small",
    model: str = registry.DEFAULT_MODEL,
    *,
    out: str | Path | None = None,
    progress: bool = False,
    **settings: Any,
) -> Run:
    """Train ``model`` on ``data``'s training side, score it on the test side beside the baselines, and write a
    run folder (``out``, default ``runs/MODEL-TIME``). Returns the ``Run``; ``load(run)`` gives its recommender.

    ``settings`` are the fields of ``movierec.config.TrainConfig`` (the flags of `movierec train`: ``epochs``,
    ``dim``, ``lr``, ``reg``, ``solver``, ...) on top of the model's shipped defaults. An unknown one is a
    ``MovieRecError`` naming it and the valid ones. ``solver`` defaults to ``"auto"``: gibbs on data of up to
    ``registry.GIBBS_UP_TO`` ratings, als on more, for the models that have them (loop for the others).
    """
    data = data if isinstance(data, Data) else load_data(data)
    config = _config(model, settings, "fit", data)
    run_dir = Path(out) if out is not None else _new_run_dir(config.model)
    train_run(config, data.options, run_dir, loaded=(data.dataset, data.split), progress=progress)
    return load_run(run_dir)


@dataclass(frozen=True)
class Sweep:
    """One run per value of one setting, on one split: `movierec sweep` as a result."""

    param: str
    runs: tuple[Run, ...]
    best: Run | None
    failures: dict[str, str]
    report: Path

    @property
    def best_value(self) -> Any:
        """The value whose run had the lowest validation RMSE (the test set chooses nothing)."""
        return None if self.best is None else self.best.setting(self.param.replace("-", "_"))

    @property
    def comparison(self) -> Comparison:
        return Comparison(self.runs)

    def to_frame(self) -> pd.DataFrame:
        return self.comparison.to_frame()

    def to_dict(self) -> dict[str, Any]:
        return {"param": self.param, "best_value": self.best_value, "failures": self.failures,
                "report": str(self.report), **self.comparison.to_dict()}  # fmt: skip

    def plot(self) -> Figure:
        """Validation and test RMSE against the swept values."""
        return self.comparison.plot_setting(self.param)


def sweep(
    data: Data | str,
    param: str,
    values: Sequence[float],
    *,
    model: str = registry.DEFAULT_MODEL,
    out: str | Path | None = None,
    progress: bool = False,
    **settings: Any,
) -> Sweep:
    """Train one run per value of ``param`` (a ``fit`` setting such as ``"lr"``, or ``"train_share"``), the other
    settings as ``fit`` takes them, and write the comparison report (``report.html``) into ``out``."""
    data = data if isinstance(data, Data) else load_data(data)
    solver = swept_solver(param, settings.get("solver"))
    config = _config(model, {**settings, "solver": solver} if solver else settings, "sweep", data)
    folder = Path(out) if out is not None else _new_run_dir(f"sweep-{param}")
    result = run_sweep(param, list(values), config, data.options, folder, progress=progress)
    runs = tuple(Run.of(summary) for summary in result.runs)
    best = None if result.best is None else runs[result.runs.index(result.best)]
    return Sweep(param, runs, best, dict(result.failures), result.report)


def _config(model: str, settings: dict[str, Any], function: str, data: Data) -> TrainConfig:
    """The shipped defaults of ``model`` with ``settings`` on top; ``solver="auto"`` (the default) picks by the
    size of ``data`` (``registry.auto_solver``)."""
    check_names(settings, TRAIN_SETTINGS, function)
    return registry.check(registry.config_for_data(model, lambda: len(data.dataset.ratings), **settings))


def _new_run_dir(name: str) -> Path:
    """``runs/NAME-TIME``, with a counter when two runs start in the same second."""
    stem = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, number = stem, 1
    while path.exists():
        number += 1
        path = stem.with_name(f"{stem.name}-{number}")
    return path
