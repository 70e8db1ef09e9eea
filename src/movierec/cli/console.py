"""The rich console every command prints through: full width in a terminal, 120 columns when piped."""

from __future__ import annotations

import sys

from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 120, soft_wrap=stderr)
