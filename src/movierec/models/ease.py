"""EASE (Steck 2019): the closed-form item-item model, movierec's yardstick for top-N lists.

``B = argmin |X - X B|^2 + lam |B|^2`` subject to ``diag(B) = 0``, where ``X`` is the users x movies matrix of
who rated what. Its solution is ``B = I - P / diag(P)`` with ``P = (X^T X + lam I)^-1``, so a user's scores are
``x_u @ B``. It ranks only (no star ratings), and it needs a dense movies x movies inverse: fine for catalogs up
to about ``MAX_ITEMS`` movies (ml-latest-small has 9,724), out of reach for ML-25M's 59,047.

``X^T X + lam I`` is symmetric positive definite, so ``P`` comes from its Cholesky factor (LAPACK ``potrf`` and
``potri``, about n^3 flops against ``inv``'s 2 n^3) in float32, and ``X^T X`` from the sparse ``X``: on
ml-latest-small the fit takes seconds, and it never holds a dense users x movies matrix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError

DEFAULT_LAMBDA = 500.0
MAX_ITEMS = 20_000
"""The largest catalog EASE is fitted on (a float32 inverse of 20k x 20k takes 1.6 GB)."""


@dataclass(frozen=True)
class Ease:
    """A fitted EASE model over ``n_items`` movies (item indices of the training ratings)."""

    weights: np.ndarray  # float32 [n_items, n_items], zero diagonal
    history: sparse.csr_array  # float32 [n_users, n_items]: 1 where the user rated the movie in training

    @property
    def n_items(self) -> int:
        return int(self.weights.shape[0])

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of every movie for trained users (higher first): ``[len(users), n_items]``."""
        return np.asarray(self.history[np.asarray(users, dtype=np.int64)] @ self.weights)

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
    history = sparse.csr_array(
        (np.ones(len(train), np.float32), (train.users, train.items)), shape=(train.n_users, train.n_items)
    )
    history.sum_duplicates()
    history.data[:] = 1.0  # who rated what, once each
    gram = (history.T @ history).toarray().astype(np.float32, copy=False)
    gram[np.diag_indices_from(gram)] += lam
    weights = _inverse_spd(gram)
    weights /= -np.diag(weights).copy()
    np.fill_diagonal(weights, 0.0)
    weights.setflags(write=False)  # the fit is shared by later calls on the same split: nobody may change it
    _last_fit = (key, Ease(weights, history))
    return _last_fit[1]


def _inverse_spd(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float32 matrix, by its Cholesky factor (overwrites it)."""
    factor, info = lapack.spotrf(matrix, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = lapack.spotri(factor, lower=True, overwrite_c=True)
    if info != 0:  # cannot happen with lam > 0; a clear failure rather than a wrong model if it does
        raise np.linalg.LinAlgError(f"EASE's Gram matrix is not positive definite (LAPACK info {info}).")
    return _mirror_lower(inverse)


def _mirror_lower(matrix: np.ndarray, block: int = 1024) -> np.ndarray:
    """``matrix`` with its upper triangle set from its lower one, in place, a block of rows at a time (no
    second n x n array: at ``MAX_ITEMS`` that would be another 1.6 GB)."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        end = min(start + block, n)
        square = matrix[start:end, start:end]
        square[:] = np.tril(square) + np.tril(square, -1).T
        matrix[start:end, end:] = matrix[end:, start:end].T
    return matrix


def _fingerprint(train: Ratings, lam: float) -> str:
    digest = hashlib.sha256(f"{train.n_users},{train.n_items},{lam!r}".encode())
    digest.update(np.ascontiguousarray(train.users).tobytes())
    digest.update(np.ascontiguousarray(train.items).tobytes())
    return digest.hexdigest()
