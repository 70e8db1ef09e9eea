"""Settings dataclasses whose fields declare their valid values beside them.

A field is declared ``name: int = valid(64, whole(1, 4096))`` and the class's ``__post_init__`` calls
``check_fields(self)``: every field's type first (a settings file can hold any JSON), then every declared rule.
A bad value is one sentence naming the flag that sets it and what would be valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from movierec.errors import MovieRecError

Rule = Callable[[str, Any], None]
"""Raises ``MovieRecError`` when the value is not valid; told the value's flag (``--dim``) to name it."""

_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def valid(default: Any, rule: Rule) -> Any:
    """A dataclass field with ``default`` whose values ``rule`` checks."""
    return dataclasses.field(default=default, metadata={"rule": rule})


def whole(low: int, high: int) -> Rule:
    """An integer from ``low`` to ``high``."""

    def check(flag: str, value: int) -> None:
        if not low <= value <= high:
            raise MovieRecError(f"{flag} {value} is out of range; use an integer from {low} to {high}.")

    return check


def one_of(choices: tuple[str, ...]) -> Rule:
    """One of ``choices``."""

    def check(flag: str, value: str) -> None:
        if value not in choices:
            raise MovieRecError(f"{flag} {value!r} is not valid; choose one of: {', '.join(choices)}.")

    return check


def within(test: Callable[[float], bool], what: str) -> Rule:
    """A number ``test`` accepts (NaN never should); ``what`` says which, e.g. "a value in (0, 1)"."""

    def check(flag: str, value: float) -> None:
        if not test(value):
            raise MovieRecError(f"{flag} {value} is out of range; use {what}.")

    return check


def non_negative(flag: str, value: float) -> None:
    """A number >= 0."""
    if value < 0:
        raise MovieRecError(f"{flag} {value} is negative; use a value >= 0.")


def flag_of(name: str) -> str:
    """The command-line flag of a settings field: ``batch_size`` is ``--batch-size``."""
    return "--" + name.replace("_", "-")


def check_fields(settings: Any) -> None:
    """Check every field of the dataclass instance ``settings``: all the types, then the declared rules."""
    fields = dataclasses.fields(settings)
    for field in fields:
        _typed(flag_of(field.name), getattr(settings, field.name), str(field.type))
    for field in fields:
        rule = field.metadata.get("rule")
        if rule is not None:
            rule(flag_of(field.name), getattr(settings, field.name))


def _typed(flag: str, value: Any, kind: str) -> None:
    valid = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }.get(kind, True)
    if not valid:
        raise MovieRecError(f"{flag} {value!r} is not {_KINDS[kind]}; give {_KINDS[kind]}.")
