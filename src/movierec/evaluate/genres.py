"""The movies x genres table, built from the catalog's ``genres`` column: for the calibration metric, the taste
protocol, the ranking weights and the catalog the service filters by."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def genre_table(genres: Iterable[object]) -> tuple[tuple[str, ...], np.ndarray]:
    """The genre names in sorted order, and a bool ``[n_movies, n_genres]`` matrix, True where the movie has the
    genre (one column per name).

    ``genres`` holds one "A|B" string per movie in item-index order (the catalog's ``genres`` column; empty or
    missing means none).
    """
    lists = [text.split("|") if isinstance(text, str) and text else [] for text in genres]
    names = tuple(sorted({name for movie in lists for name in movie}))
    column = {name: j for j, name in enumerate(names)}
    matrix = np.zeros((len(lists), len(names)), dtype=bool)
    rows = np.repeat(np.arange(len(lists)), [len(movie) for movie in lists])
    matrix[rows, [column[name] for movie in lists for name in movie]] = True
    return names, matrix


def genre_matrix(genres: Iterable[object]) -> np.ndarray:
    """The matrix of ``genre_table``: bool ``[n_movies, n_genres]``, columns in sorted genre order."""
    return genre_table(genres)[1]


def movie_genres(movies: pd.DataFrame, n_items: int) -> np.ndarray | None:
    """The genre matrix of a movies table in item-index order; None when it says no genres or does not have one
    row per item."""
    if "genres" not in movies.columns or len(movies) != n_items:
        return None
    return genre_matrix(movies["genres"].tolist())
