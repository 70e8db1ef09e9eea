"""Baselines in closed form: the global mean, and regularised user and item biases."""

from __future__ import annotations

import numpy as np

from movierec.data.ratings import Ratings, RatingScale
from movierec.models.factors import FactorParams
from movierec.models.row_sums import gathered_row_sums, row_sums


def global_mean_params(train: Ratings, scale: RatingScale) -> FactorParams:
    """Predict the mean training rating for everyone."""
    mean = float(train.ratings.mean())
    return bias_only_params(train, scale, mean, np.zeros(train.n_users), np.zeros(train.n_items), popular=True)


def bias_params(
    train: Ratings, scale: RatingScale, user_reg: float = 5.0, item_reg: float = 5.0, passes: int = 10
) -> FactorParams:
    """``mean + b_u + b_i`` by alternating regularised least squares (a few passes converge)."""
    user_bias, item_bias, mean = fit_biases(train, user_reg, item_reg, passes)
    return bias_only_params(train, scale, mean, user_bias, item_bias, popular=True)


def fit_biases(
    train: Ratings, user_reg: float = 5.0, item_reg: float = 5.0, passes: int = 10
) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternate ``b_i = sum(r - mean - b_u) / (reg + n_i)`` and the same for users. The sums of ``r - mean`` are
    made once: a pass then sums only the other side's biases (one ``gathered_row_sums`` per side, where subtracting
    them from every rating first cost a third more)."""
    mean = float(train.ratings.mean())
    residual_base = train.ratings.astype(np.float64) - mean
    item_base = row_sums(train.items, residual_base, train.n_items)
    user_base = row_sums(train.users, residual_base, train.n_users)
    del residual_base
    item_room = item_reg + train.item_counts()
    user_room = user_reg + train.user_counts()
    user_bias = np.zeros(train.n_users)
    item_bias = np.zeros(train.n_items)
    for _ in range(passes):
        item_bias = (item_base - gathered_row_sums(train.items, train.users, user_bias, train.n_items)) / item_room
        user_bias = (user_base - gathered_row_sums(train.users, train.items, item_bias, train.n_users)) / user_room
    return user_bias.astype(np.float32), item_bias.astype(np.float32), mean


def bias_only_params(
    train: Ratings,
    scale: RatingScale,
    mean: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    *,
    item_known: np.ndarray | None = None,
    popular: bool = False,
) -> FactorParams:
    """``mean + b_u + b_i`` as a snapshot with zero-width factors, for the users and movies of ``train``.

    ``item_known``: the movies with a bias (default: those with a training rating). ``popular``: carry the
    popularity prior, for a ranking score that can weigh it in.
    """
    return FactorParams(
        global_mean=mean,
        user_bias=user_bias.astype(np.float32),
        item_bias=item_bias.astype(np.float32),
        user_factors=np.zeros((train.n_users, 0), np.float32),
        item_factors=np.zeros((train.n_items, 0), np.float32),
        low=scale.low,
        high=scale.high,
        user_known=train.user_counts() > 0,
        item_known=train.item_counts() > 0 if item_known is None else item_known,
        item_prior=popularity_prior(train) if popular else np.empty(0, np.float32),
    )


def popularity_prior(train: Ratings) -> np.ndarray:
    """``log(1 + count) / log(1 + max count)``: how likely a movie is to be watched at all, in [0, 1]."""
    counts = train.item_counts().astype(np.float64)
    top = np.log1p(counts.max()) if counts.size and counts.max() > 0 else 1.0
    return (np.log1p(counts) / top).astype(np.float32)
