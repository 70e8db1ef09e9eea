"""What a person may restrict a list to: genres to include or exclude, a year range, a minimum rating count."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from movierec.errors import MovieRecError
from movierec.recommend.catalog import Catalog

DEFAULT_MIN_RATINGS = 10
"""Movies with fewer training ratings are left out of lists unless ``min_ratings`` says otherwise: their
predicted ratings rest on a handful of opinions (the "obscure-movie trap")."""


@dataclass(frozen=True)
class Filters:
    """Restrictions on a recommendation list; the defaults restrict nothing but the minimum support.

    A movie passes when it has at least one of ``include_genres`` (when any are given), none of
    ``exclude_genres``, a year within ``[year_from, year_to]`` (either end open; movies without a year fail a
    year range) and at least ``min_ratings`` training ratings (``None``: the recommender's default).
    """

    include_genres: tuple[str, ...] = field(default=())
    exclude_genres: tuple[str, ...] = field(default=())
    year_from: int | None = None
    year_to: int | None = None
    min_ratings: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "include_genres", _names(self.include_genres))
        object.__setattr__(self, "exclude_genres", _names(self.exclude_genres))
        both = {g.casefold() for g in self.include_genres} & {g.casefold() for g in self.exclude_genres}
        if both:
            raise MovieRecError(f"The genre {sorted(both)[0]!r} is both included and excluded; keep one of the two.")
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise MovieRecError(
                f"The year range {self.year_from}-{self.year_to} is empty; the first year must not follow the last."
            )
        if self.min_ratings is not None and (isinstance(self.min_ratings, bool) or self.min_ratings < 0):
            raise MovieRecError(f"min_ratings is {self.min_ratings!r}; use a whole number >= 0.")

    @classmethod
    def from_options(
        cls,
        genres: Iterable[str] = (),
        exclude_genres: Iterable[str] = (),
        years: str | None = None,
        min_ratings: int | None = None,
    ) -> Filters:
        """From CLI/API options: ``years`` like ``1990-2000``, ``1990-``, ``-2000`` or ``1995``."""
        year_from, year_to = parse_years(years) if years else (None, None)
        return cls(tuple(genres), tuple(exclude_genres), year_from, year_to, min_ratings)

    def to_dict(self) -> dict[str, object]:
        return {
            "include_genres": list(self.include_genres),
            "exclude_genres": list(self.exclude_genres),
            "year_from": self.year_from,
            "year_to": self.year_to,
            "min_ratings": self.min_ratings,
        }


def parse_years(text: str) -> tuple[int | None, int | None]:
    """``"1990-2000"`` -> (1990, 2000); an open end is ``None``; one year is a range of one."""
    match = re.fullmatch(r"\s*(\d{4})?\s*(-)?\s*(\d{4})?\s*", text)
    if not match or not (match.group(1) or match.group(3)) or (match.group(2) is None and match.group(3)):
        raise MovieRecError(f"The year range {text!r} is not valid; write it like 1990-2000, 1990-, -2000 or 1995.")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(3)) if match.group(3) else None
    if match.group(2) is None:
        last = first
    if first is not None and last is not None and first > last:
        raise MovieRecError(f"The year range {text!r} is empty; the first year must not follow the last.")
    return first, last


def filter_mask(catalog: Catalog, filters: Filters, default_min_ratings: int = DEFAULT_MIN_RATINGS) -> np.ndarray:
    """Bool [n_items]: the movies that pass ``filters`` (and have at least one training rating)."""
    min_ratings = default_min_ratings if filters.min_ratings is None else filters.min_ratings
    mask = catalog.counts >= max(min_ratings, 1)
    if filters.include_genres:
        columns = [catalog.genre_column(g) for g in filters.include_genres]
        mask &= catalog.genre_matrix[:, columns].any(axis=1)
    if filters.exclude_genres:
        columns = [catalog.genre_column(g) for g in filters.exclude_genres]
        mask &= ~catalog.genre_matrix[:, columns].any(axis=1)
    if filters.year_from is not None:
        mask &= catalog.years >= filters.year_from  # NaN (no year) compares false
    if filters.year_to is not None:
        mask &= catalog.years <= filters.year_to
    return mask


def _names(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    names = tuple(str(v).strip() for v in values)
    if any(not name for name in names):
        raise MovieRecError("A genre name is empty; give names like Comedy or Sci-Fi.")
    return names


NO_FILTERS = Filters()
