"""Evaluation protocols beyond the standard held-out split, for `movierec evaluate --protocol NAME`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from movierec.errors import MovieRecError

ProtocolFn = Callable[..., None]
"""``fn(run, as_json, **options)``; options are the protocol's own CLI flags (e.g. ``given`` for cold-start)."""
PROTOCOLS: dict[str, ProtocolFn] = {}


def run_protocol(name: str, run: Any, as_json: bool, **options: Any) -> None:
    """Run the protocol ``name`` on a loaded run folder."""
    if name not in PROTOCOLS:
        valid = ", ".join(["standard", *PROTOCOLS])
        raise MovieRecError(f"--protocol {name!r} is not known; valid protocols are: {valid}.")
    PROTOCOLS[name](run, as_json, **options)


def _cold_items(run: Any, as_json: bool, **options: Any) -> None:
    from movierec.train.cold_items import cold_items_protocol  # trains a model: torch only when asked for

    cold_items_protocol(run, as_json, **options)


PROTOCOLS["cold-items"] = _cold_items


def _taste(run: Any, as_json: bool, **options: Any) -> None:
    from movierec.cli.taste import taste_protocol  # fits EASE and folds users in: loaded only when asked for

    taste_protocol(run, as_json, **options)


PROTOCOLS["taste"] = _taste
