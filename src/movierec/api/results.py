"""What the public ``Recommender`` answers: frozen dataclasses with ``to_dict()`` (the HTTP API's JSON form, from
``serve.forms``) and ``to_frame()`` (one pandas row per movie)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel

from movierec.recommend import NewUserResult, OnboardingMovie, Prediction, Recommendation, SimilarMovie
from movierec.recommend.catalog import MovieInfo
from movierec.recommend.explain import reason_lines
from movierec.serve.forms import (
    known_user_form,
    new_user_form,
    onboarding_form,
    recommendation_form,
    similar_form,
)

Item = TypeVar("Item", Recommendation, SimilarMovie, OnboardingMovie, Prediction)


@dataclass(frozen=True)
class _Listing(Generic[Item]):
    """A list of results: iterate over it, index it, take its length."""

    items: tuple[Item, ...]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> Item:
        return self.items[position]

    def to_frame(self) -> pd.DataFrame:
        """One row per movie; genres joined by "|"."""
        return pd.DataFrame([_row(item.to_dict()) for item in self.items])


@dataclass(frozen=True)
class Recommendations(_Listing[Recommendation]):
    """A top-N list, best first, each movie with its predicted stars and its explanation.

    ``user`` is the trained user's id (None for a new user); ``ignored``: given movies the model does not know;
    ``fallback``: none of the given ratings could be used, so the list is the popular-and-well-rated one.
    """

    user: int | None = None
    ratings: tuple[tuple[int, float], ...] = ()
    ignored: tuple[int, ...] = ()
    fallback: bool = False

    @classmethod
    def of_new_user(cls, ratings: Sequence[tuple[int, float]], result: NewUserResult) -> Recommendations:
        distinct = {movie for movie, _ in ratings}
        fallback = len(result.ignored) == len(distinct)
        return cls(tuple(result.recommendations), None, tuple(ratings), tuple(result.ignored), fallback)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /users/{id}/recommendations`` or ``POST /recommendations``."""
        form: BaseModel
        if self.user is not None:
            form = known_user_form(self.user, self.items)
        else:
            form = new_user_form(self.ratings, NewUserResult(list(self.items), list(self.ignored)))
        return form.model_dump(mode="json")

    def to_frame(self) -> pd.DataFrame:
        """One row per movie: movieId, title, year, genres, predicted_rating, score, kind, summary, because
        (one line per feeling), explanation (every number in one line)."""
        rows = []
        for rec in self.items:
            row = _row(recommendation_form(rec).model_dump(mode="json"))
            row["because"] = "; ".join(reason_lines(rec.explanation.because))
            rows.append(row)
        return pd.DataFrame(rows, columns=_columns(rows))


@dataclass(frozen=True)
class SimilarMovies(_Listing[SimilarMovie]):
    """The movies closest to ``movie`` in taste space, closest first."""

    movie: MovieInfo

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /movies/{movieId}/similar``."""
        return similar_form(self.movie, self.items).model_dump(mode="json")


@dataclass(frozen=True)
class Onboarding(_Listing[OnboardingMovie]):
    """Movies to ask a new person to rate first."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /onboarding``."""
        return onboarding_form(self.items).model_dump(mode="json")


@dataclass(frozen=True)
class Predictions(_Listing[Prediction]):
    """Predicted stars for (user, movie) pairs; ``userId`` is -1 for a new user folded in from ratings."""

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": [item.to_dict() for item in self.items]}


@dataclass(frozen=True)
class MovieExplanation:
    """Why one movie would be recommended to one person: its predicted stars and rank score split into their
    parts, and the person's own ratings behind it (``because``)."""

    recommendation: Recommendation

    @property
    def text(self) -> str:
        """Every part of the prediction and the score, and the reasons, in a line."""
        return self.recommendation.explanation.text

    @property
    def summary(self) -> str:
        """The short reason: "because you liked ..." (or the prediction's terms when no rating stands out)."""
        return self.recommendation.explanation.summary

    @property
    def predicted_rating(self) -> float:
        return self.recommendation.predicted_rating

    def to_dict(self) -> dict[str, Any]:
        """The JSON of one recommendation in ``POST /recommendations``."""
        return recommendation_form(self.recommendation).model_dump(mode="json")

    def to_frame(self) -> pd.DataFrame:
        """One row per reason: the movie the person rated, their stars, the stars it adds, liked or disliked."""
        columns = ["movieId", "title", "rating", "contribution", "reason"]
        rows = [{key: getattr(b, key) for key in columns} for b in self.recommendation.explanation.because]
        return pd.DataFrame(rows, columns=columns)

    def __str__(self) -> str:
        return self.text


def _row(values: dict[str, Any]) -> dict[str, Any]:
    genres = values.get("genres")
    if isinstance(genres, list):
        values["genres"] = "|".join(genres)
    return values


def _columns(rows: list[dict[str, Any]]) -> list[str] | None:
    """The frame's columns, the reasons last (they are long)."""
    if not rows:
        return None
    tail = ("because", "explanation")
    return [key for key in rows[0] if key not in tail] + list(tail)
