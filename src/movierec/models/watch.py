"""The "likely to watch" component of the ranking score, as scoring and fold-in use it.

Star ratings say how much a person liked a movie; the mere fact that they rated it says they chose to watch it.
This component models the second signal (iALS, Hu et al. 2008, in the form of Rendle et al. 2021; the fit is
``movierec.train.watch``): for every user ``x_u`` and movie ``y_i``,

    sum over rated pairs (x_u . y_i - 1)^2 + unobserved * sum over all pairs (x_u . y_i)^2 + reg * (|x|^2 + |y|^2)

The movie vectors learn who watches what (every rating is a watch). A person's vector then carries the sign of
their ratings: a movie they liked has target +1, one they disliked (more than ``margin`` stars below their own
mean rating, shrunk towards the global mean) has target ``dislike`` (negative), so a 1★ pushes the movies watched
alike down and a 5★ pulls them up. ``dislike = 1`` is the sign-blind form of runs written before it existed.

The closed form of one user's ridge regression folds in a new user from their ratings, without retraining.
(Not to be confused with the hybrid's SVD++ term, ``FactorParams.implicit``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models.row_sums import row_sums

MEAN_PRIOR = 5.0
"""Pseudo-ratings at the global mean added to a person's own ratings to find their mean: with few ratings, the
mean that decides "liked" and "disliked" stays near everyone's."""


def shrunk_means(users: np.ndarray, ratings: np.ndarray, n_users: int, global_mean: float) -> np.ndarray:
    """Each of ``n_users`` people's mean rating with ``MEAN_PRIOR`` pseudo-ratings at ``global_mean`` (float64)."""
    totals = row_sums(users, ratings, n_users) + MEAN_PRIOR * global_mean
    return totals / (np.bincount(users, minlength=n_users) + MEAN_PRIOR)


@dataclass(frozen=True)
class Taste:
    """How ratings become targets of a person's watch vector."""

    global_mean: float
    margin: float = 1.0
    """Stars below the person's (shrunk) mean at which a rating counts as disliked."""
    dislike: float = 1.0
    """The target of a disliked movie (a liked or neutral one has 1; 1 here is the sign-blind form)."""

    def targets(self, users: np.ndarray, ratings: np.ndarray, n_users: int) -> np.ndarray:
        """One target per rating: 1, or ``dislike`` where the stars are below the rater's shrunk mean by more
        than ``margin``. ``users`` index ``n_users`` people."""
        thresholds = shrunk_means(users, ratings, n_users, self.global_mean) - self.margin
        disliked = np.asarray(ratings) < thresholds[users]  # float32 stars widen exactly to float64
        return np.where(disliked, np.float32(self.dislike), np.float32(1.0))


def fold_in_watch(
    item_factors: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    taste: Taste,
    reg: float,
    unobserved: float,
    gram: np.ndarray,
    *,
    mean: np.ndarray | None = None,
    unseen: np.ndarray | None = None,
    unseen_weight: float = 1.0,
) -> np.ndarray:
    """A new user's watch vector from their ratings (targets by ``taste``). ``gram`` is
    ``watch_gram(item_factors)``, computed once per model (on a large catalog it is most of the cost).

    ``mean`` (a watch vector, e.g. the trained users' mean) is where the ridge pulls instead of zero, and
    ``unseen`` are movies the person said they have not seen, each an observed zero of weight ``unseen_weight``
    (the adaptive interview's fold-in)."""
    dim = item_factors.shape[1]
    unseen = np.empty(0, np.int64) if unseen is None else np.asarray(unseen, np.int64)
    if dim == 0 or (items.size == 0 and unseen.size == 0 and mean is None):
        return np.zeros(dim, np.float32)
    chosen = item_factors[items].astype(np.float64)
    absent = item_factors[unseen].astype(np.float64)
    targets = taste.targets(np.zeros(items.size, np.int64), ratings, 1).astype(np.float64)
    lhs = chosen.T @ chosen + unseen_weight * (absent.T @ absent) + unobserved * gram + reg * np.eye(dim)
    rhs = chosen.T @ targets if mean is None else chosen.T @ targets + reg * mean
    return np.linalg.solve(lhs, rhs).astype(np.float32)


def watch_gram(item_factors: np.ndarray) -> np.ndarray:
    """``item_factors.T @ item_factors`` in float64: the "every movie unobserved" part of every fold-in."""
    return item_factors.T.astype(np.float64) @ item_factors.astype(np.float64)
