"""`movierec eda`, `movierec report` and `movierec sweep`: the data and the learning, as figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from movierec.cli.options import ParseFlags, parse_options, parse_report_printer
from movierec.cli.train import DataFlags
from movierec.errors import MovieRecError

console = Console(highlight=False)


def eda(
    source: Annotated[str, typer.Argument(help="A release name (e.g. ml-latest-small) or a path.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for report.html and the PNGs (default ./eda-<dataset name>)."),
    ] = None,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Write an HTML report (images embedded) and one PNG per figure describing the dataset."""
    from movierec.data.loader import load_dataset_with_report
    from movierec.reports.eda import build_eda_report, default_out_dir

    options = parse_options(duplicates, skip_invalid, scale)
    dataset, parsed = load_dataset_with_report(source, options)
    parse_report_printer(options)(source, parsed)
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


def sweep(
    param: Annotated[str, typer.Option(help="Setting to sweep: lr, dim, reg, batch-size or weight-decay.")],
    values: Annotated[str, typer.Option(help="Comma-separated values, e.g. 0.001,0.003,0.01,0.03,0.1.")],
    data: DataFlags.data = "ml-latest-small",
    split: DataFlags.split = "random",
    test_fraction: DataFlags.test_fraction = 0.1,
    split_seed: DataFlags.split_seed = 0,
    train_file: DataFlags.train_file = None,
    test_file: DataFlags.test_file = None,
    movies_file: DataFlags.movies_file = None,
    model: Annotated[str | None, typer.Option(help="sigmoid-mf, biased-mf or hybrid.")] = None,
    dim: Annotated[int | None, typer.Option(help="Embedding size.")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Most epochs per run (early stopping usually ends sooner).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    reg: Annotated[float | None, typer.Option(help="L2 penalty on the rows each batch touches.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Optimiser-wide weight decay.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Ratings per mini-batch.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, sgd, sparse-adam or adagrad.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Learning-rate schedule: none, cosine or step.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for initialisation, shuffling and validation split.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON config file with the other settings.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the runs and the report (default sweeps/PARAM-TIME).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Train one run per value of one setting on the same split, then write the comparison report."""
    from movierec.config import TrainConfig
    from movierec.data.source import DataOptions
    from movierec.models import registry
    from movierec.reports.sweep import PARAMS, parse_param, parse_values, run_sweep

    field = parse_param(param)
    options: dict[str, Any] = {
        "model": model, "dim": dim, "epochs": epochs, "lr": lr, "reg": reg, "weight_decay": weight_decay,
        "batch_size": batch_size, "optimizer": optimizer, "schedule": schedule, "patience": patience, "seed": seed,
        "device": device,
    }  # fmt: skip
    if options[field] is not None:
        raise MovieRecError(f"--{param} {options[field]} was given while sweeping {param}; drop it or --param {param}.")
    swept = parse_values(param, values)
    base = (TrainConfig.from_file(config) if config else registry.config_for(model)).replace(**options)
    data_options = DataOptions(data, split, test_fraction, split_seed, train_file, test_file, movies_file)
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
        param, swept, base, data_options, out_dir, parse=(parse := parse_options(duplicates, skip_invalid, scale)),
        progress=not quiet, on_run=progress, on_report=parse_report_printer(parse),
    )  # fmt: skip
    _print_runs(result.runs)
    if result.best is not None:
        console.print(f"Lowest validation RMSE: {param} = {getattr(result.best.config, PARAMS[param]):g}")
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
