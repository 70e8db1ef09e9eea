"""EASE (Steck 2019): the closed-form item-item model, movierec's yardstick for top-N lists.

``B = argmin |X - X B|^2 + lam |B|^2`` subject to ``diag(B) = 0``, where ``X`` is the users x movies matrix of
who rated what. Its solution is ``B = I - P / diag(P)`` with ``P = (X^T X + lam I)^-1``, so a user's scores are
``x_u @ B``. It ranks only (no star ratings), and it needs a dense movies x movies inverse: fine for catalogs up
to about ``MAX_ITEMS`` movies (ml-latest-small has 9,724), out of reach for ML-25M's 59,047.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError

DEFAULT_LAMBDA = 500.0
MAX_ITEMS = 20_000
"""The largest catalog EASE is fitted on (a float64 inverse of 20k x 20k takes 3.2 GB)."""


@dataclass(frozen=True)
class Ease:
    """A fitted EASE model over ``n_items`` movies (item indices of the training ratings)."""

    weights: np.ndarray  # float32 [n_items, n_items], zero diagonal
    history: np.ndarray  # float32 [n_users, n_items]: 1 where the user rated the movie in training

    @property
    def n_items(self) -> int:
        return int(self.weights.shape[0])

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of every movie for trained users (higher first): ``[len(users), n_items]``."""
        return self.history[np.asarray(users, dtype=np.int64)] @ self.weights

    def scores_for(self, items: np.ndarray) -> np.ndarray:
        """Scores of every movie for someone whose history is ``items`` (movie indices): ``[n_items]``."""
        items = np.unique(np.asarray(items, dtype=np.int64))
        return self.weights[items].sum(axis=0) if items.size else np.zeros(self.n_items, np.float32)


_last_fit: tuple[str, Ease] | None = None


def fit_ease(train: Ratings, lam: float = DEFAULT_LAMBDA) -> Ease:
    """Fit EASE on who rated what in ``train`` (any rating counts, as in Steck 2019).

    The last fit is kept: a sweep or a notebook that trains several models on the same split pays for the
    inverse once (the key is a hash of who rated what, so a different split fits again)."""
    if train.n_items > MAX_ITEMS:
        raise MovieRecError(
            f"EASE needs a movies x movies inverse; the catalog has {train.n_items:,} movies, more than the "
            f"{MAX_ITEMS:,} it is fitted on. Leave EASE out for this data."
        )
    if lam <= 0:
        raise MovieRecError(f"The EASE penalty {lam} is not positive; use a value > 0, e.g. {DEFAULT_LAMBDA:g}.")
    global _last_fit
    key = _fingerprint(train, lam)
    if _last_fit is not None and _last_fit[0] == key:
        return _last_fit[1]
    history = np.zeros((train.n_users, train.n_items), np.float32)
    history[train.users, train.items] = 1.0
    gram = (history.T @ history).astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = (inverse / -np.diag(inverse)).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    weights.setflags(write=False)  # the fit is shared by later calls on the same split: nobody may change it
    history.setflags(write=False)
    _last_fit = (key, Ease(weights, history))
    return _last_fit[1]


def _fingerprint(train: Ratings, lam: float) -> str:
    digest = hashlib.sha256(f"{train.n_users},{train.n_items},{lam!r}".encode())
    digest.update(np.ascontiguousarray(train.users).tobytes())
    digest.update(np.ascontiguousarray(train.items).tobytes())
    return digest.hexdigest()
