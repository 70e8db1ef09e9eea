"""Seeded, pure train/test splits over a ``Ratings`` container.

Every function returns ``Split(train, test)``: two ``Ratings`` over the same vocabularies whose rows together
are exactly the input's rows (none lost, none duplicated), each side keeping the input's row order. Everything
is vectorised (one sort at most), so the splits run in seconds on 25M ratings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError


@dataclass(frozen=True)
class Split:
    """A training side and a test side over the same vocabularies."""

    train: Ratings
    test: Ratings

    def __iter__(self) -> Iterator[Ratings]:
        """Allow ``train, test = split``."""
        yield self.train
        yield self.test


def split_by_mask(ratings: Ratings, test_mask: np.ndarray) -> Split:
    """Rows where ``test_mask`` is true go to test, the others to train."""
    mask = np.asarray(test_mask, dtype=bool)
    if mask.shape != (len(ratings),):
        raise MovieRecError(
            f"The test mask has shape {mask.shape}; it must have one entry per rating, shape ({len(ratings)},)."
        )
    return Split(train=ratings.take(~mask), test=ratings.take(mask))


def random_split(ratings: Ratings, test_fraction: float = 0.1, seed: int = 0) -> Split:
    """Send a uniformly random ``test_fraction`` of the ratings to test.

    The test size is rounded half up and kept to at least one rating on each side; a lone rating stays in
    train.
    """
    _check_fraction("test_fraction", test_fraction)
    rng = _rng(seed)
    n = len(ratings)
    n_test = _count_from_fraction(n, test_fraction)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[:n_test]] = True
    return split_by_mask(ratings, mask)


def validation_split(ratings: Ratings, fraction: float = 0.05, seed: int = 0) -> Split:
    """Carve a random validation set out of training data (for early stopping).

    Identical to ``random_split``; the returned ``test`` side is the validation set and ``train`` the rest.
    """
    _check_fraction("fraction", fraction)
    return random_split(ratings, test_fraction=fraction, seed=seed)


def user_temporal_split(ratings: Ratings, *, last_k: int | None = None, last_fraction: float | None = None) -> Split:
    """Send each user's latest ratings to test: the last ``last_k``, or the last ``last_fraction`` of them.

    Ratings are ordered per user by timestamp, ties broken by row position (a stable sort). Every user keeps
    at least one training rating, so a user with a single rating stays wholly in train. With ``last_fraction``
    the per-user count is rounded half up and is at least one for users with two or more ratings.
    """
    if (last_k is None) == (last_fraction is None):
        raise MovieRecError("Give exactly one of last_k or last_fraction to user_temporal_split, not both or none.")
    _check_last(last_k, last_fraction)
    n = len(ratings)
    order = _user_time_order(ratings)
    sorted_users = ratings.users[order]
    counts = np.bincount(sorted_users, minlength=ratings.n_users).astype(np.int64)
    n_test = _per_user_test_counts(counts, last_k, last_fraction)
    starts = np.cumsum(counts) - counts
    position = np.arange(n, dtype=np.int64) - starts[sorted_users]
    from_end = counts[sorted_users] - 1 - position
    mask = np.zeros(n, dtype=bool)
    mask[order] = from_end < n_test[sorted_users]
    return split_by_mask(ratings, mask)


def global_temporal_split(ratings: Ratings, cut_timestamp: int) -> Split:
    """Ratings with ``timestamp >= cut_timestamp`` go to test, earlier ones to train."""
    if isinstance(cut_timestamp, bool) or not isinstance(cut_timestamp, Integral):
        raise MovieRecError(
            f"cut_timestamp must be an integer number of seconds since the epoch; got {cut_timestamp!r}."
        )
    return split_by_mask(ratings, ratings.timestamps >= int(cut_timestamp))


def kfold_splits(ratings: Ratings, k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` splits whose test sides partition the ratings into near-equal random folds."""
    n = len(ratings)
    if isinstance(k, bool) or not isinstance(k, Integral) or not 2 <= k <= max(n, 2):
        raise MovieRecError(f"k must be an integer from 2 to the number of ratings ({max(n, 2)}); got {k!r}.")
    rng = _rng(seed)
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n, dtype=np.int64) % int(k)
    return [split_by_mask(ratings, fold == i) for i in range(int(k))]


