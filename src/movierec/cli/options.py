"""Options shared by several commands, declared once: how ratings files are read (``PARSE``), where the ratings
come from (``DATA``, the fields of ``DataOptions``) and the training settings (``config_flags``, the fields of
``TrainConfig``)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from movierec.cli.flags import FlagGroup, field_flags, field_help, flag
from movierec.config import SOLVERS, TrainConfig
from movierec.data.movielens import DUPLICATE_POLICIES, ParseOptions, ParseReport
from movierec.data.ratings import RatingScale
from movierec.data.source import DataOptions, count_ratings
from movierec.errors import MovieRecError
from movierec.models import registry


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


PARSE = FlagGroup(
    tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=getattr(ParseFlags, name))
        for name, default in (("duplicates", "error"), ("skip_invalid", False), ("scale", None))
    ),
    build=parse_options,
)
"""--duplicates, --skip-invalid and --scale, as the ``ParseOptions`` they make."""

DATA = FlagGroup(field_flags(DataOptions), build=DataOptions)
"""Every ``DataOptions`` field as a flag with the field's default, as the ``DataOptions`` they make."""

CONFIG_FLAG_NAMES = {
    "use_genres": "--genres/--no-genres",
    "use_tags": "--tags/--no-tags",
    "use_implicit": "--implicit/--no-implicit",
    "distributed": "--distributed",
}
"""``TrainConfig`` fields whose flags are not spelled ``--field-name``."""


@dataclass(frozen=True)
class TrainFlags:
    """``--config`` and the training settings given as flags (those not given are left out)."""

    file: Path | None
    given: dict[str, Any]

    def config(self, data: DataOptions | None = None) -> TrainConfig:
        """The config file's settings (else the shipped defaults of the model and solver given) with the flags
        given on top, checked against the model registry before any data is read.

        ``--solver auto`` (the default without a config file) picks by the size of ``data``
        (``registry.auto_solver``, counting the lines of its ratings files); without ``data`` it means loop.
        """
        base = TrainConfig.from_file(self.file) if self.file else None
        given = dict(self.given)
        if base is None or "solver" in given:  # a config file's solver stands unless --solver is given
            settings = {**(dataclasses.asdict(base) if base else {}), **given}
            given["solver"] = registry.chosen_solver(settings, None if data is None else lambda: count_ratings(data))
        if base is None:
            return registry.check(registry.config_for(given.pop("model", None), **given))
        return registry.check(base.replace(**given))


def config_flags(
    models: Collection[str], *, omit: Collection[str] = (), model_default: str | None = None, auto: bool = True
) -> FlagGroup:
    """A flag per ``TrainConfig`` field but ``omit``, then --config, as the ``TrainFlags`` they make. --model
    offers ``models`` and defaults to ``model_default`` (None: the config file's model, else the default one).
    ``auto``: --solver defaults to auto (``TrainFlags.config`` with the data), else to loop."""
    names = tuple(field.name for field in dataclasses.fields(TrainConfig) if field.name not in omit)
    default = "" if model_default else f" Default: {registry.DEFAULT_MODEL}, or --config's."
    helps = {
        "model": f"{field_help(TrainConfig)['model']} One of: {registry.help_text(models)}.{default}",
        "solver": f"{field_help(TrainConfig)['solver']} "
        + "; ".join(f"{solver} trains {', '.join(registry.trained_by(solver))}" for solver in SOLVERS)
        + (
            f". Default auto: gibbs on data of up to {registry.GIBBS_UP_TO:,} ratings, als on more, for the models "
            "that have them; loop for the others."
            if auto
            else ". Default loop."
        ),
    }
    flags = field_flags(TrainConfig, names, unset=True, spelled=CONFIG_FLAG_NAMES, helps=helps)
    if model_default is not None:
        flags = tuple(f.replace(default=model_default) if f.name == "model" else f for f in flags)
    config_file = flag(
        "config", Path | None, None, "JSON config file (e.g. written by `movierec tune`); flags given override it."
    )

    def given(config: Path | None, **values: Any) -> TrainFlags:
        return TrainFlags(config, {name: value for name, value in values.items() if value is not None})

    return FlagGroup((*flags, config_file), build=given)
