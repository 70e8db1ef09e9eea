"""The movies x genres matrix the calibration metric reads, built from the catalog's ``genres`` column."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def genre_matrix(genres: Iterable[object]) -> np.ndarray:
    """Bool ``[n_movies, n_genres]``: True where the movie has the genre.

    ``genres`` holds one "A|B" string per movie in item-index order (the catalog's ``genres`` column; empty or
    missing means none). The columns are the genre names in sorted order.
    """
    lists = [text.split("|") if isinstance(text, str) and text else [] for text in genres]
    names = sorted({name for movie in lists for name in movie})
    column = {name: j for j, name in enumerate(names)}
    matrix = np.zeros((len(lists), len(names)), dtype=bool)
    rows = np.repeat(np.arange(len(lists)), [len(movie) for movie in lists])
    matrix[rows, [column[name] for movie in lists for name in movie]] = True
    return matrix