def holdout_users(
    ratings: Ratings, n_users: int | None = None, *, fraction: float | None = None, seed: int = 0
) -> Split:
    """Remove a random set of users from training entirely; test holds all of their ratings.

    Choose ``n_users`` users, or ``fraction`` of the users who have ratings (rounded, at least one, and at
    least one user left in train). Only users with at least one rating are drawn.
    """
    held = _holdout_mask(ratings.users, ratings.n_users, n_users, fraction, seed, "n_users", "users")
    return split_by_mask(ratings, held)


def holdout_items(
    ratings: Ratings, n_items: int | None = None, *, fraction: float | None = None, seed: int = 0
) -> Split:
    """Remove a random set of movies from training entirely; test holds all of their ratings.

    Choose ``n_items`` movies, or ``fraction`` of the movies that have ratings (rounded, at least one, and at
    least one movie left in train). Only movies with at least one rating are drawn.
    """
    held = _holdout_mask(ratings.items, ratings.n_items, n_items, fraction, seed, "n_items", "movies")
    return split_by_mask(ratings, held)


def _holdout_mask(
    keys: np.ndarray,
    vocab_size: int,
    count: int | None,
    fraction: float | None,
    seed: int,
    count_name: str,
    noun: str,
) -> np.ndarray:
    """Mark every row whose key is in a random subset of the keys present in ``keys``."""
    if (count is None) == (fraction is None):
        raise MovieRecError(f"Give exactly one of {count_name} or fraction, not both or none.")
    rng = _rng(seed)
    present = np.flatnonzero(np.bincount(keys, minlength=vocab_size) > 0)
    if present.size < 2:
        raise MovieRecError(
            f"Holding out {noun} needs at least 2 {noun} with ratings, one on each side; got {present.size}."
        )
    if fraction is not None:
        _check_fraction("fraction", fraction)
        n_held = _count_from_fraction(present.size, fraction)
    else:
        n_held = _check_holdout_count(count_name, count, present.size, noun)
    chosen = np.zeros(vocab_size, dtype=bool)
    chosen[rng.choice(present, size=n_held, replace=False)] = True
    mask: np.ndarray = chosen[keys]
    return mask


def _user_time_order(ratings: Ratings) -> np.ndarray:
    """Row order by user, then timestamp, then position (one stable sort of a packed key when it fits)."""
    stamps = ratings.timestamps
    if stamps.size and int(stamps.max()) - int(stamps.min()) < 2**32:
        key = (ratings.users.astype(np.int64) << 32) | (stamps - stamps.min())
        order: np.ndarray = np.argsort(key, kind="stable")
        return order
    return np.lexsort((stamps, ratings.users))


def _per_user_test_counts(counts: np.ndarray, last_k: int | None, last_fraction: float | None) -> np.ndarray:
    """How many of each user's ratings go to test, keeping at least one in train."""
    room = np.maximum(counts - 1, 0)
    if last_k is not None:
        return np.minimum(int(last_k), room)
    assert last_fraction is not None
    wanted = np.floor(counts * float(last_fraction) + 0.5).astype(np.int64)
    return np.minimum(np.maximum(wanted, 1), room)


def _check_last(last_k: int | None, last_fraction: float | None) -> None:
    if last_k is not None and (isinstance(last_k, bool) or not isinstance(last_k, Integral) or last_k < 1):
        raise MovieRecError(f"last_k must be an integer of at least 1; got {last_k!r}.")
    if last_fraction is not None:
        _check_fraction("last_fraction", last_fraction)


def _count_from_fraction(n: int, fraction: float) -> int:
    """``round(n * fraction)`` (half up) kept within ``[1, n - 1]``; zero when ``n < 2``."""
    if n < 2:
        return 0
    return min(max(math.floor(n * fraction + 0.5), 1), n - 1)


def _check_holdout_count(name: str, count: int | None, available: int, noun: str) -> int:
    if isinstance(count, bool) or not isinstance(count, Integral) or not 1 <= count <= available - 1:
        raise MovieRecError(
            f"{name} must be an integer from 1 to {available - 1} (one fewer than the {noun} with ratings); "
            f"got {count!r}."
        )
    return int(count)


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise MovieRecError(f"{name} must be a number strictly between 0 and 1; got {value!r}.")


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise MovieRecError(f"seed must be a non-negative integer; got {seed!r}.")
    return np.random.default_rng(int(seed))
