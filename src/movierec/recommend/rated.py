"""Who rated what, in compressed-row form: each user's rated movies and stars as one slice of two arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.ratings import Ratings


@dataclass(frozen=True)
class RatedSets:
    """``items[indptr[u]:indptr[u + 1]]`` are the movies user ``u`` rated (sorted), ``ratings`` their stars."""

    indptr: np.ndarray  # int64 [n_users + 1]
    items: np.ndarray  # int32 [n_ratings]
    ratings: np.ndarray  # float32 [n_ratings]

    @classmethod
    def from_ratings(cls, ratings: Ratings) -> RatedSets:
        order = np.lexsort((ratings.items, ratings.users))
        indptr = np.zeros(ratings.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(ratings.users, minlength=ratings.n_users), out=indptr[1:])
        return cls(indptr, ratings.items[order].astype(np.int32), ratings.ratings[order].astype(np.float32))

    @property
    def n_users(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def items_of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def ratings_of(self, user: int) -> np.ndarray:
        return self.ratings[self.indptr[user] : self.indptr[user + 1]]

    def pairs_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row within ``users``, item) of every rating of ``users``, vectorised."""
        users = np.asarray(users, dtype=np.int64)
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        rows = np.repeat(np.arange(users.size, dtype=np.int64), lengths)
        offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.items[np.repeat(starts, lengths) + offsets].astype(np.int64)
