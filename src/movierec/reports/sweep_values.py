"""What a sweep may vary, and the values it reads: any numeric training setting, or the share of the training
data used (the learning curve against data volume). Light to import, so the CLI can list them in its help."""

from __future__ import annotations

import math
from typing import get_type_hints

from movierec.checks import flag_of
from movierec.config import TrainConfig
from movierec.data.source import DataOptions
from movierec.errors import MovieRecError

MAX_VALUES = 50
DATA_PARAMS = ("train_share",)
"""Sweepable ``DataOptions`` fields: each value reloads the split's training side, the test side stays."""

_TYPES = {**get_type_hints(TrainConfig), **{name: get_type_hints(DataOptions)[name] for name in DATA_PARAMS}}
PARAMS = {flag_of(name)[2:]: name for name, kind in _TYPES.items() if kind in (int, float)}
"""Sweepable settings: their flag without the dashes (``batch-size``) to the field (``batch_size``)."""

Value = int | float
LOOP_SETTINGS = ("lr", "weight_decay", "batch_size", "patience")
"""Sweepable settings of the gradient loop (``--solver loop``) that the sampler ignores (ALS reads patience too)."""


def swept_solver(name: str, solver: str | None) -> str | None:
    """The solver a sweep of the field ``name`` trains with: the loop for one of its settings where no solver was
    chosen (``--solver auto`` samples small data, which ignores them: every run would be the same), else ``solver``."""
    return "loop" if name in LOOP_SETTINGS and solver in (None, "auto") else solver


def parse_param(param: str) -> str:
    """The field a ``--param`` name sweeps, or a clear error naming the valid ones."""
    if param not in PARAMS:
        raise MovieRecError(f"--param {param!r} cannot be swept; choose one of: {', '.join(PARAMS)}.")
    return PARAMS[param]


def parse_values(param: str, text: str) -> list[Value]:
    """``"0.001,0.01"`` as numbers: whole numbers for integer settings, floats otherwise; distinct, 1 to 50."""
    whole = _TYPES[parse_param(param)] is int
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise MovieRecError(f"--values {text!r} is not a comma-separated list of numbers; write it like 0.001,0.01.")
    values: list[Value] = []
    for part in parts:
        try:
            number = float(part)
        except ValueError:
            raise MovieRecError(
                f"--values has {part!r}, which is not a number; write numbers like 0.001,0.01."
            ) from None
        if not math.isfinite(number):
            raise MovieRecError(f"--values has {part!r}; every value must be a finite number.")
        if whole:
            if not number.is_integer():
                raise MovieRecError(f"--values has {part!r}, but --param {param} takes whole numbers like 16,32,64.")
            values.append(int(number))
        else:
            values.append(number)
    if len(set(values)) != len(values):
        raise MovieRecError(f"--values {text!r} repeats a value; give each value once.")
    if len(values) > MAX_VALUES:
        raise MovieRecError(f"--values has {len(values)} values; a sweep takes at most {MAX_VALUES}.")
    return values
