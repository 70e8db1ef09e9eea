"""Sweeps: train one run per value of one setting on the same split, then write the comparison report.

```
OUT/
  runs/lr-0.001/ ...   one run folder per value (as `movierec train --out` writes it)
  report.html          learning curves, the sweep figure and the metrics table (images embedded)
  learning_curves.png, sweep.png, metrics.csv
  sweep.json           the parameter, its values, the value with the lowest validation RMSE, failed values
```
Every value is validated before the first run starts. A run that diverges is recorded as failed and the
sweep goes on with the other values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movierec import atomic
from movierec.config import TrainConfig
from movierec.data.movielens import ParseOptions
from movierec.data.source import DataOptions, ReportSink, load_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.reports.compare import RunSummary, best_run, build_comparison_report, read_summary
from movierec.train.session import train_run

PARAMS = {"lr": "lr", "dim": "dim", "reg": "reg", "batch-size": "batch_size", "weight-decay": "weight_decay"}
"""Sweepable parameters: CLI spelling to ``TrainConfig`` field."""
INTEGER_PARAMS = ("dim", "batch-size")
MAX_VALUES = 50

Value = int | float


@dataclass
class SweepResult:
    """Where a sweep wrote its report, the runs that finished, and the values that failed (with why)."""

    param: str
    report: Path
    runs: list[RunSummary]
    failures: dict[str, str] = field(default_factory=dict)
    best: RunSummary | None = None

    @property
    def best_value(self) -> Value | None:
        return None if self.best is None else getattr(self.best.config, PARAMS[self.param])


def parse_param(param: str) -> str:
    """The ``TrainConfig`` field a ``--param`` name sweeps, or a clear error naming the valid ones."""
    if param not in PARAMS:
        raise MovieRecError(f"--param {param!r} cannot be swept; choose one of: {', '.join(PARAMS)}.")
    return PARAMS[param]


def parse_values(param: str, text: str) -> list[Value]:
    """``"0.001,0.01"`` as numbers: integers for dim and batch-size, floats otherwise; distinct, 1 to 50."""
    parse_param(param)
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
        if param in INTEGER_PARAMS:
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


def sweep_configs(base: TrainConfig, param: str, values: Sequence[Value]) -> list[TrainConfig]:
    """One validated config per value (so a bad value fails before any training starts)."""
    name = parse_param(param)
    if base.model not in registry.trained_names():
        raise MovieRecError(
            f"--model {base.model!r} is fitted in closed form, so {param} changes nothing; "
            f"sweep a trained model: {', '.join(registry.trained_names())}."
        )
    return [base.replace(**{name: value}) for value in values]


def run_folder_name(param: str, value: Value) -> str:
    return f"{param}-{value:g}"


RunCallback = Callable[[str, Value, dict[str, Any] | None, str | None], None]
"""Called after each run: (param, value, test metrics or None, error message or None)."""


def run_sweep(
    param: str,
    values: Sequence[Value],
    base: TrainConfig,
    data_options: DataOptions,
    out_dir: str | Path,
    *,
    parse: ParseOptions | None = None,
    progress: bool = True,
    on_run: RunCallback | None = None,
    on_report: ReportSink | None = None,
) -> SweepResult:
    """Train one run per value of ``param`` (other settings from ``base``) on one split, and report them."""
    configs = sweep_configs(base, param, values)
    out = Path(out_dir)
    loaded = load_split(data_options, parse, on_report=on_report)
    runs: list[RunSummary] = []
    failures: dict[str, str] = {}
    for value, config in zip(values, configs, strict=True):
        run_dir = out / "runs" / run_folder_name(param, value)
        label = f"{param}={value:g}"
        try:
            metrics = train_run(config, data_options, run_dir, loaded=loaded, progress=progress)
        except MovieRecError as error:
            failures[f"{value:g}"] = str(error)
            if on_run is not None:
                on_run(param, value, None, str(error))
            continue
        runs.append(read_summary(run_dir, label))
        if on_run is not None:
            on_run(param, value, metrics, None)
    if not runs:
        reasons = "; ".join(f"{param}={v}: {why}" for v, why in failures.items())
        raise MovieRecError(f"Every run of the sweep failed ({reasons}).")
    notes = [f"{param}={value} failed: {why}" for value, why in failures.items()]
    report = build_comparison_report(
        runs, out, sweep_field=PARAMS[param], title=f"Sweep of {param} ({base.model})", notes=notes
    )
    best = best_run(runs)
    result = SweepResult(param, report, runs, failures, best)
    atomic.write_json(
        out / "sweep.json",
        {
            "param": param,
            "values": list(values),
            "best_value": result.best_value,
            "failed": failures,
            "runs": {f"{getattr(r.config, PARAMS[param]):g}": str(r.path) for r in runs},
            "base": base.to_dict(),
            "data": data_options.to_dict(),
        },
    )
    return result
