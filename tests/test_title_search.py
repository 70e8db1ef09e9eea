"""Title search on rapidfuzz: typos up to two in a long word, on the real titles of the embedded data."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.movielens import read_movies_csv
from movierec.paths import EMBEDDED_DIR
from movierec.serve.search import TitleIndex, allowed_edits


@pytest.fixture(scope="module")
def index() -> tuple[TitleIndex, list[int]]:
    movies = read_movies_csv(EMBEDDED_DIR / "ml-latest-small" / "movies.csv")
    ids = movies["movieId"].tolist()
    return TitleIndex(movies["title"].astype(str).tolist(), np.ones(len(ids))), ids


@pytest.mark.parametrize(
    ("query", "movie_id"),
    [
        ("Shawshenk Redemtoin", 318),  # three typos, two of them in one word
        ("shawshank redemption", 318),
        ("pulp fictoin", 296),  # two neighbours swapped
        ("godfahter", 858),
        ("matirx", 2571),
    ],
)
def test_typos_find_the_movie(index: tuple[TitleIndex, list[int]], query: str, movie_id: int) -> None:
    titles, ids = index
    found, total = titles.search(query, 10)
    assert total >= 1 and movie_id in [ids[i] for i in found[:3]], [ids[i] for i in found]


def test_short_words_tolerate_fewer_typos() -> None:
    assert [allowed_edits(word) for word in ("it", "alien", "matrix", "shawshank")] == [0, 1, 1, 2]
    index = TitleIndex(["Alien (1979)", "Aliens (1986)", "Allen (2001)"], np.array([5, 4, 1]))
    assert index.search("alein", 10)[0] == [0]  # a swap in a five-letter word: one edit
    assert index.search("xxlien", 10) == ([], 0)  # two edits in a six-letter word: too many
