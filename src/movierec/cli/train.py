"""`movierec train` and `movierec evaluate`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from movierec.cli.console import make_console
from movierec.cli.flags import FlagGroup, field_flags, with_flags
from movierec.cli.options import DATA, PARSE, TrainFlags, config_flags, parse_report_printer
from movierec.cli.protocols import run_protocol
from movierec.data.movielens import ParseOptions
from movierec.data.source import DataOptions, load_split
from movierec.data.split import Split
from movierec.errors import MovieRecError
from movierec.models import registry

console = make_console()
JSON_KEYS = ("model", "rmse", "mae", "n_train", "n_test", "n_unknown", "ndcg@10", "recall@10")
TABLE_COLUMNS = (
    ("RMSE", "rmse"),
    ("MAE", "mae"),
    ("NDCG@10", "ndcg@10"),
    ("recall@10", "recall@10"),
    ("precision\n@10", "precision@10"),
    ("coverage\n@10", "coverage@10"),
    ("personal-\nization@10", "personalization@10"),
    ("pop.\nrecall@10", "pop_recall@10"),
    ("miscalib-\nration@10", "miscalibration@10"),
)
"""(header, metrics key) of the comparison table's number columns; two-line headers keep it in 120 columns."""
COLUMN_LEGEND = (
    "coverage: share of the movies in someone's top 10; personalization: 1 - the mean overlap of two users' "
    "lists; pop. recall: popularity-stratified recall (Steck 2011), hits on rarely rated movies count more; "
    "miscalibration: KL divergence between the genre mix of a user's liked movies and that of their list "
    "(Steck 2018), lower is better."
)

OTHER_DATA = FlagGroup(
    field_flags(
        DataOptions,
        ("data", "test_file"),
        unset=True,
        helps={
            "data": "Evaluate on this dataset's split instead of the run's own.",
            "test_file": "CSV of held-out ratings to score.",
        },
    ),
    build=lambda **given: {name: value for name, value in given.items() if value is not None},
)
"""evaluate's --data and --test-file, as the data settings given (to use instead of the run's own)."""


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)


@with_flags(data=DATA, settings=config_flags(registry.names()), parse=PARSE)
def train(
    *,
    data: DataOptions,
    settings: TrainFlags,
    out: Annotated[Path | None, typer.Option(help="Run folder to write (default runs/MODEL-TIME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's last checkpoint.")] = False,
    keep_checkpoint: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoint",
            help="Keep checkpoint.safetensors in the run folder after a successful run (by default it is removed: "
            "it is larger than the model, and only --resume reads it).",
        ),
    ] = False,
    self_contained: Annotated[
        bool,
        typer.Option(
            "--self-contained",
            help="Copy the training ratings into the run folder at any size (by default, more than a million of "
            "them read from the Parquet cache are kept there: the run folder records the cache file and its checksum).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    parse: ParseOptions,
) -> None:
    """Train a model, evaluate it on held-out ratings beside the baselines, and write a run folder."""
    from movierec.train import distributed as ranks
    from movierec.train.session import train_run

    config = settings.config(data)
    run_dir = out or Path("runs") / f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    main = not config.distributed or ranks.setup(config.device).is_main  # only rank 0 of torchrun's processes speaks
    try:
        metrics = train_run(
            config,
            data,
            run_dir,
            parse=parse,
            resume=resume,
            keep_checkpoint=keep_checkpoint,
            self_contained=self_contained,
            progress=not (quiet or as_json),
            on_report=parse_report_printer(parse) if main else None,
        )
    finally:
        ranks.teardown()
    if main:
        report(metrics, as_json, run_dir)


@with_flags(other_data=OTHER_DATA)
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `movierec train`.")],
    other_data: dict[str, Any],
    protocol: Annotated[
        str,
        typer.Option(
            help="standard, cold-start (new users), cold-items (new movies), taste (genre fans and haters) or "
            "interview (ways of choosing a new user's questions)."
        ),
    ] = "standard",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    given: Annotated[str | None, typer.Option(help="cold-start: ratings per held-out user, e.g. 5,10,20.")] = None,
    questions: Annotated[str | None, typer.Option(help="interview: questions per held-out user, e.g. 5,10,15.")] = None,
) -> None:
    """Score a trained run on held-out ratings, beside the baselines on the same split."""
    from movierec.artifact.run import load_run, write_metrics
    from movierec.data.ratings import RatingScale
    from movierec.evaluate.genres import movie_genres
    from movierec.evaluate.report import compare_with_baselines

    run = load_run(run_dir)
    if protocol != "standard":
        flags = {"given": given, "questions": questions}
        run_protocol(protocol, run, as_json, **{name: value for name, value in flags.items() if value is not None})
        return
    parts = _test_split(run, other_data)
    scale = RatingScale(run.model.params.low, run.model.params.high, 0.5)
    genres = movie_genres(run.movies, run.train.n_items)
    metrics = compare_with_baselines(run.model, parts.train, parts.test, scale, genres=genres)
    if not other_data:
        write_metrics(run.path, {**run.metrics, **metrics})
    report(metrics, as_json, run.path)


