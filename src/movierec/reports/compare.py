"""Compare training runs: learning curves overlaid, a metrics table, and one self-contained HTML page.

Only the small files of each run folder are read (``config.json``, ``metrics.json``, ``history.csv``, after
checking the manifest), so comparing runs trained on ML-25M is as quick as comparing toy runs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from movierec import atomic
from movierec.artifact.run import RunRecord, read_record
from movierec.config import TrainConfig
from movierec.data.source import DataOptions
from movierec.errors import MovieRecError
from movierec.reports.figures import (
    ACCENT_COLOR,
    MAIN_COLOR,
    Section,
    html_page,
    img_tag,
    new_figure,
    report_style,
    save_figure,
)
from movierec.reports.sweep_values import DATA_PARAMS

REPORT_NAME = "report.html"
CURVES_NAME = "learning_curves.png"
SWEEP_NAME = "sweep.png"
METRICS_NAME = "metrics.csv"
KEY_FIELDS = ("model", "dim", "lr", "reg", "weight_decay", "batch_size", "optimizer", "epochs", "patience")
"""Config fields always shown in the metrics table; any other field that differs between runs is added."""


@dataclass(frozen=True)
class RunSummary:
    """What a comparison needs from one run folder."""

    path: Path
    label: str
    config: TrainConfig
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    data: dict[str, Any]

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def metric(self, key: str) -> float:
        """A test metric as a float (NaN when the run has none)."""
        value = self.metrics.get(key)
        return float(value) if isinstance(value, int | float) else math.nan

    def settings(self) -> dict[str, Any]:
        """The training settings, then the data settings a sweep can vary (at their defaults in runs written
        before they existed)."""
        data = {name: self.data.get(name, DataOptions.__dataclass_fields__[name].default) for name in DATA_PARAMS}
        return {**self.config.to_dict(), **data}

    def setting(self, name: str) -> Any:
        """One of ``settings()``."""
        return self.settings()[name]


def read_summary(run_dir: str | Path, label: str | None = None) -> RunSummary:
    """Read a run folder's settings, test metrics and per-epoch history (``label`` defaults to its name)."""
    record = read_record(run_dir)
    fields_of_record = {field.name: getattr(record, field.name) for field in fields(RunRecord)}
    return RunSummary(label=label if label is not None else record.path.name, **fields_of_record)


