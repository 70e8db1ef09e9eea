"""`movierec eda`: the exploratory report of a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from movierec.cli.options import ParseFlags, parse_options

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
    from movierec.data.loader import load_dataset
    from movierec.reports.eda import build_eda_report, default_out_dir

    dataset = load_dataset(source, parse_options(duplicates, skip_invalid, scale))
    report = build_eda_report(dataset, out if out is not None else default_out_dir(dataset.name))
    console.print(f"EDA report of {dataset.name}: {report}")
    console.print(f"figures (PNG) are beside it in {report.parent}")


def register(app: typer.Typer) -> None:
    """Add the report commands to the top-level CLI."""
    app.command("eda")(eda)
