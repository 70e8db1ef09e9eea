"""The movie catalog as arrays, built once per loaded run: ids, titles, years, a genre matrix, rating counts.

Everything a request needs to filter or describe movies is precomputed here so that answering one costs a few
vectorised passes over the item axis. Titles can be looked up by id or by (part of) the title.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.evaluate.genres import genre_table

_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE_SUFFIX = re.compile(r"^(.*), (the|a|an|les|la|le|l'|il|der|die|das|el)$", re.IGNORECASE)
MAX_LISTED = 8


@dataclass(frozen=True)
class MovieInfo:
    """How a movie is shown to a person."""

    movieId: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    n_ratings: int
    mean_rating: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields (genres as a list); the result types that extend this class add their own."""
        values = asdict(self)
        values["genres"] = list(self.genres)
        return values


class Catalog:
    """Per-item arrays in item-index order."""

    def __init__(self, movies: pd.DataFrame, train: Ratings) -> None:
        n_items = train.n_items
        if len(movies) != n_items:
            raise MovieRecError(
                f"The movies table has {len(movies)} rows but the model knows {n_items} movies; "
                "they must match one row per movie index."
            )
        self.movie_ids = movies["movieId"].to_numpy(dtype=np.int64)
        if not np.array_equal(self.movie_ids, train.item_vocab.ids):
            raise MovieRecError("The movies table is not in the order of the model's movie vocabulary.")
        self.item_vocab = train.item_vocab
        self.titles: list[str] = [str(t) for t in movies["title"].tolist()]
        self.years = pd.array(movies["year"], dtype="Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        genre_text = movies["genres"].fillna("").tolist()
        self.genres: list[tuple[str, ...]] = [tuple(g.split("|")) if g else () for g in genre_text]
        self.genre_names, self.genre_matrix = genre_table(genre_text)
        self.counts = train.item_counts().astype(np.int64)
        sums = np.bincount(train.items, weights=train.ratings.astype(np.float64), minlength=n_items)
        squares = np.bincount(train.items, weights=train.ratings.astype(np.float64) ** 2, minlength=n_items)
        safe = np.maximum(self.counts, 1)
        self.means = np.where(self.counts > 0, sums / safe, np.nan)
        self.spreads = np.sqrt(np.maximum(squares / safe - (sums / safe) ** 2, 0.0))
        self._search_titles: list[str] | None = None

    @property
    def n_items(self) -> int:
        return int(self.movie_ids.shape[0])

    def info(self, item: int) -> MovieInfo:
        year = self.years[item]
        mean = self.means[item]
        return MovieInfo(
            movieId=int(self.movie_ids[item]),
            title=self.titles[item],
            year=None if np.isnan(year) else int(year),
            genres=self.genres[item],
            n_ratings=int(self.counts[item]),
            mean_rating=None if np.isnan(mean) else round(float(mean), 3),
        )

    def genre_column(self, name: str) -> int:
        """The genre matrix column of ``name`` (case-insensitive)."""
        wanted = name.strip().casefold()
        for j, genre in enumerate(self.genre_names):
            if genre.casefold() == wanted:
                return j
        raise MovieRecError(
            f"The genre {name!r} is not in this catalog; valid genres are: {', '.join(self.genre_names)}."
        )

    def find(self, query: str | int) -> int:
        """The item index of a movieId or of a title (exact, then without the year, then a unique substring)."""
        text = str(query).strip()
        if re.fullmatch(r"\d+", text):
            index = self.item_vocab.index_one(int(text))
            if index is None:
                raise MovieRecError(
                    f"The movie id {text} is not in this run's catalog; give a known movieId or a title."
                )
            return index
        if not text:
            raise MovieRecError("The movie to look up is empty; give a movieId or a title.")
        wanted = _normalise(text)
        titles = self._normalised_titles()
        exact = [i for i, t in enumerate(self.titles) if t.casefold() == text.casefold()]
        if not exact:
            exact = [i for i, t in enumerate(titles) if t == wanted]
        matches = exact or [i for i, t in enumerate(titles) if wanted in t]
        if len(matches) == 1:
            return matches[0]
        if matches:
            matches.sort(key=lambda i: -self.counts[i])
            listed = "; ".join(f"{self.titles[i]} [{self.movie_ids[i]}]" for i in matches[:MAX_LISTED])
            more = f" and {len(matches) - MAX_LISTED} more" if len(matches) > MAX_LISTED else ""
            raise MovieRecError(
                f"The title {text!r} matches {len(matches)} movies: {listed}{more}; give the movieId or a fuller title."
            )
        close = difflib.get_close_matches(wanted, titles, n=5, cutoff=0.6)
        suggestions = [self.titles[titles.index(t)] for t in close]
        hint = f"closest titles: {'; '.join(suggestions)}" if suggestions else "try a shorter part of the title"
        raise MovieRecError(f"No movie title matches {text!r}; {hint}.")

    def _normalised_titles(self) -> list[str]:
        if self._search_titles is None:
            self._search_titles = [_normalise(t) for t in self.titles]
        return self._search_titles


def _normalise(title: str) -> str:
    """Lower case, no trailing "(1999)", and "Matrix, The" read as "the matrix"."""
    bare = _YEAR_SUFFIX.sub("", title).strip()
    moved = _ARTICLE_SUFFIX.match(bare)
    if moved:
        bare = f"{moved.group(2)} {moved.group(1)}"
    return " ".join(bare.casefold().split())
