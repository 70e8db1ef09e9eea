"""The taste protocol: does a new user's list follow what they said they like?

For every genre with enough well-supported movies, two new users are built from the training data: the
**liker** rates the genre's ``PROFILE_SIZE`` most-rated well-known movies at the top of the scale and the
``PROFILE_SIZE`` most-rated well-known movies outside the genre ("unrelated") at the bottom; the **swapped**
user rates the very same movies with the stars swapped. A list that follows taste holds many movies of the
genre for the liker, few for the swapped user, and the two lists barely overlap.

Everything here is pure: lists come from ``Lister`` callables, so the same users are put to the model (through
the Recommender, above this layer), to EASE and to popularity. ``taste_report`` gives the one JSON-ready dict
``movierec evaluate RUN --protocol taste --json`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from movierec.errors import MovieRecError
from movierec.evaluate.protocol import topk_items
from movierec.models.ease import Ease

PROFILE_SIZE = 8
"""Movies each built user likes, and movies they dislike."""
PROFILE_MIN_RATINGS = 50
"""A profile movie has at least this many training ratings: well known, so every model knows it well."""
SPARE_IN_GENRE = 30
"""A genre qualifies only with at least this many of its movies left as candidates (with the lists' minimum
number of training ratings) beside its ``PROFILE_SIZE`` profile movies: then an all-genre top list is possible
at all, and filling it is still a choice."""
LIST_LENGTH = 10
"""The length of every list compared (a top 10)."""

Rated = Sequence[tuple[int, float]]
"""A built user's ratings: (item index, stars) pairs."""
Lister = Callable[[Rated], np.ndarray]
"""The top ``LIST_LENGTH`` item indices, best first, for a new user known only by their ratings."""


@dataclass(frozen=True)
class Stars:
    """The stars the built users give: ``liked`` to what they like, ``disliked`` to what they do not."""

    liked: float
    disliked: float

    @classmethod
    def for_scale(cls, low: float, high: float) -> Stars:
        """5★ and 1★ on MovieLens scales: the top of the scale, and 1 where the scale reaches below it."""
        return cls(liked=high, disliked=1.0 if low <= 1.0 < high else low)


@dataclass(frozen=True)
class GenreUsers:
    """The liker and the swapped user of one genre: the same movies, the stars swapped."""

    genre: str
    in_genre: np.ndarray  # int64 item indices: the genre's most-rated well-known movies
    unrelated: np.ndarray  # int64 item indices: the most-rated well-known movies outside the genre

    @property
    def rated(self) -> np.ndarray:
        return np.concatenate([self.in_genre, self.unrelated])

    def liker(self, stars: Stars) -> list[tuple[int, float]]:
        return self._ratings(stars.liked, stars.disliked)

    def swapped(self, stars: Stars) -> list[tuple[int, float]]:
        return self._ratings(stars.disliked, stars.liked)

    def _ratings(self, genre_stars: float, other_stars: float) -> list[tuple[int, float]]:
        return [(int(i), genre_stars) for i in self.in_genre] + [(int(i), other_stars) for i in self.unrelated]


@dataclass(frozen=True)
class LeftOut:
    """A genre the protocol has no users for, and why."""

    genre: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"genre": self.genre, "reason": self.reason}


def build_users(
    counts: np.ndarray, genre_matrix: np.ndarray, genre_names: Sequence[str], min_ratings: int
) -> tuple[list[GenreUsers], list[LeftOut]]:
    """The two users of every genre that qualifies (``genre_users``), and the genres left out with the reason.
    Raises ``MovieRecError`` when the catalog lists no genres or no genre qualifies."""
    if not len(genre_names):
        raise MovieRecError(
            "The run's catalog lists no genres, so the taste protocol has no genre to build users for; "
            "evaluate a run trained with a movies file that has a genres column."
        )
    users: list[GenreUsers] = []
    left_out: list[LeftOut] = []
    for column, genre in enumerate(genre_names):
        built = genre_users(genre, counts, np.asarray(genre_matrix[:, column], dtype=bool), min_ratings)
        if isinstance(built, GenreUsers):
            users.append(built)
        else:
            left_out.append(built)
    if not users:
        raise MovieRecError(
            f"No genre of the run's catalog has {PROFILE_SIZE} movies with at least {PROFILE_MIN_RATINGS} training "
            f"ratings and {SPARE_IN_GENRE} more with at least {min_ratings}, so the taste protocol has no users to "
            "build; evaluate a run trained on more ratings."
        )
    return users, left_out


def genre_users(genre: str, counts: np.ndarray, member: np.ndarray, min_ratings: int) -> GenreUsers | LeftOut:
    """The users of one genre (``member``: bool per item), or why the genre does not qualify.

    ``counts`` are the training ratings per item, ``min_ratings`` the least training ratings of a movie a list
    may hold. Most-rated comes first; equal counts go to the lower item index.
    """
    counts = np.asarray(counts, dtype=np.int64)
    by_count = np.argsort(-counts, kind="stable")
    known = counts[by_count] >= PROFILE_MIN_RATINGS
    in_genre = by_count[known & member[by_count]][:PROFILE_SIZE]
    unrelated = by_count[known & ~member[by_count]][:PROFILE_SIZE]
    spare = member & (counts >= min_ratings)
    spare[in_genre] = False
    n_spare = int(spare.sum())
    if in_genre.size < PROFILE_SIZE:
        why = f"movies with >= {PROFILE_MIN_RATINGS} training ratings: {in_genre.size} ({PROFILE_SIZE} needed)"
    elif unrelated.size < PROFILE_SIZE:
        why = (
            f"movies outside it with >= {PROFILE_MIN_RATINGS} training ratings: {unrelated.size} "
            f"({PROFILE_SIZE} needed)"
        )
    elif n_spare < SPARE_IN_GENRE:
        why = (
            f"movies with >= {min_ratings} training ratings beside its {PROFILE_SIZE} best known: {n_spare} "
            f"({SPARE_IN_GENRE} needed)"
        )
    else:
        return GenreUsers(genre, in_genre, unrelated)
    return LeftOut(genre, why)


