"""Time effects on the biases (Koren's timeSVD++ biases): a movie bias per time bin and a drifting user bias.

``b_i(t) = b_i + b_{i, bin(t)}``, with ``N_BINS`` equal bins over the span of the training dates, and ``b_u(t) =
b_u + a_u dev_u(t)`` with ``dev_u(t) = sign(d - m_u) |d - m_u|^DRIFT_POWER``: ``d`` is the date in days, clamped to
the user's own span of training dates (a drift is not extrapolated beyond it), ``m_u`` their mean date.

The exported model (``FactorParams``) serves what a prediction without a date gets: the date of the latest training
rating, so the latest bin and each user's last training date. Those terms are folded into ``item_bias`` and
``user_bias``, so every score that takes no date (lists, fold-in of a new user, explanations) is the model at that
date; ``dated_shift`` adds what a given date changes, for ``FactorModel.predict`` with timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 30
"""Movie-bias bins over the span of the training dates (Koren used 30 on Netflix)."""
DRIFT_POWER = 0.4
"""Koren's exponent ``beta`` of ``dev_u(t)``."""
DAY = 86_400.0


@dataclass(frozen=True)
class TimeAxis:
    """The bins over ``[start, end]`` (seconds since the epoch) and each user's dates (days: mean, first, last)."""

    start: float
    end: float
    n_bins: int
    user_days: np.ndarray  # float64 [n_users, 3]: mean, first and last training date, in days

    @classmethod
    def of(cls, users: np.ndarray, timestamps: np.ndarray, n_users: int, n_bins: int = N_BINS) -> TimeAxis:
        """The axis of training ratings ``(users, timestamps)``; users without ratings get zeros."""
        stamps = np.asarray(timestamps, np.float64)
        days = stamps / DAY
        counts = np.bincount(users, minlength=n_users)
        mean = np.bincount(users, days, minlength=n_users) / np.maximum(counts, 1)
        first, last = np.zeros(n_users), np.zeros(n_users)
        if stamps.size:
            first[:] = np.inf
            last[:] = -np.inf
            np.minimum.at(first, users, days)
            np.maximum.at(last, users, days)
            rated = counts > 0
            first, last = np.where(rated, first, 0.0), np.where(rated, last, 0.0)
        start, end = (float(stamps.min()), float(stamps.max())) if stamps.size else (0.0, 0.0)
        return cls(start, end, n_bins, np.stack([mean, first, last], 1))

    def bins(self, timestamps: np.ndarray) -> np.ndarray:
        """Each date's bin (int64); dates outside the span fall in the first or last bin."""
        return bin_of(np.asarray(timestamps, np.float64), self.start, self.end, self.n_bins)

    def drift(self, users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """``dev_u(t)`` of each ``(user, date)`` pair (float64)."""
        return deviation(self.user_days[np.asarray(users, np.int64)], np.asarray(timestamps, np.float64))

    def drift_at_last(self) -> np.ndarray:
        """``dev_u`` at each user's last training date (what a prediction without a date uses)."""
        return deviation(self.user_days, self.user_days[:, 2] * DAY)


def bin_of(timestamps: np.ndarray, start: float, end: float, n_bins: int) -> np.ndarray:
    width = (end - start) / n_bins
    if width <= 0:
        return np.zeros(timestamps.shape, np.int64)
    return np.clip(np.floor((timestamps - start) / width), 0, n_bins - 1).astype(np.int64)


def deviation(user_days: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """``sign(d - m) |d - m|^DRIFT_POWER`` for rows ``[m, first, last]`` of ``user_days`` and dates ``timestamps``."""
    mean, first, last = user_days[:, 0], user_days[:, 1], user_days[:, 2]
    gap = np.clip(timestamps / DAY, first, last) - mean
    return np.sign(gap) * np.abs(gap) ** DRIFT_POWER


def dated_shift(
    span: np.ndarray,
    item_time_bias: np.ndarray,
    user_drift: np.ndarray,
    user_days: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    timestamps: np.ndarray,
) -> np.ndarray:
    """What dating each ``(user, item)`` pair at ``timestamps`` (seconds; 0 or less: no date) adds to the model's
    undated rating: the movie's bin bias less its latest bin's, and the user's drift less its value at their last
    date. A user or item index of -1 (one the model does not know) adds nothing of its side."""
    stamps = np.asarray(timestamps, np.float64)
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    shift = np.zeros(stamps.shape, np.float64)
    if item_time_bias.size:
        bins = bin_of(stamps, float(span[0]), float(span[1]), item_time_bias.shape[1])
        shift += np.where((stamps > 0) & (items >= 0), item_time_bias[np.maximum(items, 0), bins], 0.0)
    if user_drift.size:
        days = user_days[np.maximum(users, 0)]
        moved = deviation(days, stamps) - deviation(days, days[:, 2] * DAY)
        shift += np.where((stamps > 0) & (users >= 0), user_drift[np.maximum(users, 0)] * moved, 0.0)
    return shift
