"""`movierec train` and `movierec evaluate`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from movierec.artifact.run import load_run, write_metrics
from movierec.cli.console import make_console
from movierec.cli.options import ParseFlags, parse_options, parse_report_printer
from movierec.cli.protocols import run_protocol
from movierec.config import TrainConfig
from movierec.data.source import DataOptions, load_split
from movierec.data.split import Split
from movierec.errors import MovieRecError
from movierec.evaluate.report import compare_with_baselines
from movierec.models import registry
from movierec.train import distributed as ranks
from movierec.train.session import train_run

console = make_console()
JSON_KEYS = ("model", "rmse", "mae", "n_train", "n_test", "n_unknown", "ndcg@10", "recall@10")


class DataFlags:
    data = Annotated[str, typer.Option(help="Release name or path to ratings (default: the embedded data).")]
    split = Annotated[str, typer.Option(help="How to hold out test ratings: random, user-temporal, global-temporal.")]
    test_fraction = Annotated[float, typer.Option(help="Share of ratings held out for testing.")]
    split_seed = Annotated[int, typer.Option(help="Seed of the random split.")]
    train_file = Annotated[str | None, typer.Option(help="CSV userId,movieId,rating[,timestamp] to train on.")]
    test_file = Annotated[str | None, typer.Option(help="CSV of held-out ratings (with --train-file).")]
    movies_file = Annotated[str | None, typer.Option(help="movies CSV movieId,title,genres (with --train-file).")]


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)


def train(
    data: DataFlags.data = "ml-latest-small",
    split: DataFlags.split = "random",
    test_fraction: DataFlags.test_fraction = 0.1,
    split_seed: DataFlags.split_seed = 0,
    train_file: DataFlags.train_file = None,
    test_file: DataFlags.test_file = None,
    movies_file: DataFlags.movies_file = None,
    model: Annotated[str | None, typer.Option(help="global-mean, biases, sigmoid-mf, biased-mf or hybrid.")] = None,
    dim: Annotated[int | None, typer.Option(help="Embedding size.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Most epochs (early stopping usually ends sooner).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    reg: Annotated[float | None, typer.Option(help="L2 penalty on the rows each batch touches.")] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="Optimiser-wide weight decay (every row, every step).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Ratings per mini-batch.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, sgd, sparse-adam or adagrad.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Learning-rate schedule: none, cosine or step.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for initialisation, shuffling and validation split.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    solver: Annotated[
        str | None, typer.Option(help="loop (gradient steps) or als (fast; biased-mf and hybrid).")
    ] = None,
    init_std: Annotated[float | None, typer.Option(help="Standard deviation of the initial factors.")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="Share of the training ratings carved out for validation.")
    ] = None,
    fold_in_reg: Annotated[
        float | None, typer.Option(help="Noise variance against the prior when a new user is folded in.")
    ] = None,
    watch_dim: Annotated[
        int | None, typer.Option(help='Size of the "likely to watch" ranking component; 0 turns it off.')
    ] = None,
    genres: Annotated[
        bool | None, typer.Option("--genres/--no-genres", help="hybrid: genre and release-year embeddings.")
    ] = None,
    tags: Annotated[bool | None, typer.Option("--tags/--no-tags", help="hybrid: user-tag embeddings.")] = None,
    implicit: Annotated[
        bool | None, typer.Option("--implicit/--no-implicit", help="hybrid: the SVD++ term over rated movies.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="JSON config file (e.g. written by `movierec tune`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to write (default runs/MODEL-TIME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's last checkpoint.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    distributed: Annotated[
        bool,
        typer.Option("--distributed", help="Train across the processes torchrun starts (DDP; docs/distributed.md)."),
    ] = False,
    duplicates: ParseFlags.duplicates = "error",
    skip_invalid: ParseFlags.skip_invalid = False,
    scale: ParseFlags.scale = None,
) -> None:
    """Train a model, evaluate it on held-out ratings beside the baselines, and write a run folder."""
    base = TrainConfig.from_file(config) if config else registry.config_for(model, solver=solver)
    settings = base.replace(
        model=model, dim=dim, epochs=epochs, lr=lr, reg=reg, weight_decay=weight_decay, batch_size=batch_size,
        optimizer=optimizer, schedule=schedule, patience=patience, seed=seed, device=device, solver=solver,
        init_std=init_std, val_fraction=val_fraction, fold_in_reg=fold_in_reg, watch_dim=watch_dim,
        use_genres=genres, use_tags=tags, use_implicit=implicit, distributed=distributed,
    )  # fmt: skip
    data_options = DataOptions(data, split, test_fraction, split_seed, train_file, test_file, movies_file)
    run_dir = out or Path("runs") / f"{settings.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    main = not distributed or ranks.setup(settings.device).is_main  # only rank 0 of torchrun's processes speaks
    try:
        metrics = train_run(
            settings,
            data_options,
            run_dir,
            parse=(parse := parse_options(duplicates, skip_invalid, scale)),
            resume=resume,
            progress=not (quiet or as_json),
            on_report=parse_report_printer(parse) if main else None,
        )
    finally:
        ranks.teardown()
    if main:
        report(metrics, as_json, run_dir)


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `movierec train`.")],
    data: Annotated[str | None, typer.Option(help="Evaluate on this dataset's split instead of the run's own.")] = None,
    test_file: Annotated[str | None, typer.Option(help="CSV of held-out ratings to score.")] = None,
    protocol: Annotated[
        str, typer.Option(help="standard, cold-start (new users) or cold-items (new movies).")
    ] = "standard",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    given: Annotated[str | None, typer.Option(help="cold-start: ratings per held-out user, e.g. 5,10,20.")] = None,
) -> None:
    """Score a trained run on held-out ratings, beside the baselines on the same split."""
    run = load_run(run_dir)
    if protocol != "standard":
        run_protocol(protocol, run, as_json, **({"given": given} if given is not None else {}))
        return
    parts = _test_split(run, data, test_file)
    scale_low, scale_high = run.model.params.low, run.model.params.high
    from movierec.data.ratings import RatingScale

    metrics = compare_with_baselines(run.model, parts.train, parts.test, RatingScale(scale_low, scale_high, 0.5))
    if data is None and test_file is None:
        write_metrics(run.path, {**run.metrics, **metrics})
    report(metrics, as_json, run.path)


def _test_split(run: Any, data: str | None, test_file: str | None) -> Split:
    """The run's own test split (rebuilt from its data settings), or ratings from a file mapped to its ids."""
    if test_file is not None:
        from movierec.data.loader import DEFAULT_SCALE
        from movierec.data.movielens import ParseOptions, read_ratings_csv
        from movierec.data.ratings import Ratings

        frame, _ = read_ratings_csv(Path(test_file), ParseOptions(scale=DEFAULT_SCALE))
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
    options = DataOptions(**{**run.data, **({"data": data} if data else {})})
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
    for column in ("model", "RMSE", "MAE", "NDCG@10", "recall@10", "precision@10", "coverage@10"):
        table.add_column(column, justify="right" if column != "model" else "left")
    rows = [metrics, *metrics.get("baselines", {}).values()]
    for row in rows:
        table.add_row(
            str(row.get("model")),
            *(_fmt(row.get(key)) for key in ("rmse", "mae", "ndcg@10", "recall@10", "precision@10", "coverage@10")),
        )
    console.print(table)
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
