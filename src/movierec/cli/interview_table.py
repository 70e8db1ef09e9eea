"""`movierec evaluate RUN_DIR --protocol interview [--questions 5,10,15] [--json]`: the strategies side by side."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from movierec.cli.console import make_console
from movierec.evaluate.coldstart import parse_given
from movierec.recommend.interview_protocol import DEFAULT_QUESTIONS, InterviewOptions, InterviewReport

COLUMNS = (("answered", "answered"), ("RMSE", "rmse"), ("NDCG@10", "ndcg@10"), ("recall@10", "recall@10"))
"""(header, row key) of the table's number columns."""


def interview_protocol(run: Any, as_json: bool, questions: str | None = None) -> None:
    """Hold users out of the run's data, retrain its config on the rest, interview the held-out users with
    every strategy, and print the scores (or one JSON list: one object per strategy and number of questions)."""
    from movierec.data.source import DataOptions, load_split
    from movierec.recommend.interview_protocol import interview_protocol as run_interviews

    counts = parse_given(questions, "--questions") if questions else DEFAULT_QUESTIONS
    options = InterviewOptions(questions=counts)
    dataset, _ = load_split(DataOptions(**run.data))
    report = run_interviews(run.config, dataset, options, progress=not as_json)
    if as_json:
        print(json.dumps(report.rows))
        return
    print_interview(report, run.config.model, make_console())


def print_interview(report: InterviewReport, model: str, console: Console) -> None:
    """One row per number of questions and strategy; the best value of each column at that number in bold."""
    table = Table(title="Interview: held-out users answer k questions (their rating, or not seen); the rest is scored")
    table.add_column("k", justify="right")
    table.add_column("strategy")
    for header, _ in COLUMNS:
        table.add_column(header, justify="right")
    for k in report.options.questions:
        rows = [row for row in report.rows if row["questions"] == k]
        best = {key: _best(rows, key) for _, key in COLUMNS[1:]}
        for row in rows:
            cells = [f"{row['answered']:.1f}"]
            for _, key in COLUMNS[1:]:
                text = "—" if row[key] is None else f"{row[key]:.4f}"
                cells.append(f"[bold]{text}[/]" if row[key] is not None and row[key] == best[key] else text)
            table.add_row(str(k), row["strategy"], *cells)
        table.add_section()
    console.print(table)
    options = report.options
    console.print(
        f"{report.n_users:,} held-out users ({options.holdout_fraction:.0%} of all, seed {options.seed}); {model} "
        f"retrained on the other users; questions among {report.n_askable:,} movies. Every movie any strategy "
        "asked a user about is left out of that user's scored ratings and lists."
    )


def _best(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    if not values:
        return None
    return min(values) if key == "rmse" else max(values)
