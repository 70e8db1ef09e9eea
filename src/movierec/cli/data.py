"""`movierec data list|fetch|info|shard`, and `read_source`: the dataset a command names, read with the parse flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from movierec.cli.console import make_console
from movierec.cli.flags import FlagGroup, field_flags, with_flags
from movierec.cli.options import PARSE, ParseFlags, parse_options, parse_report_printer
from movierec.data.info import describe
from movierec.data.loader import load_dataset_with_report
from movierec.data.movielens import ParseOptions
from movierec.data.ratings import Dataset
from movierec.data.source import DataOptions

app = typer.Typer(help="List, download and describe MovieLens releases.", no_args_is_help=True)
console = make_console()
Source = Annotated[str, typer.Argument(help="A release name (e.g. ml-latest-small) or a path.")]
SPLIT = FlagGroup(
    field_flags(DataOptions, ("split", "test_fraction", "split_seed", "train_share")), build=lambda **given: given
)
"""The split flags of `movierec train` (--split, --test-fraction, --split-seed, --train-share), as a dict."""


def read_source(source: str, duplicates: str, skip_invalid: bool, scale: str | None) -> Dataset:
    """The dataset a command names, read with the parse flags; what parsing skipped or merged goes to stderr."""
    options = parse_options(duplicates, skip_invalid, scale)
    dataset, parse_report = load_dataset_with_report(source, options)
    parse_report_printer(options)(source, parse_report)
    return dataset


@app.command("list")
def list_releases() -> None:
    """Show the known releases and whether each is embedded, downloaded or downloadable."""
    from movierec.data.datasets import RELEASES
    from movierec.data.download import release_status

    table = Table(title="MovieLens releases")
    for column in ("name", "ratings", "format", "status", "url"):
        table.add_column(column)
    for name, release in RELEASES.items():
        table.add_row(name, f"{release.n_ratings:,}", release.format, release_status(name), release.url)
    console.print(table)


@app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="Release name, e.g. ml-25m (see `movierec data list`).")],
    mirror: Annotated[str | None, typer.Option(help="Base URL to download from instead of GroupLens.")] = None,
) -> None:
    """Download a release, check its md5, and extract it (resumes an interrupted download)."""
    from movierec.data.download import fetch as fetch_release

    path = fetch_release(name, base_url=mirror)
    console.print(f"{name} is ready in {path}")


@app.command("info")
def info(
    source: Source,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Users, rated movies, catalog size, ratings, density, rating scale and histogram, time span."""
    facts = describe(read_source(source, duplicates, skip_invalid, scale))
    if as_json:
        print(json.dumps(facts))
        return
    table = Table(title=f"{facts['name']}", show_header=False)
    table.add_column("fact")
    table.add_column("value", justify="right")
    table.add_row("ratings", f"{facts['n_ratings']:,}")
    table.add_row("users", f"{facts['n_users']:,}")
    table.add_row("rated movies", f"{facts['n_items']:,}")
    table.add_row("movies in catalog", f"{facts['n_movies']:,}")
    table.add_row("density", f"{facts['density']:.4%}")
    table.add_row("rating scale", f"{facts['scale']['low']:g} to {facts['scale']['high']:g}")
    table.add_row("mean rating", f"{facts['mean_rating']:.3f}")
    table.add_row("time span", f"{facts['first_rating']} to {facts['last_rating']}")
    table.add_row("tag applications", f"{facts['n_tags']:,}")
    console.print(table)
    hist = Table(title="rating histogram")
    hist.add_column("stars")
    hist.add_column("ratings", justify="right")
    hist.add_column("")
    peak = max(facts["histogram"].values())
    for stars, count in facts["histogram"].items():
        hist.add_row(stars, f"{count:,}", "█" * max(1, round(30 * count / peak)))
    console.print(hist)


@app.command("shard")
@with_flags(split=SPLIT, parse=PARSE)
def shard(
    source: Source,
    parts: Annotated[int, typer.Option(help="How many parts to cut the training ratings into, by user.")],
    out: Annotated[Path, typer.Option(help="Folder to write the parts, vocabularies and manifest in.")],
    split: dict[str, Any],
    parse: ParseOptions,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as one JSON line.")] = False,
) -> None:
    """Split SOURCE as `movierec train` does and write its training ratings as N Parquet parts by user owner, for
    sharded training (`movierec train --shards DIR`; docs/distributed.md)."""
    from movierec.data.shard import check_out, write_shards
    from movierec.data.source import load_split

    check_out(parts, out)
    options = DataOptions(data=source, **split)
    dataset, halves = load_split(options, parse, on_report=parse_report_printer(parse))
    manifest = write_shards(dataset, halves, parts, out, options.to_dict())
    if as_json:
        print(json.dumps({key: value for key, value in manifest.items() if key != "files"}))
        return
    console.print(
        f"{manifest['n_train']:,} training ratings of {manifest['n_users']:,} users in {parts} parts "
        f"({min(manifest['part_ratings']):,} to {max(manifest['part_ratings']):,} ratings each), "
        f"{manifest['n_test']:,} test ratings: {out}"
    )