def read_summaries(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[RunSummary]:
    """Summaries of several runs; folder names that repeat are told apart by their parent folder."""
    if not run_dirs:
        raise MovieRecError("No run folders were given; name at least one folder written by `movierec train`.")
    paths = [Path(p) for p in run_dirs]
    if labels is None:
        names = [p.name for p in paths]
        labels = [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]
    elif len(labels) != len(paths):
        raise ValueError("give one label per run folder")
    return [read_summary(p, label) for p, label in zip(paths, labels, strict=True)]


def differing_fields(runs: Sequence[RunSummary]) -> list[str]:
    """Settings whose values are not the same in every run, in ``RunSummary.settings`` order."""
    if len(runs) < 2:
        return []
    dicts = [run.settings() for run in runs]
    return [key for key in dicts[0] if any(d[key] != dicts[0][key] for d in dicts[1:])]


def best_run(runs: Sequence[RunSummary]) -> RunSummary | None:
    """The run with the lowest validation RMSE (the test set never chooses anything); None if none has one."""
    scored = [r for r in runs if math.isfinite(r.metric("best_val_rmse"))]
    return min(scored, key=lambda r: r.metric("best_val_rmse")) if scored else None


# ------------------------------------------------------------------------------------------------- figures


def run_colors(n: int) -> list[Any]:
    """One distinct colour per run (seaborn's "deep" palette, "husl" beyond ten runs)."""
    return list(sns.color_palette("deep" if n <= 10 else "husl", n))


def plot_learning_curves(runs: Sequence[RunSummary], title: str = "Learning curves") -> Figure:
    """Train and validation RMSE by epoch: one run on one panel, several runs overlaid on two panels."""
    trained = [r for r in runs if r.history]
    if not trained:
        fig, ax = new_figure()
        ax.text(0.5, 0.5, "no run has a learning curve\n(closed-form baselines train no epochs)", ha="center",
                va="center", transform=ax.transAxes, fontsize=13)  # fmt: skip
        ax.set_axis_off()
        return fig
    if len(trained) == 1:
        run = trained[0]
        fig, ax = new_figure()
        _curve(ax, run, "train_rmse", MAIN_COLOR, "train RMSE")
        _curve(ax, run, "val_rmse", ACCENT_COLOR, "validation RMSE")
        _mark_best(ax, run, "0.3", best_label=True)
        ax.set(title=f"{title}: {run.label}", xlabel="epoch", ylabel="RMSE (stars)")
        ax.legend(loc="best")
        return fig
    fig, (left, right) = new_figure(1, 2, figsize=(11.0, 5.0), sharey=True)
    for run, color in zip(trained, run_colors(len(trained)), strict=True):
        _curve(left, run, "train_rmse", color, run.label)
        _curve(right, run, "val_rmse", color, run.label)
        _mark_best(right, run, color, best_label=False)
    left.set(title="Training RMSE", xlabel="epoch", ylabel="RMSE (stars)")
    right.set(title="Validation RMSE (★ best epoch, kept)", xlabel="epoch")
    right.yaxis.set_tick_params(labelleft=True)
    left.legend(loc="upper right", fontsize=9)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig


def _curve(ax: Any, run: RunSummary, key: str, color: Any, label: str) -> None:
    epochs = [row["epoch"] for row in run.history]
    ax.plot(epochs, [row[key] for row in run.history], "o-", color=color, markersize=3.5, linewidth=1.6, label=label)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _mark_best(ax: Any, run: RunSummary, color: Any, best_label: bool) -> None:
    best = min(run.history, key=lambda row: row["val_rmse"])
    ax.plot([best["epoch"]], [best["val_rmse"]], "*", color=color, markersize=14, markeredgecolor="white", zorder=5)
    if best_label:
        ax.axvline(best["epoch"], color=color, linestyle="--", linewidth=1,
                   label=f"best epoch ({int(best['epoch'])}, kept by early stopping)")  # fmt: skip


def plot_sweep(runs: Sequence[RunSummary], field: str) -> Figure:
    """Best validation RMSE and test RMSE against the swept setting ``field`` (one of ``RunSummary.settings``);
    log x when the values span a decade."""
    if field not in (*TrainConfig.__dataclass_fields__, *DATA_PARAMS):
        raise ValueError(f"{field!r} is not a setting of a run")
    param = field.replace("_", "-")
    fig, ax = new_figure()
    pairs = sorted((float(r.setting(field)), r) for r in runs)
    xs = np.array([x for x, _ in pairs])
    val = np.array([r.metric("best_val_rmse") for _, r in pairs])
    test = np.array([r.metric("rmse") for _, r in pairs])
    ax.plot(xs, val, "o-", color=ACCENT_COLOR, linewidth=2, label="validation RMSE (best epoch)")
    ax.plot(xs, test, "s--", color=MAIN_COLOR, linewidth=1.6, label="test RMSE")
    best = best_run([r for _, r in pairs])
    if best is not None:
        x_best = float(best.setting(field))
        ax.axvline(x_best, color="0.4", linestyle=":", label=f"lowest validation RMSE: {param} = {x_best:g}")
    if xs.size and xs.min() > 0 and xs.max() / xs.min() >= 10:
        ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.legend(loc="best")
    ax.set(title=f"Sweep of {param}", xlabel=f"{param}" + (" (log scale)" if ax.get_xscale() == "log" else ""),
           ylabel="RMSE (stars)")  # fmt: skip
    return fig


# ------------------------------------------------------------------------------------------------- the table


def metrics_frame(runs: Sequence[RunSummary]) -> pd.DataFrame:
    """One row per run: label, key config fields (and any other differing setting), then the metrics."""
    extra = [f for f in differing_fields(runs) if f not in KEY_FIELDS]
    rows = []
    for run in runs:
        settings = run.settings()
        row: dict[str, Any] = {"run": run.label}
        row.update({key: settings[key] for key in (*KEY_FIELDS, *extra)})
        row.update(
            {
                "epochs_run": run.epochs_run,
                "best_epoch": run.metrics.get("best_epoch"),
                "best_val_rmse": run.metric("best_val_rmse"),
                "rmse": run.metric("rmse"),
                "mae": run.metric("mae"),
                "ndcg@10": run.metric("ndcg@10"),
                "recall@10": run.metric("recall@10"),
                "train_seconds": run.metric("train_seconds"),
                "path": str(run.path),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_rows(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The baselines scored beside the runs, when every run used the same data and split (else none)."""
    if not runs or any(r.data != runs[0].data for r in runs[1:]):
        return []
    baselines = runs[0].metrics.get("baselines", {})
    return [dict(row) for row in baselines.values() if isinstance(row, dict)]


_COLUMNS = (
    ("run", "run", "{}"),
    ("model", "model", "{}"),
    ("dim", "dim", "{}"),
    ("lr", "lr", "{:g}"),
    ("reg", "reg", "{:g}"),
    ("weight_decay", "weight decay", "{:g}"),
    ("batch_size", "batch", "{}"),
    ("optimizer", "optimizer", "{}"),
    ("epochs_run", "epochs run", "{}"),
    ("best_epoch", "best epoch", "{}"),
    ("best_val_rmse", "validation RMSE", "{:.4f}"),
    ("rmse", "test RMSE", "{:.4f}"),
    ("mae", "test MAE", "{:.4f}"),
    ("ndcg@10", "NDCG@10", "{:.4f}"),
    ("recall@10", "recall@10", "{:.4f}"),
    ("train_seconds", "train s", "{:.1f}"),
)


def format_cell(value: Any, pattern: str = "{}") -> str:
    """A table cell: "—" for missing or NaN values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return pattern.format(value)


def table_rows(frame: pd.DataFrame, extra: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the metrics table."""
    columns = [*_COLUMNS[:8], *((name, name.replace("_", " "), "{}") for name in extra), *_COLUMNS[8:]]
    header = [title for _, title, _ in columns]
    rows = [
        [format_cell(record.get(key), pattern) for key, _, pattern in columns] for record in frame.to_dict("records")
    ]
    return header, rows


def html_grid(header: Sequence[str], rows: Sequence[Sequence[str]], highlight: int | None = None) -> str:
    """A table of already formatted values (escaped here); row ``highlight`` is bold."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        style = " style='font-weight:bold'" if i == highlight else ""
        cells = "".join(f"<th scope='row'>{html.escape(c)}</th>" if j == 0 else f"<td>{html.escape(c)}</td>"
                        for j, c in enumerate(row))  # fmt: skip
        body.append(f"<tr{style}>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f"<div style='overflow-x:auto'>{table}</div>"


# -------------------------------------------------------------------------------------------------- report


def build_comparison_report(
    runs: Sequence[RunSummary],
    out_dir: str | Path,
    *,
    sweep_field: str | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``learning_curves.png`` (and ``sweep.png`` when ``sweep_field`` names the swept setting),
    ``metrics.csv`` and a self-contained ``report.html`` in ``out_dir``; return the report's path."""
    if not runs:
        raise MovieRecError("There are no runs to compare; name at least one run folder.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = metrics_frame(runs)
    extra = [f for f in differing_fields(runs) if f not in KEY_FIELDS]
    best = best_run(runs)
    param = sweep_field.replace("_", "-") if sweep_field else None
    title = title or (f"Sweep of {param}" if param else f"Comparison of {len(runs)} run{'s' * (len(runs) > 1)}")
    sections: list[Section] = []
    with report_style():
        png = save_figure(plot_learning_curves(runs), out / CURVES_NAME)
        sections.append(
            Section(
                "Learning curves",
                img_tag(png, "learning curves"),
                "RMSE on the training ratings (measured during each epoch) and on the validation ratings carved "
                "out of them, by epoch. The star marks each run's best validation epoch, whose weights were kept.",
            )
        )
        if sweep_field is not None:
            png = save_figure(plot_sweep(runs, sweep_field), out / SWEEP_NAME)
            sections.append(
                Section(
                    f"Effect of {param}",
                    img_tag(png, f"sweep of {param}"),
                    "Validation RMSE chooses the value; test RMSE is shown beside it, never used to choose.",
                )
            )
    header, rows = table_rows(frame, extra)
    highlight = next((i for i, r in enumerate(runs) if r is best), None)
    caption = "Test metrics on each run's held-out ratings (ranking: relevant = rating >= 4)."
    if best is not None and len(runs) > 1:
        caption += f" Bold: lowest validation RMSE ({best.label})."
    sections.append(Section("Metrics", html_grid(header, rows, highlight), caption))
    baselines = baseline_rows(runs)
    if baselines:
        base_header = ["baseline", "test RMSE", "test MAE", "NDCG@10", "recall@10"]
        base_rows = [
            [str(b.get("model"))] + [format_cell(b.get(k), "{:.4f}") for k in ("rmse", "mae", "ndcg@10", "recall@10")]
            for b in baselines
        ]
        sections.append(
            Section("Baselines on the same split", html_grid(base_header, base_rows), "Closed-form references.")
        )
    if notes:
        sections.append(Section("Notes", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"))
    paths = "".join(f"<li><code>{html.escape(r.label)}</code>: {html.escape(str(r.path))}</li>" for r in runs)
    sections.append(Section("Run folders", f"<ul>{paths}</ul>"))
    with atomic.atomic_open(out / METRICS_NAME, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)
    report = out / REPORT_NAME
    atomic.write_text(report, html_page(title, sections, subtitle="movierec run comparison"))
    return report