def candidates(counts: np.ndarray, min_ratings: int, rated: np.ndarray) -> np.ndarray:
    """Movies a list may hold: at least ``min_ratings`` training ratings, not rated by the user (bool mask)."""
    allowed = np.asarray(counts) >= min_ratings
    allowed[np.asarray(rated, dtype=np.int64)] = False
    return allowed


def top_of(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The ``LIST_LENGTH`` best-scoring allowed item indices, best first (ties: lower index first)."""
    top = topk_items(np.where(allowed, scores, -np.inf)[None, :], LIST_LENGTH)[0]
    return top[top >= 0]


def ease_lister(ease: Ease, counts: np.ndarray, min_ratings: int, stars: Stars) -> Lister:
    """EASE given the liked movies (those rated ``stars.liked``) as the history; EASE has no dislikes."""

    def lister(rated: Rated) -> np.ndarray:
        items = np.array([item for item, _ in rated], dtype=np.int64)
        liked = np.array([item for item, value in rated if value == stars.liked], dtype=np.int64)
        return top_of(ease.scores_for(liked), candidates(counts, min_ratings, items))

    return lister


def popularity_lister(counts: np.ndarray, min_ratings: int) -> Lister:
    """The most-rated candidates, whatever the stars: the same list for both users of a genre."""
    scores = np.asarray(counts, dtype=np.float64)

    def lister(rated: Rated) -> np.ndarray:
        items = np.array([item for item, _ in rated], dtype=np.int64)
        return top_of(scores, candidates(counts, min_ratings, items))

    return lister


@dataclass(frozen=True)
class ListPair:
    """One model's lists for a genre's two users."""

    liker: np.ndarray
    swapped: np.ndarray
    in_genre: np.ndarray  # bool per item: the genre's movies

    @property
    def liker_count(self) -> int:
        return int(self.in_genre[self.liker].sum())

    @property
    def swapped_count(self) -> int:
        return int(self.in_genre[self.swapped].sum())

    @property
    def overlap(self) -> int:
        return int(np.intersect1d(self.liker, self.swapped).size)

    def to_dict(self, movie_ids: np.ndarray) -> dict[str, Any]:
        return {
            "liker_in_genre": share(self.liker_count, self.liker.size),
            "swapped_in_genre": share(self.swapped_count, self.swapped.size),
            "overlap": self.overlap,
            "liker_list": [int(m) for m in movie_ids[self.liker]],
            "swapped_list": [int(m) for m in movie_ids[self.swapped]],
        }


def share(count: int, length: int) -> float:
    """``count`` of ``length`` as a share (0 for an empty list)."""
    return count / length if length else 0.0


def list_pairs(
    users: GenreUsers, listers: dict[str, Lister], genre_matrix: np.ndarray, column: int, stars: Stars
) -> dict[str, ListPair]:
    """Every lister's lists for one genre's two users."""
    in_genre = np.asarray(genre_matrix[:, column], dtype=bool)
    return {
        name: ListPair(lister(users.liker(stars)), lister(users.swapped(stars)), in_genre)
        for name, lister in listers.items()
    }


def summarise(pairs: Sequence[ListPair]) -> dict[str, float | int]:
    """One lister over every genre: mean shares and overlap, and the liker's lowest in-genre count."""
    return {
        "liker_in_genre_mean": float(np.mean([share(p.liker_count, p.liker.size) for p in pairs])),
        "liker_lowest_count": min(p.liker_count for p in pairs),
        "swapped_in_genre_mean": float(np.mean([share(p.swapped_count, p.swapped.size) for p in pairs])),
        "overlap_mean": float(np.mean([p.overlap for p in pairs])),
    }


def taste_report(
    users: Sequence[GenreUsers],
    listers: dict[str, Lister],
    *,
    genre_matrix: np.ndarray,
    genre_names: Sequence[str],
    movie_ids: np.ndarray,
    stars: Stars,
    min_ratings: int,
    left_out: Sequence[LeftOut] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The protocol's JSON-ready result for at least one genre's users: one object per genre (each lister's
    shares, overlap and lists, by movieId), a summary per lister, the genres left out and notes (e.g. a
    reference model left out)."""
    columns = {name: j for j, name in enumerate(genre_names)}
    genres = []
    by_lister: dict[str, list[ListPair]] = {name: [] for name in listers}
    for user in users:
        pairs = list_pairs(user, listers, genre_matrix, columns[user.genre], stars)
        row: dict[str, Any] = {
            "genre": user.genre,
            "in_genre_movies": [int(m) for m in movie_ids[user.in_genre]],
            "unrelated_movies": [int(m) for m in movie_ids[user.unrelated]],
        }
        for name, pair in pairs.items():
            row[name] = pair.to_dict(movie_ids)
            by_lister[name].append(pair)
        genres.append(row)
    return {
        "protocol": "taste",
        "settings": {
            "profile_size": PROFILE_SIZE,
            "profile_min_ratings": PROFILE_MIN_RATINGS,
            "spare_in_genre": SPARE_IN_GENRE,
            "min_ratings": min_ratings,
            "list_length": LIST_LENGTH,
            "liked_stars": stars.liked,
            "disliked_stars": stars.disliked,
        },
        "genres": genres,
        "summary": {name: summarise(pairs) for name, pairs in by_lister.items()},
        "left_out": [entry.to_dict() for entry in left_out],
        "notes": list(notes),
    }
