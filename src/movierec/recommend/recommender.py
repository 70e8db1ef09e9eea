"""The one code path from a trained model to the lists people see, shared by the CLI and the HTTP service.

Build a ``Recommender`` once per loaded run (it precomputes the catalog arrays, genre masks, rating counts and
every user's rated movies in compressed-row form), then answer many requests:

* ``recommend_user``: top-N for a user the model was trained on;
* ``recommend_new_user``: top-N from a handful of ratings (and movies not seen), folded in by closed-form least
  squares against the frozen movie factors (milliseconds, no retraining), or the popular-and-well-rated fallback
  when none of the ratings can be used; ``recommend_after_interview``: the same from an interview's answers;
* ``similar``: movies closest in factor space (cosine), with a minimum support;
* ``onboarding``: which movies to ask a new person to rate; ``next_questions``: the next ones, chosen from
  the answers so far (stars, or "not seen");
* ``predict_pairs``: predicted stars for (user, movie) pairs; ``recommend_all``: batch top-N for every user.

Lists never hold a movie the person rated, and by default only movies with at least
``DEFAULT_MIN_RATINGS`` training ratings, so that top lists are not filled with movies one to three people
liked. Results are plain dataclasses; ``to_dict()`` gives JSON-ready dicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.models.factors import FactorModel, UserVector
from movierec.recommend import coldstart
from movierec.recommend.batch import DEFAULT_CHUNK, TopN, batch_top_n
from movierec.recommend.catalog import Catalog, MovieInfo
from movierec.recommend.explain import Explanation, Sentiment, explain_personal, explain_popular
from movierec.recommend.filters import DEFAULT_MIN_RATINGS, NO_FILTERS, Filters, filter_mask
from movierec.recommend.interview import Answer, Interviewer
from movierec.recommend.rated import RatedSets

if TYPE_CHECKING:
    from movierec.artifact.run import Run

MAX_N = 1000
MAX_ANSWERS = 100
"""The most answers an interview takes (``next_questions``); more would only slow the choice down."""
SIMILARITY_SHRINK = 20.0
"""Similar movies are ranked by ``cosine × n / (n + SIMILARITY_SHRINK)`` (n: the movie's training ratings), so a
thinly rated movie needs a clearly higher cosine to outrank a well-known one."""


@dataclass(frozen=True)
class Recommendation(MovieInfo):
    """One recommended movie. ``score`` is the rank score the list is sorted by (rating part + popularity
    part for personal lists, the normalised damped mean for the fallback)."""

    predicted_rating: float
    score: float
    explanation: Explanation

    def to_dict(self) -> dict[str, object]:
        values = super().to_dict()
        why = self.explanation.to_dict()
        del why["text"]
        values["explanation"] = self.explanation.text
        values["why"] = why
        return values


@dataclass(frozen=True)
class SimilarMovie(MovieInfo):
    """A movie near the query movie in factor space."""

    similarity: float  # cosine of the two movies' factors
    score: float  # what the list is sorted by: the cosine shrunk towards 0 for thinly rated movies
    explanation: str


@dataclass(frozen=True)
class OnboardingMovie(MovieInfo):
    """A movie to ask a new user about, with why it was picked."""

    spread: float
    reason: str


@dataclass(frozen=True)
class Prediction:
    """Predicted stars for one (user, movie) pair; unknown users or movies fall back to the biases."""

    userId: int
    movieId: int
    predicted_rating: float
    known_user: bool
    known_movie: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class NewUserResult(NamedTuple):
    """Recommendations for a new user, and the given movieIds that were ignored (unknown to the model)."""

    recommendations: list[Recommendation]
    ignored: list[int]


@dataclass(frozen=True)
class FoldedUser:
    """A new user as the model sees them, with the ratings that were used."""

    vector: UserVector
    items: np.ndarray  # int64 item indices actually used
    ratings: np.ndarray  # float64 stars
    ignored: list[int]  # raw movieIds unknown to the model


class Recommender:
    """A trained model with its catalog and training ratings, ready to answer requests."""

    def __init__(
        self,
        model: FactorModel,
        movies: pd.DataFrame,
        train: Ratings,
        *,
        min_ratings: int = DEFAULT_MIN_RATINGS,
    ) -> None:
        p = model.params
        if p.n_items != train.n_items or p.n_users != train.n_users:
            raise MovieRecError(
                f"The model has {p.n_users} users and {p.n_items} movies but the training ratings have "
                f"{train.n_users} and {train.n_items}; load both from the same run."
            )
        self.model = model
        self.train = train
        self.catalog = Catalog(movies, train)
        self.rated = RatedSets.from_ratings(train)
        self.min_ratings = int(min_ratings)
        self.user_vocab = train.user_vocab
        self.item_vocab = train.item_vocab
        mean_rating = float(train.ratings.mean()) if len(train) else (p.low + p.high) / 2
        self.sentiment = Sentiment(p.low, p.high, mean_rating)
        self.user_known = (np.diff(self.rated.indptr) > 0) & model.known_users()
        self.item_known = (self.catalog.counts > 0) & model.known_items()
        strength = coldstart.prior_strength(self.catalog.counts)
        self.popular = coldstart.popular_scores(self.catalog.counts, self.catalog.means, p.global_mean, strength)
        self._default_mask = filter_mask(self.catalog, NO_FILTERS, self.min_ratings) & self.item_known
        # Lists are drawn from well-supported movies; scoring only those (a contiguous copy of their rows) is
        # several times faster on a large catalog, where most movies have a handful of ratings.
        self._pool = np.flatnonzero(self._default_mask)
        self._pool_model = model.restricted_to(self._pool)
        if p.dim:
            norms = np.linalg.norm(p.item_factors, axis=1, keepdims=True)
            self._unit = np.divide(p.item_factors, norms, out=np.zeros_like(p.item_factors), where=norms > 0).astype(
                np.float32
            )
        else:
            self._unit = np.zeros((p.n_items, 0), np.float32)

    @classmethod
    def from_run(cls, run: Run, *, min_ratings: int = DEFAULT_MIN_RATINGS) -> Recommender:
        return cls(run.model, run.movies, run.train, min_ratings=min_ratings)

    @classmethod
    def load(cls, run_dir: str | Path, *, min_ratings: int = DEFAULT_MIN_RATINGS) -> Recommender:
        from movierec.artifact.run import load_run

        return cls.from_run(load_run(Path(run_dir)), min_ratings=min_ratings)

    @property
    def scale(self) -> tuple[float, float]:
        return self.model.params.low, self.model.params.high

    @property
    def genres(self) -> tuple[str, ...]:
        return self.catalog.genre_names

    # -------------------------------------------------------------------------------------------- lists

    def recommend_user(self, user_id: int, n: int = 10, filters: Filters = NO_FILTERS) -> list[Recommendation]:
        """Top-``n`` for a user the model was trained on (by raw userId)."""
        check_n(n)
        user = self.user_index(user_id)
        rated, ratings = self.rated.items_of(user), self.rated.ratings_of(user)
        return self._personal(
            self.model.user_vector(user), rated.astype(np.int64), ratings.astype(np.float64), n, filters
        )

    def recommend_new_user(
        self,
        ratings: Iterable[tuple[int, float]],
        n: int = 10,
        filters: Filters = NO_FILTERS,
        *,
        not_seen: Iterable[int] | None = None,
    ) -> NewUserResult:
        """Top-``n`` for someone known only by a few (movieId, stars) ratings; unknown movieIds are ignored
        and returned. ``not_seen`` (for answers from an interview, even none): the movieIds they haven't seen,
        folded in as the interview protocol does (see ``fold_in``). With no usable rating the list is the
        popular-and-well-rated fallback."""
        check_n(n)
        ratings = list(ratings)  # read twice below; a generator would be empty the second time
        folded = self.fold_in(ratings, not_seen)
        if folded.items.size == 0:
            given = self._given_indices(ratings)
            return NewUserResult(self.fallback(n, filters, exclude=given), folded.ignored)
        recs = self._personal(folded.vector, folded.items, folded.ratings, n, filters)
        return NewUserResult(recs, folded.ignored)

    def recommend_after_interview(
        self, answers: Iterable[tuple[int, float | None]], n: int = 10, filters: Filters = NO_FILTERS
    ) -> NewUserResult:
        """Top-``n`` from an interview's ``answers`` (validated as ``next_questions`` takes them), folded in as the
        interview protocol does: each "not seen" lowers the "likely to watch" score of the movies watched alike."""
        check_n(n)
        latest = self._latest_answers(answers)
        ratings = [(movie, stars) for movie, stars in latest.items() if stars is not None]
        unseen = [movie for movie, stars in latest.items() if stars is None]
        return self.recommend_new_user(ratings, n, filters, not_seen=unseen)

    def fold_in(self, ratings: Iterable[tuple[int, float]], not_seen: Iterable[int] | None = None) -> FoldedUser:
        """Validate (movieId, stars) pairs and fold them into a user vector (a later duplicate wins).

        With ``not_seen`` (even empty), the person is folded in as the interview protocol does
        (``Interviewer.fold_in``): the "likely to watch" part starts from the typical trained user's rather than
        from nothing, and each movie not seen is an observed zero. A movie also rated counts as rated; one the
        model has no factors for tells it nothing and is skipped (``ignored`` lists unknown rated movies only)."""
        latest: dict[int, float] = {}
        for movie_id, stars in ratings:
            latest[int(movie_id)] = self.check_stars(movie_id, stars)
        ids = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
        stars_arr = np.fromiter(latest.values(), dtype=np.float64, count=len(latest))
        index = self.item_vocab.index(ids)
        usable = index >= 0
        usable[usable] = self.item_known[index[usable]]
        if not_seen is None:
            vector = self.model.fold_in(index[usable], stars_arr[usable])
        else:
            unseen = self._known_indices(int(movie) for movie in not_seen if int(movie) not in latest)
            answers: list[Answer] = [(int(i), float(s)) for i, s in zip(index[usable], stars_arr[usable], strict=True)]
            vector = self._interviewer.fold_in(answers + [(int(i), None) for i in unseen])
        return FoldedUser(vector, index[usable], stars_arr[usable], [int(i) for i in ids[~usable]])

    def fallback(
        self, n: int = 10, filters: Filters = NO_FILTERS, exclude: np.ndarray | None = None
    ) -> list[Recommendation]:
        """The popular-and-well-rated list (damped mean rating), restricted by ``filters``."""
        check_n(n)
        mask = self._mask(filters)
        if exclude is not None and exclude.size:
            mask[exclude] = False
        scores = self.model.unit_rating(self.popular)
        top = _top(scores, mask, n)
        predicted = self.model.predict(np.full(top.size, -1), top)
        out = []
        for item, stars in zip(top, predicted, strict=True):
            explanation = explain_popular(self.model, self.catalog, int(item), float(stars), float(scores[item]))
            out.append(_recommendation(self.catalog.info(int(item)), float(stars), float(scores[item]), explanation))
        return out

    def similar(self, movie: int | str, n: int = 10, min_ratings: int | None = None) -> list[SimilarMovie]:
        """The ``n`` movies with the most similar factors (cosine, shrunk by support) to ``movie`` (a movieId or a
        title), among movies with at least ``min_ratings`` training ratings (default: the recommender's)."""
        check_n(n)
        if self.model.params.dim == 0:
            raise MovieRecError(
                f"The model {self.model.name!r} has no movie factors, so it cannot find similar movies; "
                "use a run of biased-mf, sigmoid-mf or hybrid."
            )
        item = self.catalog.find(movie)
        if not self.item_known[item]:
            raise MovieRecError(
                f"The movie {self.catalog.titles[item]} [{self.catalog.movie_ids[item]}] has no training ratings, "
                "so the model has no factors for it; pick a rated movie."
            )
        mask = self._mask(Filters(min_ratings=min_ratings))
        mask[item] = False
        similarity = self._unit @ self._unit[item]
        counts = self.catalog.counts
        score = similarity * (counts / (counts + SIMILARITY_SHRINK))
        top = _top(score, mask, n)
        query = set(self.catalog.genres[item])
        out = []
        for j in top:
            info = self.catalog.info(int(j))
            shared = [g for g in info.genres if g in query]
            note = f"cosine {similarity[j]:.2f} in taste space" + (f"; shares {', '.join(shared)}" if shared else "")
            out.append(
                SimilarMovie(
                    **_shown(info),
                    similarity=round(float(similarity[j]), 4),
                    score=round(float(score[j]), 4),
                    explanation=note,
                )
            )
        return out

    def onboarding(self, n: int = 15) -> list[OnboardingMovie]:
        """``n`` widely known, divisive, mutually different movies to ask a new user to rate."""
        check_n(n)
        picks = coldstart.choose_onboarding(self.catalog, self.model.params.item_factors, n, self._default_mask)
        return [self._question(item) for item in picks]

    def next_questions(self, answers: Iterable[tuple[int, float | None]], n: int = 5) -> list[OnboardingMovie]:
        """The ``n`` movies best asked about next, given the ``answers`` so far: (movieId, stars) pairs, stars
        ``None`` for "I haven't seen it" (a later answer about the same movie wins). Never a movie answered."""
        check_n(n)
        chosen = self._interviewer.next_questions(self._answers(answers), n)
        return [self._question(item) for item in chosen]

    def check_stars(self, movie_id: int, stars: float) -> float:
        """``stars`` as a float within the model's scale, or a ``MovieRecError`` naming the movie and the scale."""
        low, high = self.scale
        value = float(stars)
        if not math.isfinite(value) or not low <= value <= high:
            raise MovieRecError(
                f"The rating {stars!r} for movie {movie_id} is outside the scale; use a value from {low:g} to {high:g}."
            )
        return value

    def predict_pairs(self, user_ids: Sequence[int], movie_ids: Sequence[int]) -> list[Prediction]:
        """Predicted stars for each (userId, movieId) pair (raw ids)."""
        if len(user_ids) != len(movie_ids):
            raise MovieRecError(f"{len(user_ids)} user ids but {len(movie_ids)} movie ids; give one of each per pair.")
        users = self.user_vocab.index(np.asarray(user_ids, dtype=np.int64))
        items = self.item_vocab.index(np.asarray(movie_ids, dtype=np.int64))
        predicted = self.model.predict(users, items)
        known_user = (users >= 0) & self.user_known[np.maximum(users, 0)]
        known_item = (items >= 0) & self.item_known[np.maximum(items, 0)]
        return [
            Prediction(int(u), int(m), round(float(r), 4), bool(ku), bool(km))
            for u, m, r, ku, km in zip(user_ids, movie_ids, predicted, known_user, known_item, strict=True)
        ]

    def predict_new_user(self, ratings: Iterable[tuple[int, float]], movie_ids: Sequence[int]) -> list[float]:
        """Predicted stars of ``movie_ids`` for a user folded in from ``ratings`` (unknown movies: the mean)."""
        folded = self.fold_in(ratings)
        items = self.item_vocab.index(np.asarray(movie_ids, dtype=np.int64))
        predicted = self.model.predict_for(folded.vector, items, known=self.item_known)
        return [round(float(v), 4) for v in predicted]

    def recommend_all(
        self,
        n: int = 10,
        filters: Filters = NO_FILTERS,
        *,
        user_ids: Sequence[int] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        device: str = "cpu",
    ) -> TopN:
        """Batch top-``n`` for every trained user (or ``user_ids``): raw userIds, movieIds (``-1`` pads)."""
        check_n(n)
        users = None if user_ids is None else np.array([self.user_index(u) for u in user_ids], dtype=np.int64)
        if users is None:
            users = np.flatnonzero(self.user_known)
        top = batch_top_n(
            self.model, self.rated, n, users=users, candidates=self._mask(filters), chunk_size=chunk_size, device=device
        )
        movie_ids = np.where(top.items >= 0, self.catalog.movie_ids[np.maximum(top.items, 0)], -1)
        return TopN(self.user_vocab.raw(top.users), movie_ids, top.scores)

    # ------------------------------------------------------------------------------------------ helpers

    def user_index(self, user_id: int) -> int:
        index = self.user_vocab.index_one(int(user_id))
        if index is None or not self.user_known[index]:
            raise MovieRecError(
                f"The user {user_id} is not in this run's training data; "
                'recommend for a new user from a few ratings instead (--ratings "318:5,296:4.5").'
            )
        return index

    def find_movie(self, query: int | str) -> MovieInfo:
        return self.catalog.info(self.catalog.find(query))

    def _mask(self, filters: Filters) -> np.ndarray:
        if filters == NO_FILTERS:
            return self._default_mask.copy()
        return filter_mask(self.catalog, filters, self.min_ratings) & self.item_known

    @cached_property
    def _interviewer(self) -> Interviewer:
        """Built on the first interview question: its per-model tables cost more than one answer."""
        return Interviewer(self.model, self.catalog, self._default_mask)

    def _latest_answers(self, answers: Iterable[tuple[int, float | None]]) -> dict[int, float | None]:
        """Validated interview answers, stars or None by movieId, in the order given, where a later answer about a
        movie replaces the earlier one and takes its place."""
        given = list(answers)
        if len(given) > MAX_ANSWERS:
            raise MovieRecError(f"{len(given)} answers are more than an interview takes; give at most {MAX_ANSWERS}.")
        latest: dict[int, float | None] = {}
        for movie_id, stars in given:
            if self.item_vocab.index_one(int(movie_id)) is None:
                raise MovieRecError(
                    f"The movie {movie_id} is not in this run's catalog; answer about movies the run knows."
                )
            latest.pop(int(movie_id), None)
            latest[int(movie_id)] = None if stars is None else self.check_stars(movie_id, stars)
        return latest

    def _answers(self, answers: Iterable[tuple[int, float | None]]) -> list[Answer]:
        """``_latest_answers`` as (item index, stars or None). Movies the model has no factors for tell it nothing:
        they are dropped."""
        latest = self._latest_answers(answers)
        items = self.item_vocab.index(np.fromiter(latest, np.int64, count=len(latest)))
        return [(int(item), stars) for item, stars in zip(items, latest.values(), strict=True) if self.item_known[item]]

    def _question(self, item: int) -> OnboardingMovie:
        info = self.catalog.info(item)
        spread = float(self.catalog.spreads[item])
        reason = f"{info.n_ratings:,} ratings, spread ±{spread:.2f}★ around {info.mean_rating or 0:.2f}★"
        return OnboardingMovie(**_shown(info), spread=round(spread, 3), reason=reason)

    def _known_indices(self, movie_ids: Iterable[int]) -> np.ndarray:
        """The item indices of ``movie_ids`` that the model has factors for, each once, in the order given."""
        index = self.item_vocab.index(np.fromiter(dict.fromkeys(movie_ids), np.int64))
        index = index[index >= 0]
        return index[self.item_known[index]]

    def _given_indices(self, ratings: Iterable[tuple[int, float]]) -> np.ndarray:
        ids = np.array([int(m) for m, _ in ratings], dtype=np.int64)
        index = self.item_vocab.index(ids)
        return index[index >= 0]

    def _personal(
        self, user: UserVector, rated: np.ndarray, ratings: np.ndarray, n: int, filters: Filters
    ) -> list[Recommendation]:
        mask = self._mask(filters)
        mask[rated] = False
        if (mask & ~self._default_mask).any():  # a filter reaches outside the pool: score every movie
            scorer, candidates, allowed = self.model, None, mask
        else:
            scorer, candidates, allowed = self._pool_model, self._pool, mask[self._pool]
        every = scorer.score_for(user)
        every_score = scorer.rank_for(user, every)
        chosen = _top(every_score, allowed, n)
        predicted, scores = every[chosen], every_score[chosen]
        top = chosen if candidates is None else candidates[chosen]
        explanations = explain_personal(self.model, self.catalog, self.sentiment, user, top, predicted, rated, ratings)
        return [
            _recommendation(self.catalog.info(int(item)), float(stars), float(score), why)
            for item, stars, score, why in zip(top, predicted, scores, explanations, strict=True)
        ]


def _shown(info: MovieInfo) -> dict[str, Any]:
    """The fields every result shares with ``MovieInfo`` (a shallow copy: ``asdict`` deep-copies, slowly)."""
    return {f.name: getattr(info, f.name) for f in fields(info)}


def _recommendation(info: MovieInfo, predicted: float, score: float, why: Explanation) -> Recommendation:
    return Recommendation(**_shown(info), predicted_rating=round(predicted, 4), score=round(score, 4), explanation=why)


def _top(scores: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best-scoring masked items, best first (ties: lower index first)."""
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        return candidates
    values = scores[candidates]
    if candidates.size > n:
        keep = np.argpartition(-values, n - 1)[:n]
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values))
    return candidates[order]


def check_n(n: int) -> None:
    """A list length from 1 to ``MAX_N``, or a ``MovieRecError`` saying so."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise MovieRecError(f"The list length {n!r} is not valid; ask for 1 to {MAX_N} movies.")
