"""`movierec recommend`, `movierec similar` and `movierec onboard`: thin wrappers over ``Recommender``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from movierec.cli.console import make_console
from movierec.cli.protocols import PROTOCOLS
from movierec.errors import MovieRecError
from movierec.evaluate.coldstart import DEFAULT_GIVEN, ColdStartOptions, parse_given
from movierec.recommend.explain import reason_lines
from movierec.recommend.filters import DEFAULT_MIN_RATINGS, Filters
from movierec.recommend.recommender import Recommendation, Recommender
from movierec.serve.forms import known_user_form, new_user_form, onboarding_form, similar_form

console = make_console()
errors = make_console(stderr=True)

RunDir = Annotated[Path, typer.Argument(help="A run folder written by `movierec train`.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
MinRatings = Annotated[
    int | None,
    typer.Option(help=f"Only movies with at least this many training ratings (default {DEFAULT_MIN_RATINGS})."),
]


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
    app.command("similar")(similar)
    app.command("onboard")(onboard)
    PROTOCOLS.setdefault("cold-start", cold_start_protocol)


def recommend(
    run_dir: RunDir,
    user: Annotated[int | None, typer.Option(help="A userId from the run's training data.")] = None,
    ratings: Annotated[
        str | None, typer.Option(help='A new user\'s ratings as MOVIE_ID:STARS pairs, e.g. "318:5,296:4.5".')
    ] = None,
    ratings_file: Annotated[
        Path | None, typer.Option(help="CSV of a new user's ratings: movieId,rating (header optional).")
    ] = None,
    n: Annotated[int, typer.Option("-n", "--n", help="How many movies to recommend.")] = 10,
    genre: Annotated[
        list[str] | None, typer.Option(help="Only movies with this genre (repeat for any of several).")
    ] = None,
    exclude_genre: Annotated[list[str] | None, typer.Option(help="No movies with this genre (repeatable).")] = None,
    years: Annotated[str | None, typer.Option(help="Release years, e.g. 1990-2005, 1990- or -2005.")] = None,
    min_ratings: MinRatings = None,
    as_json: AsJson = False,
) -> None:
    """Recommend movies to a known user, or to a new one from a few ratings (fold-in, no retraining)."""
    given = sum(x is not None for x in (user, ratings, ratings_file))
    if given != 1:
        raise MovieRecError('Give exactly one of --user ID, --ratings "318:5,296:4.5" or --ratings-file FILE.')
    filters = Filters.from_options(genre or (), exclude_genre or (), years, min_ratings)
    recommender = Recommender.load(run_dir)
    form: BaseModel
    if user is not None:
        recs = recommender.recommend_user(user, n, filters)
        form, title = known_user_form(user, recs), f"Recommendations for user {user}"
    else:
        pairs = parse_ratings(ratings) if ratings is not None else read_ratings_file(Path(str(ratings_file)))
        result = recommender.recommend_new_user(pairs, n, filters)
        recs, form = result.recommendations, new_user_form(pairs, result)
        if form.ignored:
            listed = ", ".join(str(i) for i in form.ignored)
            errors.print(f"[yellow]warning:[/] ignored movie id(s) this run does not know: {listed}")
        title = "Recommendations for a new user"
        if form.fallback:
            title += " (none of the ratings could be used: popular and well-rated movies)"
    if as_json:
        _print_json(form)
        return
    _print_recommendations(recs, title)


def similar(
    run_dir: RunDir,
    movie: Annotated[str, typer.Argument(help='A movieId or (part of) a title, e.g. 1214 or "Alien".')],
    n: Annotated[int, typer.Option("-n", "--n", help="How many movies to list.")] = 10,
    min_ratings: MinRatings = None,
    as_json: AsJson = False,
) -> None:
    """Movies whose learned factors are closest (cosine) to a movie's."""
    recommender = Recommender.load(run_dir)
    query = recommender.find_movie(movie)
    found = recommender.similar(query.movieId, n, min_ratings)
    if as_json:
        _print_json(similar_form(query, found))
        return
    table = Table(title=f"Movies like {query.title} [{query.movieId}]")
    for column in ("#", "title", "year", "genres", "cosine", "ratings", "why"):
        table.add_column(column, justify="right" if column in ("#", "cosine", "ratings") else "left")
    for rank, s in enumerate(found, 1):
        table.add_row(
            str(rank), s.title, _year(s.year), "|".join(s.genres), f"{s.similarity:.2f}", f"{s.n_ratings:,}",
            s.explanation,
        )  # fmt: skip
    console.print(table)


def onboard(
    run_dir: RunDir,
    n: Annotated[int, typer.Option("-n", "--n", help="How many movies to ask about.")] = 15,
    as_json: AsJson = False,
) -> None:
    """Movies to ask a new user to rate: widely seen, divisive, and unlike each other."""
    picks = Recommender.load(run_dir).onboarding(n)
    if as_json:
        _print_json(onboarding_form(picks))
        return
    table = Table(title="Rate these to get personal recommendations")
    for column in ("#", "movieId", "title", "year", "genres", "why"):
        table.add_column(column, justify="right" if column in ("#", "movieId") else "left")
    for rank, p in enumerate(picks, 1):
        table.add_row(str(rank), str(p.movieId), p.title, _year(p.year), "|".join(p.genres), p.reason)
    console.print(table)


