"""``load``: a trained run as a ``Recommender`` that answers lists for known and new people, similar movies,
explanations, onboarding and predicted stars. It wraps ``movierec.recommend.Recommender``, the code path of the
CLI and the HTTP service, so all three give the same answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from movierec.api.results import MovieExplanation, Onboarding, Predictions, Recommendations, SimilarMovies
from movierec.api.runs import Run
from movierec.errors import MovieRecError
from movierec.models.factors import UserVector
from movierec.recommend import DEFAULT_MIN_RATINGS, Filters, Prediction, Recommendation
from movierec.recommend import Recommender as Engine
from movierec.recommend.catalog import MovieInfo
from movierec.recommend.explain import explain_personal

Ratings = Mapping[int, float] | Iterable[tuple[int, float]]
"""A person's stars by movieId: ``{318: 5, 296: 4.5}`` or ``[(318, 5), (296, 4.5)]``."""
Answers = Mapping[int, float | None] | Iterable[tuple[int, float | None]]
"""A new person's answers by movieId, stars or ``None`` for "I haven't seen it": ``{318: 5, 296: None}`` or
``[(318, 5), (296, None)]``."""


class Recommender:
    """A trained model with its catalog and training ratings, loaded once, ready for many questions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def genres(self) -> tuple[str, ...]:
        """The genres the catalog knows (for ``recommend(genres=...)``)."""
        return self._engine.genres

    @property
    def scale(self) -> tuple[float, float]:
        """The lowest and highest star a rating can have."""
        return self._engine.scale

    def recommend(
        self,
        ratings: Ratings | None = None,
        *,
        user: int | None = None,
        n: int = 10,
        genres: Sequence[str] = (),
        exclude_genres: Sequence[str] = (),
        years: str | None = None,
        min_ratings: int | None = None,
        not_seen: Iterable[int] | None = None,
    ) -> Recommendations:
        """Top-``n`` movies, each with its explanation, for a new person known by a few ``ratings`` (folded in,
        no retraining) or for a ``user`` of the training data; never a movie they rated.

        ``not_seen``: with ``ratings`` from an interview (``next_questions``), the movieIds the person hasn't
        seen (even none): they are folded in as the interview protocol scores them, each lowering the "likely to
        watch" score of the movies watched alike.
        Filters: ``genres`` (any of them), ``exclude_genres``, ``years`` ("1990-2005", "1990-", "-2005") and
        ``min_ratings`` (training ratings a movie needs; default 10).
        """
        filters = Filters.from_options(genres, exclude_genres, years, min_ratings)
        if (ratings is None) == (user is None):
            raise MovieRecError("Give exactly one of ratings={movieId: stars, ...} or user=userId.")
        unseen = None if not_seen is None else [int(movie) for movie in not_seen]
        if user is not None:
            if unseen is not None:
                raise MovieRecError(
                    f"not_seen={unseen} describes a new person; give it with ratings=..., not with user={user}."
                )
            return Recommendations(tuple(self._engine.recommend_user(user, n, filters)), user=user)
        pairs = _pairs(ratings)
        return Recommendations.of_new_user(pairs, self._engine.recommend_new_user(pairs, n, filters, not_seen=unseen))

    def similar(self, movie: int | str, n: int = 10, *, min_ratings: int | None = None) -> SimilarMovies:
        """The ``n`` movies closest in taste space to ``movie`` (a movieId or (part of) a title)."""
        found = self._engine.find_movie(movie)
        return SimilarMovies(tuple(self._engine.similar(found.movieId, n, min_ratings)), found)

    def explain(self, movie: int | str, ratings: Ratings | None = None, *, user: int | None = None) -> MovieExplanation:
        """Why ``movie`` (a movieId or a title) would be recommended to a new person known by ``ratings``, or to
        a trained ``user``: the predicted stars and rank score in parts, and which of their ratings push it."""
        if (ratings is None) == (user is None):
            raise MovieRecError("Give exactly one of ratings={movieId: stars, ...} or user=userId.")
        engine = self._engine
        vector, rated, stars = self._person(user) if user is not None else self._folded(_pairs(ratings))
        item = engine.catalog.find(movie)
        predicted = engine.model.score_for(vector)
        scores = engine.model.rank_for(vector, predicted)
        args = (engine.sentiment, vector, np.array([item]), predicted[[item]], rated, stars)
        why = explain_personal(engine.model, engine.catalog, *args)[0]
        shown = {f.name: getattr(engine.catalog.info(item), f.name) for f in fields(MovieInfo)}
        rounded = round(float(predicted[item]), 4), round(float(scores[item]), 4)
        return MovieExplanation(Recommendation(**shown, predicted_rating=rounded[0], score=rounded[1], explanation=why))

    def onboarding(self, n: int = 15) -> Onboarding:
        """``n`` widely seen, divisive, mutually different movies to ask a new person to rate first."""
        return Onboarding(tuple(self._engine.onboarding(n)))

    def next_questions(self, answers: Answers = (), n: int = 5) -> Onboarding:
        """The ``n`` movies best asked about next, given a new person's ``answers`` so far (at most 100): the ones
        whose answers should tell the most about their taste, weighted by the chance they have seen them. Never a
        movie already answered; "haven't seen it" counts as an answer too. The list the answers lead to:
        ``recommend(ratings, not_seen=...)``."""
        pairs = answers.items() if isinstance(answers, Mapping) else answers
        return Onboarding(tuple(self._engine.next_questions(pairs, n)))

    def predict(
        self, movies: Sequence[int], *, users: Sequence[int] | None = None, ratings: Ratings | None = None
    ) -> Predictions:
        """Predicted stars of ``movies``: pairwise for trained ``users`` (one per movie), or for a new person
        folded in from ``ratings``. Unknown users or movies get the fallback (the biases or the mean)."""
        if (ratings is None) == (users is None):
            raise MovieRecError("Give exactly one of ratings={movieId: stars, ...} or users=[userId, ...].")
        if users is not None:
            return Predictions(tuple(self._engine.predict_pairs(list(users), list(movies))))
        stars = self._engine.predict_new_user(_pairs(ratings), list(movies))
        index = self._engine.item_vocab.index(np.asarray(movies, dtype=np.int64))
        known = (index >= 0) & self._engine.item_known[np.maximum(index, 0)]
        return Predictions(
            tuple(Prediction(-1, int(m), s, False, bool(k)) for m, s, k in zip(movies, stars, known, strict=True))
        )

    def movie(self, query: int | str) -> MovieInfo:
        """A movie by movieId or (part of) its title: id, title, year, genres, ratings and mean rating."""
        return self._engine.find_movie(query)

    def _person(self, user: int) -> tuple[UserVector, np.ndarray, np.ndarray]:
        index = self._engine.user_index(user)
        rated = self._engine.rated.items_of(index).astype(np.int64)
        return self._engine.model.user_vector(index), rated, self._engine.rated.ratings_of(index).astype(np.float64)

    def _folded(self, pairs: list[tuple[int, float]]) -> tuple[UserVector, np.ndarray, np.ndarray]:
        folded = self._engine.fold_in(pairs)
        if folded.items.size == 0:
            raise MovieRecError(
                f"None of the rated movies {[movie for movie, _ in pairs]} is known to this run; rate movies it "
                "was trained on."
            )
        return folded.vector, folded.items, folded.ratings


def load(run: Run | str | Path, *, min_ratings: int = DEFAULT_MIN_RATINGS) -> Recommender:
    """A ``Recommender`` over a run folder (a ``Run`` from ``fit`` or a path). Lists hold movies with at least
    ``min_ratings`` training ratings unless a filter says otherwise."""
    path = run.path if isinstance(run, Run) else Path(run)
    return Recommender(Engine.load(path, min_ratings=min_ratings))


def _pairs(ratings: Ratings | None) -> list[tuple[int, float]]:
    items = ratings.items() if isinstance(ratings, Mapping) else (ratings or ())
    return [(int(movie), float(stars)) for movie, stars in items]
