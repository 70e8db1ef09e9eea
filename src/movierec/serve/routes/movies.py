"""`GET /movies` (title search), `GET /movies/{movieId}`, `GET /movies/{movieId}/similar`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from movierec.recommend.filters import filter_mask
from movierec.serve.forms import movie_form, similar_form
from movierec.serve.routes.common import current, filters, movie_index, responses
from movierec.serve.schemas import (
    MAX_GENRE_CHARS,
    MAX_GENRES,
    MAX_ID,
    MAX_MIN_RATINGS,
    MAX_N,
    MAX_QUERY_CHARS,
    MAX_SEARCH,
    MovieOut,
    SearchOut,
    SimilarListOut,
)

router = APIRouter(tags=["movies"])
MovieIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A MovieLens movieId.")]


@router.get("/movies", response_model=SearchOut, responses=responses(422))
async def search_movies(
    request: Request,
    query: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="(Part of) a title; typos forgiven.")] = "",
    genre: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=MAX_GENRE_CHARS)]],
        Query(max_length=MAX_GENRES, description="Only movies with one of these genres (repeatable)."),
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH, description="Most movies to list.")] = 20,
) -> SearchOut:
    """Movies whose titles match ``query`` (case-insensitive, word by word, one typo per word forgiven), best
    match first, then the most rated; an empty query lists the most rated movies."""
    loaded = current(request)
    catalog = loaded.recommender.catalog
    allowed = None
    if genre:
        chosen = filters(loaded, "query", genre, (), None, 0, names=("genre", "genre"))
        allowed = filter_mask(catalog, chosen, 0)
    found, total = loaded.search.search(query, limit, allowed)
    return SearchOut(query=query, total=total, movies=[movie_form(catalog.info(i)) for i in found])


@router.get("/movies/{movieId}", response_model=MovieOut, responses=responses(404, 422))
async def get_movie(request: Request, movieId: MovieIdPath) -> MovieOut:
    """One movie: title, year, genres and its training ratings."""
    loaded = current(request)
    return movie_form(loaded.recommender.catalog.info(movie_index(loaded, movieId)))


@router.get("/movies/{movieId}/similar", response_model=SimilarListOut, responses=responses(404, 422))
async def similar_movies(
    request: Request,
    movieId: MovieIdPath,
    n: Annotated[int, Query(ge=1, le=MAX_N, description=f"How many movies to list (1 to {MAX_N}).")] = 10,
    min_ratings: Annotated[int | None, Query(ge=0, le=MAX_MIN_RATINGS)] = None,
) -> SimilarListOut:
    """ "More like this": the movies whose learned factors are closest (cosine, shrunk for thinly rated ones)."""
    loaded = current(request)
    rec = loaded.recommender
    index = movie_index(loaded, movieId)
    return similar_form(rec.catalog.info(index), rec.similar(movieId, n, min_ratings))