def _test_split(run: Any, other_data: dict[str, Any]) -> Split:
    """The run's own test split (rebuilt from its data settings, ``other_data`` on top), or the ratings of
    ``other_data["test_file"]`` mapped to its ids."""
    if "test_file" in other_data:
        from movierec.data.loader import DEFAULT_SCALE
        from movierec.data.movielens import ParseOptions, read_ratings_csv
        from movierec.data.ratings import Ratings

        frame, _ = read_ratings_csv(Path(other_data["test_file"]), ParseOptions(scale=DEFAULT_SCALE))
        users = run.user_vocab.index_many(frame["userId"].to_numpy())
        items = run.item_vocab.index_many(frame["movieId"].to_numpy())
        keep = (users >= 0) & (items >= 0)
        test = Ratings(
            users[keep].astype("int32"), items[keep].astype("int32"), frame["rating"].to_numpy()[keep],
            frame["timestamp"].to_numpy()[keep], run.user_vocab, run.item_vocab,
        )  # fmt: skip
        if not keep.all():
            console.print(f"{int((~keep).sum())} test ratings name users or movies the run has never seen.")
        return Split(run.train, test)
    options = DataOptions(**{**run.data, **other_data})
    _, parts = load_split(options)
    if len(parts.train.item_vocab) != len(run.item_vocab) or len(parts.train.user_vocab) != len(run.user_vocab):
        raise MovieRecError(f"The data {options.data!r} does not match the run in {run.path}; it has other ids.")
    return Split(run.train, parts.test)


def report(metrics: dict[str, Any], as_json: bool, run_dir: Path | None) -> None:
    """The comparison table (model beside baselines), or one JSON line."""
    if as_json:
        summary = {key: metrics.get(key) for key in JSON_KEYS}
        summary.update({k: v for k, v in metrics.items() if k not in summary and k != "baselines"})
        summary["baselines"] = metrics.get("baselines", {})
        if run_dir is not None:
            summary["run_dir"] = str(run_dir)
        print(json.dumps(summary, default=float))
        return
    table = Table(title="Held-out test set (ranking: relevant = rating >= 4)")
    table.add_column("model", justify="left", no_wrap=True)
    for header, _ in TABLE_COLUMNS:
        table.add_column(header, justify="right")
    rows = [metrics, *metrics.get("baselines", {}).values()]
    for row in rows:
        table.add_row(str(row.get("model")), *(_fmt(row.get(key)) for _, key in TABLE_COLUMNS))
    console.print(table)
    console.print(COLUMN_LEGEND)
    for row in rows:
        if "note" in row:
            console.print(row["note"])
    if "rating_order_ndcg@10" in metrics:
        console.print(
            f"Ranking by predicted rating alone would give NDCG@10 {metrics['rating_order_ndcg@10']:.4f}; "
            f"the ranking score gives {metrics.get('ndcg@10', float('nan')):.4f}."
        )
    console.print(
        f"{metrics.get('n_test', 0):,} test ratings, {metrics.get('n_unknown', 0):,} of them for users or movies "
        "unseen in training (predicted by the fallback)."
    )
    ranked, rankable = metrics.get("n_ranked_users"), metrics.get("n_rankable_users")
    if ranked is not None and rankable is not None and ranked < rankable:
        console.print(f"Ranking metrics on a seeded sample of {ranked:,} of the {rankable:,} test users.")
    if run_dir is not None:
        console.print(f"Run folder: {run_dir}")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"
