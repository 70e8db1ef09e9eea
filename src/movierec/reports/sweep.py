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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from movierec import atomic
from movierec.config import TrainConfig
from movierec.data.movielens import ParseOptions
from movierec.data.source import DataOptions, ReportSink, keep_share, load_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.reports.compare import RunSummary, best_run, build_comparison_report, read_summary
from movierec.reports.sweep_values import DATA_PARAMS, Value, parse_param
from movierec.train.session import train_run


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
        return None if self.best is None else self.best.setting(parse_param(self.param))


def sweep_settings(
    base: TrainConfig, data: DataOptions, param: str, values: Sequence[Value]
) -> list[tuple[TrainConfig, DataOptions]]:
    """The training and data settings of each value, validated (so a bad value fails before any training)."""
    name = parse_param(param)
    if base.model not in registry.trained_names():
        raise MovieRecError(
            f"--model {base.model!r} is fitted in closed form, so {param} changes nothing; "
            f"sweep a trained model: {', '.join(registry.trained_names())}."
        )
    if name in DATA_PARAMS:
        changes: list[dict[str, Any]] = [{name: value} for value in values]
        return [(base, replace(data, **change)) for change in changes]
    return [(base.replace(**{name: value}), data) for value in values]


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
    """Train one run per value of ``param`` (other settings from ``base`` and ``data_options``) on one split,
    and report them. The split is read once; a sweep of ``train_share`` cuts its training side per value."""
    settings = sweep_settings(base, data_options, param, values)
    out = Path(out_dir)
    dataset, whole = load_split(replace(data_options, train_share=1.0), parse, on_report=on_report)
    runs: list[RunSummary] = []
    failures: dict[str, str] = {}
    for value, (config, data) in zip(values, settings, strict=True):
        run_dir = out / "runs" / run_folder_name(param, value)
        label = f"{param}={value:g}"
        try:
            loaded = (dataset, keep_share(whole, data))
            metrics = train_run(config, data, run_dir, loaded=loaded, progress=progress)
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
    name = parse_param(param)
    report = build_comparison_report(runs, out, sweep_field=name, title=f"Sweep of {param} ({base.model})", notes=notes)
    best = best_run(runs)
    result = SweepResult(param, report, runs, failures, best)
    atomic.write_json(
        out / "sweep.json",
        {
            "param": param,
            "values": list(values),
            "best_value": result.best_value,
            "failed": failures,
            "runs": {f"{r.setting(name):g}": str(r.path) for r in runs},
            "base": base.to_dict(),
            "data": data_options.to_dict(),
        },
    )
    return result
