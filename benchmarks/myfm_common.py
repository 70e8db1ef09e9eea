"""myFM, the Bayesian factorization machine of issue 15, on the issue's blocks, for the benchmarks that compare
against it (`bayes.py`, `accuracy.py`).

The blocks: user and movie one-hot, the SVD++-style implicit blocks (the movies a user rated, the users who rated a
movie, each scaled by 1/sqrt(count)) and genres, as myFM relation blocks. myFM trains on all of the training ratings
it is given. Install it with `pip install myfm "setuptools<81"` (it imports pkg_resources); without it `fit_myfm`
returns None and the callers leave its rows out with `MISSING`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from movierec.data.ratings import Dataset, Ratings
from movierec.models.features import build_item_features

MISSING = 'myFM is not installed: pip install myfm "setuptools<81"'
SETTINGS = {"myFM rank 10, 200 sweeps": (10, 200), "myFM rank 20, 300 sweeps": (20, 300)}
"""Row name: (rank, Gibbs sweeps)."""

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def fit_myfm(
    rank: int,
    sweeps: int,
    dataset: Dataset,
    train: Ratings,
    seed: int,
    implicit: bool = True,
    genres: bool = True,
) -> tuple[Predictor, float] | None:
    """myFM fitted on ``train`` with the issue's blocks (less the implicit blocks or the genres when asked, for
    ablations): its predictor over (user, movie) index pairs, clipped to the rating scale, and the seconds the fit
    took; None when myFM is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # myFM imports the deprecated pkg_resources
            import myfm
        from scipy import sparse
    except ImportError:
        return None
    started = time.perf_counter()
    n_users, n_items = train.n_users, train.n_items
    rated = sparse.csr_matrix((np.ones(len(train)), (train.users, train.items)), shape=(n_users, n_items))
    user_scale = 1 / np.sqrt(np.maximum(rated.sum(1).A[:, 0], 1))
    item_scale = 1 / np.sqrt(np.maximum(rated.sum(0).A[0], 1))
    features = build_item_features(dataset, n_items, genres=True, years=False, tags=False)
    genre_matrix = sparse.csr_matrix(
        (features.weights, features.indices, features.indptr), shape=(n_items, features.n_features)
    )
    user_parts = [sparse.identity(n_users), sparse.diags(user_scale) @ rated][: 2 if implicit else 1]
    item_parts = [sparse.identity(n_items), *([sparse.diags(item_scale) @ rated.T] if implicit else [])]
    item_parts += [genre_matrix] if genres else []
    user_block, item_block = (sparse.hstack(parts).tocsr() for parts in (user_parts, item_parts))
    shapes = [part.shape[1] for part in (*user_parts, *item_parts)]

    def blocks(users: np.ndarray, items: np.ndarray) -> list[Any]:
        return [myfm.RelationBlock(users, user_block), myfm.RelationBlock(items, item_block)]

    model = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    model.fit(
        sparse.csr_matrix((len(train), 0)),
        train.ratings,
        X_rel=blocks(train.users, train.items),
        n_iter=sweeps,
        group_shapes=shapes,
    )
    seconds = time.perf_counter() - started

    def predict(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        predicted = model.predict(sparse.csr_matrix((len(users), 0)), X_rel=blocks(users, items))
        return np.clip(predicted, dataset.scale.low, dataset.scale.high)

    return predict, seconds
