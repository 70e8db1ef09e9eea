"""A run folder as the library shows it (``Run``, ``load_run``), and several runs side by side (``compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec.reports.compare import RunSummary, metrics_frame, plot_learning_curves, plot_sweep, read_summary
from movierec.reports.figures import report_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Run(RunSummary):
    """A trained run folder: ``path``, ``label`` (the name comparisons and figures show), ``config`` (the training
    settings), ``metrics`` (test metrics beside the ``baselines`` scored on the same split), ``history`` (one dict
    per epoch) and ``data`` (the data settings). ``settings()`` gives the training and data settings in one dict,
    ``metric(name)`` one test metric as a float."""

    @classmethod
    def of(cls, summary: RunSummary) -> Run:
        """The run a comparison's summary describes."""
        return cls(**{f.name: getattr(summary, f.name) for f in fields(RunSummary)})

    @property
    def model(self) -> str:
        return self.config.model

    def with_label(self, label: str) -> Run:
        """The same run, shown as ``label`` in comparisons and figures."""
        return replace(self, label=label)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "label": self.label, "model": self.model, "settings": self.settings(),
                "metrics": self.metrics, "history": self.history}  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        """The test metrics, one row for the model and one per baseline scored on the same split."""
        model = {key: value for key, value in self.metrics.items() if key != "baselines"}
        rows = [{**model, "model": self.model}, *self.metrics.get("baselines", {}).values()]
        return pd.DataFrame(rows).set_index("model")

    def history_frame(self) -> pd.DataFrame:
        """The learning curve: one row per epoch."""
        return pd.DataFrame(self.history)

    def __repr__(self) -> str:
        return f"Run(path={str(self.path)!r}, model={self.model!r}, rmse={self.metric('rmse'):.4f})"


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Open a run folder written by ``fit`` or `movierec train` (its settings, metrics and history; the model
    itself is loaded by ``load``). The run keeps the folder's absolute path, so it outlives a change of the
    working folder."""
    return Run.of(read_summary(Path(path).absolute(), label))


@dataclass(frozen=True)
class Comparison:
    """Several runs side by side: the table and the figures of `movierec report`."""

    runs: tuple[Run, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per run: its label, the settings that matter or differ, and its metrics."""
        return metrics_frame(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [run.to_dict() for run in self.runs]}

    def plot_learning_curves(self, title: str = "Learning curves") -> Figure:
        """Training and validation RMSE per epoch of every run, the best epochs marked."""
        with report_style():
            return plot_learning_curves(self.runs, title)

    def plot_setting(self, name: str) -> Figure:
        """Best validation RMSE and test RMSE against the setting ``name`` (e.g. ``"lr"``)."""
        with report_style():
            return plot_sweep(self.runs, name.replace("-", "_"))


def compare(runs: Sequence[Run | str | Path]) -> Comparison:
    """Runs (``Run`` objects or run folders) side by side."""
    return Comparison(tuple(run if isinstance(run, Run) else load_run(run) for run in runs))
