"""Evaluation protocols beyond the standard held-out split, for `movierec evaluate --protocol NAME`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from movierec.errors import MovieRecError

ProtocolFn = Callable[..., None]
"""``fn(run, as_json, **options)``; options are the protocol's own CLI flags (e.g. ``given`` for cold-start)."""
PROTOCOLS: dict[str, ProtocolFn] = {}


def run_protocol(name: str, run: Any, as_json: bool, **options: Any) -> None:
    """Run the protocol ``name`` on a loaded run folder; an option it does not take is refused."""
    if name not in PROTOCOLS:
        valid = ", ".join(["standard", *PROTOCOLS])
        raise MovieRecError(f"--protocol {name!r} is not known; valid protocols are: {valid}.")
    protocol = PROTOCOLS[name]
    taken = inspect.signature(protocol).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in taken.values()):
        for option in options:
            if option not in taken:
                users = [other for other, fn in PROTOCOLS.items() if option in inspect.signature(fn).parameters]
                flag = f"--{option.replace('_', '-')}"
                raise MovieRecError(f"{flag} does not apply to --protocol {name}; it is for: {', '.join(users)}.")
    protocol(run, as_json, **options)


def _cold_items(run: Any, as_json: bool, **options: Any) -> None:
    from movierec.train.cold_items import cold_items_protocol  # trains a model: torch only when asked for

    cold_items_protocol(run, as_json, **options)


PROTOCOLS["cold-items"] = _cold_items


def _taste(run: Any, as_json: bool, **options: Any) -> None:
    from movierec.cli.taste import taste_protocol  # fits EASE and folds users in: loaded only when asked for

    taste_protocol(run, as_json, **options)


PROTOCOLS["taste"] = _taste


def _interview(run: Any, as_json: bool, questions: str | None = None) -> None:
    from movierec.cli.interview_table import interview_protocol  # trains a model: torch only when asked for

    interview_protocol(run, as_json, questions=questions)


PROTOCOLS["interview"] = _interview
