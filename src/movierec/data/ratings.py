"""The one ratings container every other part of movierec speaks.

Ratings are stored as contiguous int32 user and item indices, float32 ratings and int64 timestamps.
Two ``Vocabulary`` objects map raw MovieLens ids to indices and back; only the edges (CLI, API, reports)
speak raw ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from movierec.errors import DataError

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Vocabulary:
    """Sorted raw ids; an id's index is its position."""

    ids: np.ndarray  # int64, sorted, unique

    @classmethod
    def from_ids(cls, *id_arrays: np.ndarray) -> Vocabulary:
        arrays = [np.asarray(a, dtype=np.int64) for a in id_arrays]
        merged = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
        return cls(np.unique(merged))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index(self, raw_ids: np.ndarray | list[int]) -> np.ndarray:
        """Indices of ``raw_ids``; ``-1`` for ids not in the vocabulary."""
        raw = np.asarray(raw_ids, dtype=np.int64)
        if len(self) == 0:
            return np.full(raw.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, raw)
        pos_clipped = np.minimum(pos, len(self) - 1)
        found = self.ids[pos_clipped] == raw
        return np.where(found, pos_clipped, -1).astype(np.int64)

    def index_many(self, raw_ids: np.ndarray) -> np.ndarray:
        """Like ``index`` but fast for long arrays with many repeats: through a table by raw id when the ids are
        non-negative and smaller than their count (MovieLens's: one gather, 0.03 s for 25M ids where hashing takes
        0.5 s; the table is at most half the ids' own size), else hashing once per distinct id."""
        raw = np.asarray(raw_ids, dtype=np.int64)
        if raw.size and len(self) and int(raw.min()) >= 0 and (high := int(raw.max())) < max(raw.size, 1 << 20):
            return self._lookup(high)[raw].astype(np.int64)
        codes, uniques = pd.factorize(raw, sort=False)
        return self.index(np.asarray(uniques, dtype=np.int64))[codes]

    def _lookup(self, high: int) -> np.ndarray:
        """Each raw id from 0 to ``high``'s index, ``-1`` for ids not in the vocabulary (int32)."""
        table = np.full(high + 1, -1, dtype=np.int32)
        inside = (self.ids >= 0) & (self.ids <= high)
        table[self.ids[inside]] = np.flatnonzero(inside)
        return table

    def index_one(self, raw_id: int) -> int | None:
        if not _INT64_MIN <= int(raw_id) <= _INT64_MAX:  # e.g. a user id typed by hand: unknown, not an overflow
            return None
        idx = int(self.index(np.array([raw_id]))[0])
        return None if idx < 0 else idx

    def raw(self, indices: np.ndarray | list[int]) -> np.ndarray:
        return self.ids[np.asarray(indices, dtype=np.int64)]


@dataclass(frozen=True)
class RatingScale:
    """The star scale of a dataset, read from its ratings (never hard-coded)."""

    low: float
    high: float
    step: float

    @classmethod
    def infer(cls, ratings: np.ndarray) -> RatingScale:
        if ratings.size == 0:
            raise DataError("The ratings are empty; at least one rating is needed to infer the rating scale.")
        values = np.asarray(ratings, dtype=np.float64)
        whole = bool(np.all(values == np.round(values)))
        return cls(float(values.min()), float(values.max()), 1.0 if whole else 0.5)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high, "step": self.step}


