"""The "likely to watch" component of the ranking score, as scoring and fold-in use it.

Star ratings say how much a person liked a movie; the mere fact that they rated it says they chose to watch it.
This component models the second signal (iALS, Hu et al. 2008, in the form of Rendle et al. 2021; the fit is
``movierec.train.watch``): for every user ``x_u`` and movie ``y_i``,

    sum over rated pairs (x_u . y_i - 1)^2 + unobserved * sum over all pairs (x_u . y_i)^2 + reg * (|x|^2 + |y|^2)

The closed form of one user's ridge regression folds in a new user from the set of movies they rated, without
retraining. (Not to be confused with the hybrid's SVD++ term, ``FactorParams.implicit``.)
"""

from __future__ import annotations

import numpy as np


def fold_in_watch(
    item_factors: np.ndarray, items: np.ndarray, reg: float, unobserved: float, gram: np.ndarray
) -> np.ndarray:
    """A new user's watch vector from the movies they rated (any rating counts). ``gram`` is
    ``watch_gram(item_factors)``, computed once per model (on a large catalog it is most of the cost)."""
    dim = item_factors.shape[1]
    if items.size == 0 or dim == 0:
        return np.zeros(dim, np.float32)
    chosen = item_factors[items].astype(np.float64)
    lhs = chosen.T @ chosen + unobserved * gram + reg * np.eye(dim)
    return np.linalg.solve(lhs, chosen.sum(axis=0)).astype(np.float32)


def watch_gram(item_factors: np.ndarray) -> np.ndarray:
    """``item_factors.T @ item_factors`` in float64: the "every movie unobserved" part of every fold-in."""
    return item_factors.T.astype(np.float64) @ item_factors.astype(np.float64)
