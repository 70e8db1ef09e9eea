"""`movierec interview RUN`: ask a new person about one movie at a time, each chosen from the answers so far, then
show their recommendations and why."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from movierec.cli.console import make_console
from movierec.cli.recommend import RunDir, _print_recommendations
from movierec.errors import MovieRecError
from movierec.recommend.recommender import MAX_ANSWERS, OnboardingMovie, Recommender, check_n

console = make_console()

NOT_SEEN = ("n", "no", "not seen")
STOP = ("q", "quit")


class _Stopped(Exception):
    """The person typed "q", or the input ended."""


def register(app: typer.Typer) -> None:
    app.command("interview")(interview)


def interview(
    run_dir: RunDir,
    questions: Annotated[
        int, typer.Option(help=f"How many questions to ask at most (1 to {MAX_ANSWERS}); q stops earlier.")
    ] = 10,
    n: Annotated[int, typer.Option("-n", "--n", help="How many movies to recommend.")] = 10,
) -> None:
    """Ask about one movie at a time (stars, n = not seen, q = stop), each chosen from the answers so far to learn
    the most about your taste, then recommend movies with why."""
    if not 1 <= questions <= MAX_ANSWERS:
        raise MovieRecError(f"--questions {questions} is not valid; ask 1 to {MAX_ANSWERS} questions.")
    check_n(n)
    recommender = Recommender.load(run_dir)
    answers = ask(recommender, questions)
    ratings = [(movie, stars) for movie, stars in answers if stars is not None]
    result = recommender.recommend_after_interview(answers, n)  # "not seen" answers shape the list too
    title = f"Recommendations from your {len(ratings)} rating(s) and {len(answers) - len(ratings)} not seen"
    if not ratings:
        title = "No movie rated: popular and well-rated movies"
    console.print()
    _print_recommendations(result.recommendations, title)


def ask(recommender: Recommender, questions: int) -> list[tuple[int, float | None]]:
    """Up to ``questions`` answers as (movieId, stars or None for not seen), in the order asked."""
    answers: list[tuple[int, float | None]] = []
    for number in range(1, questions + 1):
        found = recommender.next_questions(answers, 1)
        if not found:
            break
        movie = found[0]
        genres = "|".join(movie.genres)
        console.print(f"\n[bold]{number}/{questions}[/] {escape(movie.title)}  {genres}  ({movie.reason})")
        try:
            answers.append((movie.movieId, read_answer(recommender, movie)))
        except _Stopped:
            break
    return answers


def read_answer(recommender: Recommender, movie: OnboardingMovie) -> float | None:
    """Stars within the scale, or None for not seen; asks again until the answer is one of those."""
    low, high = recommender.scale
    while True:
        try:
            text = console.input(f"Your stars ({low:g} to {high:g}), n = not seen, q = stop: ").strip().lower()
        except (EOFError, OSError):  # the input ended (or cannot be read): stop asking
            raise _Stopped from None
        if not sys.stdin.isatty():  # piped answers: show each after its question, as a terminal would
            console.print(text)
        if text in STOP:
            raise _Stopped
        if text in NOT_SEEN:
            return None
        try:
            return recommender.check_stars(movie.movieId, float(text))
        except ValueError:
            console.print(f"{text!r} is not an answer; type stars from {low:g} to {high:g}, n if not seen, q to stop.")
        except MovieRecError as error:
            console.print(str(error))