@dataclass(frozen=True)
class Ratings:
    """Ratings as parallel arrays over shared user and item vocabularies. The arrays are not changed once made:
    a change is a new ``Ratings`` (``take``, ``replace``), which counts its ratings afresh."""

    users: np.ndarray  # int32 user index
    items: np.ndarray  # int32 item index
    ratings: np.ndarray  # float32 stars
    timestamps: np.ndarray  # int64 seconds since the epoch (0 when unknown)
    user_vocab: Vocabulary
    item_vocab: Vocabulary

    def __post_init__(self) -> None:
        n = self.users.shape[0]
        if not (self.items.shape[0] == self.ratings.shape[0] == self.timestamps.shape[0] == n):
            raise ValueError("users, items, ratings and timestamps must have the same length")

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def take(self, selector: np.ndarray) -> Ratings:
        """A subset of rows (boolean mask or integer positions) over the same vocabularies."""
        users = self.users[selector]
        undated = self.timestamps.strides == (0,)  # ``without_timestamps``: the subset has none either
        return Ratings(
            users,
            self.items[selector],
            self.ratings[selector],
            no_timestamps(len(users)) if undated else self.timestamps[selector],
            self.user_vocab,
            self.item_vocab,
        )

    def without_timestamps(self) -> Ratings:
        """These ratings (the same arrays) with every timestamp 0, "unknown", in a read-only view that takes no
        memory, as their subsets (``take``) keep it: for training that reads no dates, 8 bytes a rating less."""
        return replace(self, timestamps=no_timestamps(len(self)))

    def to_frame(self, raw_ids: bool = True) -> pd.DataFrame:
        if raw_ids:
            return pd.DataFrame(
                {
                    "userId": self.user_vocab.raw(self.users),
                    "movieId": self.item_vocab.raw(self.items),
                    "rating": self.ratings,
                    "timestamp": self.timestamps,
                }
            )
        return pd.DataFrame(
            {"user": self.users, "item": self.items, "rating": self.ratings, "timestamp": self.timestamps}
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        user_vocab: Vocabulary | None = None,
        item_vocab: Vocabulary | None = None,
    ) -> Ratings:
        """Build from raw-id columns ``userId, movieId, rating[, timestamp]``.

        Without vocabularies they are built from the frame. With vocabularies, rows whose ids are missing from
        them raise a ``DataError``. The arrays are copies, never views of the frame's columns (which may live in
        Arrow's memory, which keeps what is freed to it).
        """
        user_raw = frame["userId"].to_numpy(dtype=np.int64)
        item_raw = frame["movieId"].to_numpy(dtype=np.int64)
        user_vocab = user_vocab or Vocabulary.from_ids(pd.unique(user_raw))
        item_vocab = item_vocab or Vocabulary.from_ids(pd.unique(item_raw))
        users = user_vocab.index_many(user_raw)
        items = item_vocab.index_many(item_raw)
        if (users < 0).any() or (items < 0).any():
            raise DataError("Some ratings name users or movies that are not in the vocabulary.")
        stamps = (
            frame["timestamp"].to_numpy(dtype=np.int64, copy=True)
            if "timestamp" in frame
            else np.zeros(len(frame), dtype=np.int64)
        )
        return cls(
            users.astype(np.int32),
            items.astype(np.int32),
            frame["rating"].to_numpy(dtype=np.float32, copy=True),
            stamps,
            user_vocab,
            item_vocab,
        )

    def user_counts(self) -> np.ndarray:
        """Ratings per user index [n_users], counted once: a read-only array (copy it to change it)."""
        return self._user_counts

    def item_counts(self) -> np.ndarray:
        """Ratings per item index [n_items], counted once: a read-only array (copy it to change it)."""
        return self._item_counts

    @functools.cached_property
    def _user_counts(self) -> np.ndarray:
        return _read_only(np.bincount(self.users, minlength=self.n_users))

    @functools.cached_property
    def _item_counts(self) -> np.ndarray:
        return _read_only(np.bincount(self.items, minlength=self.n_items))


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def no_timestamps(n: int) -> np.ndarray:
    """``n`` zero timestamps as one element seen ``n`` times (stride 0)."""
    return np.broadcast_to(np.int64(0), (n,))


MOVIE_COLUMNS = ["movieId", "title", "year", "genres"]


@dataclass
class Dataset:
    """Ratings plus the movies table (one row per item index, in index order) and optional tags."""

    name: str
    ratings: Ratings
    movies: pd.DataFrame  # movieId int64, title str, year Int64 (nullable), genres "A|B" ("" when none)
    tags: pd.DataFrame | None = None  # userId, movieId, tag, timestamp
    scale: RatingScale = field(default_factory=lambda: RatingScale(0.5, 5.0, 0.5))
    n_movies_listed: int = 0  # rows of the source movies table (0 when there was none)

    @property
    def item_vocab(self) -> Vocabulary:
        return self.ratings.item_vocab

    @property
    def user_vocab(self) -> Vocabulary:
        return self.ratings.user_vocab

    def genre_lists(self) -> list[list[str]]:
        return [g.split("|") if g else [] for g in self.movies["genres"].tolist()]

    def all_genres(self) -> list[str]:
        return sorted({g for genres in self.genre_lists() for g in genres})
