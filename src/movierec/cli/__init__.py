"""The `movierec` command line: a thin map from command names to the package's functions.

Errors a user can fix print one sentence and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer
from rich.console import Console

from movierec import __version__
from movierec.cli import data, interview, recommend, reports, serve, train, tune
from movierec.errors import MovieRecError

app = typer.Typer(
    name="movierec",
    help="A movie recommender built on PyTorch, for MovieLens-style star ratings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        print(f"movierec {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options of the movierec command itself."""


app.add_typer(data.app, name="data")
for _commands in (train, recommend, interview, reports, tune, serve):
    _commands.register(app)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)
USAGE_ERRORS = (click.ClickException, typer.TyperException)
"""Typer 0.29 and later raise the errors of the click copy they ship, whose base is ``TyperException``."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 success, 2 bad input, 1 unexpected failure)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="movierec", standalone_mode=False)
    except MovieRecError as error:
        if debug:
            raise
        _stderr.print(f"[bold red]error:[/] {error}")
        return 2
    except USAGE_ERRORS as error:  # a bad flag or value: click's own message, exit code 2
        show = getattr(error, "show", None)
        if show is not None:
            show()
        return int(getattr(error, "exit_code", 2))
    except (click.exceptions.Abort, typer.Abort):
        _stderr.print("aborted")
        return 130
    except Exception as error:
        if debug:
            raise
        if isinstance(error, OSError) and error.filename is not None:
            # a path the user gave (or one under it) that cannot be written or read: a file where a folder is
            # needed, no permission, a full disk; the user can fix that, so one sentence and exit 2
            _stderr.print(f"[bold red]error:[/] The path {error.filename} cannot be used: {error.strerror}.")
            return 2
        _stderr.print(f"[bold red]internal error:[/] {type(error).__name__}: {error} (rerun with --debug)")
        return 1
    return result if isinstance(result, int) else 0


def entry_point() -> None:
    sys.exit(main())
