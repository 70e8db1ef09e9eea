"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from movierec.data.movielens import DUPLICATE_POLICIES, ParseOptions, ParseReport
from movierec.data.ratings import RatingScale
from movierec.errors import MovieRecError


class ParseFlags:
    """Typer annotations for how ratings files are read."""

    duplicates = Annotated[str, typer.Option(help="What to do with a user rating a movie twice: error, last or mean.")]
    skip_invalid = Annotated[
        bool, typer.Option("--skip-invalid", help="Skip bad rows and report how many, instead of failing.")
    ]
    scale = Annotated[
        str | None,
        typer.Option(help="Declared rating scale LOW,HIGH (default 0.5,5); ratings outside it are bad."),
    ]


def parse_options(duplicates: str, skip_invalid: bool, scale: str | None) -> ParseOptions:
    if duplicates not in DUPLICATE_POLICIES:
        raise MovieRecError(f"--duplicates {duplicates!r} is not a policy; valid policies are: error, last, mean.")
    return ParseOptions(duplicates=duplicates, skip_invalid=skip_invalid, scale=parse_scale(scale))  # type: ignore[arg-type]


def parse_report_printer(options: ParseOptions) -> Callable[[str, ParseReport], None]:
    """Prints, on stderr, how many rows parsing skipped and why, when --skip-invalid or a merge policy acted."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(source: str, report: ParseReport) -> None:
        if options.skip_invalid or report.duplicates_merged:
            console.print(f"{source}: {report.summary()}")

    return show


def parse_scale(text: str | None) -> RatingScale:
    if text is None:
        return RatingScale(0.5, 5.0, 0.5)
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise MovieRecError(f"--scale {text!r} is not LOW,HIGH; write it like 0.5,5 or 1,5.") from None
    if not low < high:
        raise MovieRecError(f"--scale {text!r} needs LOW below HIGH, like 0.5,5.")
    return RatingScale(low, high, 0.5 if low % 1 or high % 1 else 1.0)
