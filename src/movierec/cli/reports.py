"""`movierec eda`, `movierec report` and `movierec sweep`: the data and the learning, as figures."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from movierec.cli.data import Source, read_source
from movierec.cli.flags import with_flags
from movierec.cli.options import DATA, PARSE, ParseFlags, TrainFlags, config_flags, parse_report_printer
from movierec.data.movielens import ParseOptions
from movierec.data.source import DataOptions
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.reports.sweep_values import DATA_PARAMS, PARAMS, parse_param, parse_values, swept_solver

console = Console(highlight=False)


def eda(
    source: Source,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for report.html and the PNGs (default ./eda-<dataset name>)."),
    ] = None,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Write an HTML report (images embedded) and one PNG per figure describing the dataset."""
    from movierec.reports.eda import build_eda_report, default_out_dir

    dataset = read_source(source, duplicates, skip_invalid, scale)
    report = build_eda_report(dataset, out if out is not None else default_out_dir(dataset.name))
    console.print(f"EDA report of {dataset.name}: {report}")
    console.print(f"figures (PNG) are beside it in {report.parent}")


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders written by `movierec train` or a sweep.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for report.html, the PNGs and metrics.csv (default ./runs-report)."),
    ] = None,
) -> None:
    """Compare runs: learning curves overlaid, a metrics table, and a self-contained HTML page."""
    from movierec.reports.compare import build_comparison_report, read_summaries

    runs = read_summaries(run_dirs)
    path = build_comparison_report(runs, out if out is not None else Path("runs-report"))
    _print_runs(runs)
    console.print(f"Comparison report: {path}")


@with_flags(data=DATA, settings=config_flags(registry.trained_names(), omit=("distributed",)), parse=PARSE)
def sweep(
    *,
    param: Annotated[str, typer.Option(help=f"Setting to sweep: {', '.join(PARAMS)}.")],
    values: Annotated[str, typer.Option(help="Comma-separated values, e.g. 0.001,0.003,0.01,0.03,0.1.")],
    data: DataOptions,
    settings: TrainFlags,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the runs and the report (default sweeps/PARAM-TIME).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    parse: ParseOptions,
) -> None:
    """Train one run per value of one setting on the same split, then write the comparison report."""
    from movierec.reports.sweep import run_sweep

    name = parse_param(param)
    if name in DATA_PARAMS:
        given = getattr(data, name) if getattr(data, name) != getattr(DataOptions(), name) else None
    else:
        given = settings.given.get(name)
    if given is not None:
        raise MovieRecError(f"--{param} {given} was given while sweeping {param}; drop it or --param {param}.")
    swept = parse_values(param, values)
    solver = swept_solver(name, settings.given.get("solver"))
    flags = dataclasses.replace(settings, given={**settings.given, "solver": solver}) if solver else settings
    base = flags.config(data)
    out_dir = out or Path("sweeps") / f"{param}-{time.strftime('%Y%m%d-%H%M%S')}"

    def progress(name: str, value: float, metrics: dict[str, Any] | None, error: str | None) -> None:
        if error is not None:
            console.print(f"[red]{name}={value:g} failed:[/] {error}")
        elif metrics is not None:
            console.print(
                f"{name}={value:g}: validation RMSE {metrics['best_val_rmse']:.4f} (epoch {metrics['best_epoch']}), "
                f"test RMSE {metrics['rmse']:.4f}"
            )

    result = run_sweep(
        param, swept, base, data, out_dir, parse=parse, progress=not quiet, on_run=progress,
        on_report=parse_report_printer(parse),
    )  # fmt: skip
    _print_runs(result.runs)
    if result.best_value is not None:
        console.print(f"Lowest validation RMSE: {param} = {result.best_value:g}")
    console.print(f"Sweep report: {result.report}")


def _print_runs(runs: list[Any]) -> None:
    from movierec.reports.compare import best_run, format_cell

    best = best_run(runs)
    table = Table(title="Runs (test metrics; bold = lowest validation RMSE)")
    for column in ("run", "model", "epochs", "best epoch", "val RMSE", "test RMSE", "MAE", "NDCG@10", "recall@10"):
        table.add_column(column, justify="left" if column in ("run", "model") else "right")
    for run in runs:
        table.add_row(
            run.label, run.config.model, str(run.epochs_run), format_cell(run.metrics.get("best_epoch")),
            *(format_cell(run.metric(k), "{:.4f}") for k in ("best_val_rmse", "rmse", "mae", "ndcg@10", "recall@10")),
            style="bold" if run is best and len(runs) > 1 else None,
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the report commands to the top-level CLI."""
    app.command("eda")(eda)
    app.command("report")(report)
    app.command("sweep")(sweep)