def cold_start_protocol(run: Any, as_json: bool, given: str | None = None) -> None:
    """`movierec evaluate RUN_DIR --protocol cold-start [--given 5,10,20] [--json]`: hold users out of the
    run's data, retrain its config on the rest, fold the held-out users in from k ratings, score the rest."""
    from movierec.data.source import DataOptions, load_split
    from movierec.train.cold_start import cold_start

    options = ColdStartOptions(given=parse_given(given) if given else DEFAULT_GIVEN)
    dataset, _ = load_split(DataOptions(**run.data))
    rows = cold_start(run.config, dataset, options, progress=not as_json)
    if as_json:
        print(json.dumps(rows))
        return
    at = f"@{options.k}"
    table = Table(title=f"Cold start: held-out users reveal k ratings ({options.order} order); the rest are scored")
    headers = ("k", "RMSE", "biases RMSE", f"NDCG{at}", f"popularity NDCG{at}", f"recall{at}", f"popularity recall{at}")
    for header in headers:
        table.add_column(header, justify="right")
    keys = ("rmse", "baseline_rmse", f"ndcg{at}", f"popularity_ndcg{at}", f"recall{at}", f"popularity_recall{at}")
    for row in rows:
        table.add_row(str(row["given"]), *(f"{row[key]:.4f}" if key in row else "—" for key in keys))
    console.print(table)
    console.print(
        f"{rows[0]['n_users']:,} held-out users ({options.holdout_fraction:.0%} of all, seed {options.seed}) with "
        f"more than {max(options.given)} ratings each; {run.config.model} retrained on the other users."
    )


# ---------------------------------------------------------------------------------------------- parsing


def parse_ratings(text: str) -> list[tuple[int, float]]:
    """``"318:5,296:4.5"`` (or ``318=5``) -> [(318, 5.0), (296, 4.5)]."""
    pairs = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = re.fullmatch(r"(\d+)\s*[:=]\s*([-+]?\d+(?:\.\d+)?)", entry)
        if match is None:
            raise MovieRecError(f'The rating {entry!r} is not MOVIE_ID:STARS; write --ratings like "318:5,296:4.5".')
        movie_id = int(match.group(1))
        if movie_id >= 2**63:
            raise MovieRecError(f"The movie id in {entry!r} is too large; movie ids are below 2**63.")
        pairs.append((movie_id, float(match.group(2))))
    if not pairs:
        raise MovieRecError('--ratings is empty; write it like "318:5,296:4.5".')
    return pairs


def read_ratings_file(path: Path) -> list[tuple[int, float]]:
    """A CSV with ``movieId`` and ``rating`` columns, or headerless ``movieId,rating`` lines."""
    if not path.is_file():
        raise MovieRecError(f"The ratings file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MovieRecError(f"The ratings file {path} is not UTF-8 text; write one movieId,rating per line.") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(c.strip() for c in row)]
    if not rows:
        raise MovieRecError(f"The ratings file {path} is empty; write one movieId,rating per line.")
    movie_col, rating_col = 0, 1
    header = [c.strip() for c in rows[0]]
    if "movieId" in header or "rating" in header:
        if "movieId" not in header or "rating" not in header:
            raise MovieRecError(f"The ratings file {path} needs both a movieId and a rating column; it has {header}.")
        movie_col, rating_col = header.index("movieId"), header.index("rating")
        rows = rows[1:]
    text = ",".join(f"{row[movie_col].strip()}:{row[rating_col].strip()}" if len(row) > 1 else row[0] for row in rows)
    try:
        return parse_ratings(text)
    except MovieRecError as error:
        raise MovieRecError(f"{error} (in {path}, one movieId,rating per line)") from None


# ---------------------------------------------------------------------------------------------- output


def _print_recommendations(recs: list[Recommendation], title: str) -> None:
    if not recs:
        console.print("No movie passes these filters; loosen --genre, --years or --min-ratings.")
        return
    table = Table(title=title)
    for column in ("#", "title", "year", "genres", "predicted", "ratings", "why"):
        table.add_column(column, justify="right" if column in ("#", "predicted", "ratings") else "left")
    for rank, r in enumerate(recs, 1):
        table.add_row(
            str(rank), r.title, _year(r.year), "|".join(r.genres), f"{r.predicted_rating:.1f}★", f"{r.n_ratings:,}",
            "\n".join(reason_lines(r.explanation.because)) or r.explanation.summary,
        )  # fmt: skip
    console.print(table)


def _year(year: int | None) -> str:
    return "" if year is None else str(year)


def _print_json(form: BaseModel) -> None:
    """One line of JSON, in the form the HTTP API answers the same request with."""
    print(json.dumps(form.model_dump(mode="json"), ensure_ascii=False))
