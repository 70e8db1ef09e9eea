"""What every router shares: the current model snapshot, error responses, id look-ups, request values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request

from movierec.errors import MovieRecError
from movierec.recommend import Filters, parse_years
from movierec.serve.errors import field_error
from movierec.serve.schemas import ErrorOut, RatingIn
from movierec.serve.state import Loaded, ModelState

_DESCRIPTIONS = {
    401: "The admin token is missing.",
    403: "The admin token is wrong, or admin calls are disabled.",
    404: "The user or movie in the path is not known to the loaded model.",
    409: "Another reload is running.",
    413: "The request body is too large.",
    422: "Bad input: the message names the field and what would be valid.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (all with the ``ErrorOut`` body)."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


def current(request: Request) -> Loaded:
    """The model snapshot this request uses from start to end (a reload never changes it mid-request)."""
    models: ModelState = request.app.state.models
    return models.current


def movie_index(loaded: Loaded, movie_id: int) -> int:
    index = loaded.recommender.item_vocab.index_one(movie_id)
    if index is None:
        raise HTTPException(404, f"The movie {movie_id} is not in this model's catalog; search titles at GET /movies.")
    return index


def user_index(loaded: Loaded, user_id: int) -> int:
    rec = loaded.recommender
    index = rec.user_vocab.index_one(user_id)
    if index is None or not rec.user_known[index]:
        raise HTTPException(
            404,
            f"The user {user_id} is not in this model's training data; POST their ratings to /recommendations instead.",
        )
    return index


def genres(loaded: Loaded, names: Sequence[str], loc: tuple[str, str]) -> tuple[str, ...]:
    """Genre names as the catalog spells them; an unknown one is a 422 listing the valid genres."""
    out = []
    for name in names:
        known = loaded.genres.get(name.strip().casefold())
        if known is None:
            valid = ", ".join(loaded.recommender.genres)
            raise field_error(loc, f"{'.'.join(loc)}: {name!r} is not a genre of this catalog; valid genres: {valid}")
        out.append(known)
    return tuple(dict.fromkeys(out))


def filters(
    loaded: Loaded,
    where: str,
    include: Sequence[str],
    exclude: Sequence[str],
    years: str | None,
    min_ratings: int | None,
    names: tuple[str, str] = ("genres", "exclude_genres"),
) -> Filters:
    """``Filters`` from request values; each bad value is a 422 naming its field."""
    include_genres = genres(loaded, include, (where, names[0]))
    exclude_genres = genres(loaded, exclude, (where, names[1]))
    year_from = year_to = None
    if years is not None and years.strip():
        try:
            year_from, year_to = parse_years(years)
        except MovieRecError as error:
            raise field_error((where, "years"), f"{where}.years: {str(error).rstrip('.')}") from None
    try:
        return Filters(include_genres, exclude_genres, year_from, year_to, min_ratings)
    except MovieRecError as error:
        raise field_error((where, names[1]), f"{where}.{names[1]}: {str(error).rstrip('.')}") from None


def check_ratings(loaded: Loaded, ratings: Sequence[RatingIn], where: str = "body") -> list[tuple[int, float]]:
    """(movieId, stars) pairs, each rating checked against the loaded model's scale."""
    low, high = loaded.scale
    pairs = []
    for position, item in enumerate(ratings):
        if not low <= item.rating <= high:
            loc = (where, "ratings", position, "rating")
            raise field_error(
                loc,
                f"{where}.ratings.{position}.rating must be from {low:g} to {high:g} (the model's rating scale); "
                f"got {item.rating:g}",
            )
        pairs.append((item.movieId, item.rating))
    return pairs
