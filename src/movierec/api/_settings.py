"""Keyword settings given to the public functions, checked against the dataclass they fill."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from movierec.errors import MovieRecError


def check_names(given: Mapping[str, Any], valid: Collection[str], function: str) -> None:
    """One sentence naming the settings ``function`` does not take, and the ones it does."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise MovieRecError(f"{function}() has no setting {names}; valid settings are: {', '.join(sorted(valid))}.")
