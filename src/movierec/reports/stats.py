"""Pure numbers behind the EDA report: popularity concentration and the headline table.

Everything here takes arrays and returns numbers; nothing draws or writes files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from movierec.data.ratings import Ratings

TOP_FRACTIONS = (0.01, 0.10, 0.20)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts`` (0 = all equal, → 1 = one item takes everything).

    The standard population formula over the values sorted ascending, ``x_1 <= ... <= x_n``::

        G = sum_i (2i - n - 1) x_i / (n * sum_i x_i)     (i = 1..n)

    which equals the mean absolute difference over all ordered pairs divided by twice the mean, with no
    ``n / (n - 1)`` small-sample correction: ``gini([0, 0, 0, 10]) == 0.75``. Empty or all-zero counts give 0.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    n = x.shape[0]
    total = float(x.sum())
    if n == 0 or total == 0.0:
        return 0.0
    if x[0] < 0:
        raise ValueError("gini needs non-negative counts")
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0
    return float(weights @ x / (n * total))


def top_k(n: int, fraction: float) -> int:
    """How many of ``n`` items make up the top ``fraction``: ``ceil(fraction * n)``, at least 1 when n > 0."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    if n == 0:
        return 0
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


def top_share(counts: np.ndarray, fraction: float) -> float:
    """Share of the total taken by the ``top_k(n, fraction)`` largest counts (0 when the total is 0)."""
    x = np.asarray(counts, dtype=np.float64).ravel()
    total = float(x.sum())
    k = top_k(x.shape[0], fraction)
    if k == 0 or total == 0.0:
        return 0.0
    top = np.partition(x, x.shape[0] - k)[x.shape[0] - k :]
    return float(top.sum() / total)


@dataclass(frozen=True)
class Headline:
    """The headline numbers of a ratings set (movies counted over rated movies unless named 'catalog')."""

    n_ratings: int
    n_users: int
    n_rated_movies: int
    n_catalog: int
    density: float
    mean_rating: float
    first_day: str | None
    last_day: str | None
    gini: float
    top_shares: dict[float, float]

    def rows(self) -> list[tuple[str, str]]:
        """``(label, formatted value)`` pairs for a table."""
        span = f"{self.first_day} to {self.last_day}" if self.first_day else "no timestamps"
        rows = [
            ("ratings", f"{self.n_ratings:,}"),
            ("users", f"{self.n_users:,}"),
            ("rated movies", f"{self.n_rated_movies:,}"),
            ("movies in catalog", f"{self.n_catalog:,}"),
            ("density (ratings / users × rated movies)", f"{self.density:.4%}"),
            ("mean rating", f"{self.mean_rating:.3f}"),
            ("time span", span),
            ("Gini of ratings per rated movie", f"{self.gini:.3f}"),
        ]
        for fraction, share in self.top_shares.items():
            rows.append((f"share of ratings on the top {fraction:.0%} of movies", f"{share:.1%}"))
        return rows


def headline(ratings: Ratings, n_catalog: int) -> Headline:
    """Headline numbers of ``ratings``; ``n_catalog`` is the size of the movies table."""
    user_counts = ratings.user_counts()
    item_counts = ratings.item_counts()
    rated = item_counts[item_counts > 0]
    n_users = int(np.count_nonzero(user_counts))
    first, last = time_span(ratings.timestamps)
    return Headline(
        n_ratings=len(ratings),
        n_users=n_users,
        n_rated_movies=int(rated.shape[0]),
        n_catalog=int(n_catalog),
        density=len(ratings) / max(1, n_users * rated.shape[0]),
        mean_rating=float(ratings.ratings.mean(dtype=np.float64)) if len(ratings) else float("nan"),
        first_day=_iso_day(first),
        last_day=_iso_day(last),
        gini=gini(rated),
        top_shares={f: top_share(rated, f) for f in TOP_FRACTIONS},
    )


def time_span(timestamps: np.ndarray) -> tuple[int | None, int | None]:
    """Earliest and latest known timestamp (0 means unknown), or ``(None, None)``."""
    known = timestamps[timestamps > 0]
    if known.size == 0:
        return None, None
    return int(known.min()), int(known.max())


def _iso_day(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).date().isoformat()


# ------------------------------------------------------------------------------------------ figure aggregates


def rating_histogram(ratings: np.ndarray, low: float, high: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Star values ``low, low+step, ..., high`` and how many ratings fall on each (nearest value)."""
    n_values = round((high - low) / step) + 1
    values = low + step * np.arange(n_values, dtype=np.float64)
    index = np.rint((np.asarray(ratings, dtype=np.float32) - low) / step).astype(np.int32)
    np.clip(index, 0, n_values - 1, out=index)
    return values, np.bincount(index, minlength=n_values)


def rank_by_count(counts: np.ndarray) -> np.ndarray:
    """Each entity's rank when sorted by count, largest first (ties by index): rank 0 = most frequent."""
    order = np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0])
    return rank


def density_grid(
    users: np.ndarray, items: np.ndarray, user_counts: np.ndarray, item_counts: np.ndarray, bins: int = 200
) -> np.ndarray:
    """Share of user × movie pairs rated, in blocks of users (rows, most active first) × movies (columns,
    most popular first), over rated users and movies only; at most ``bins`` blocks each way."""
    n_u = int(np.count_nonzero(user_counts))
    n_i = int(np.count_nonzero(item_counts))
    if n_u == 0 or n_i == 0:
        return np.zeros((0, 0))
    b_u, b_i = min(bins, n_u), min(bins, n_i)
    user_bin = _block_of(user_counts, n_u, b_u)
    item_bin = _block_of(item_counts, n_i, b_i)
    cell = user_bin[users] * np.int32(b_i) + item_bin[items]
    grid = np.bincount(cell, minlength=b_u * b_i).reshape(b_u, b_i).astype(np.float64)
    rows = np.bincount(user_bin[user_counts > 0], minlength=b_u)
    cols = np.bincount(item_bin[item_counts > 0], minlength=b_i)
    return grid / np.outer(rows, cols)


def _block_of(counts: np.ndarray, n_rated: int, blocks: int) -> np.ndarray:
    """Block number (int32) of each entity by popularity rank; unrated entities get the last block."""
    rank = np.minimum(rank_by_count(counts), n_rated - 1)
    return (rank * blocks // n_rated).astype(np.int32)


def item_means(ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """Per rated movie: number of ratings and mean rating (unrated movies left out)."""
    counts = ratings.item_counts()
    sums = np.bincount(ratings.items, weights=ratings.ratings, minlength=ratings.n_items)
    rated = counts > 0
    return counts[rated], sums[rated] / counts[rated]


def binned_mean(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` within each ``[edges[j], edges[j+1])`` bin of ``x``, and the bins' geometric centres;
    empty bins are dropped."""
    which = np.searchsorted(edges, x, side="right") - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    n_bins = len(edges) - 1
    counts = np.bincount(which[inside], minlength=n_bins)
    sums = np.bincount(which[inside], weights=y[inside], minlength=n_bins)
    centres = np.sqrt(edges[:-1] * edges[1:])
    keep = counts > 0
    return centres[keep], sums[keep] / counts[keep]


def log_edges(values: np.ndarray, n_bins: int = 40) -> np.ndarray:
    """Logarithmically spaced bin edges covering positive ``values`` (integers land inside a bin)."""
    positive = values[values > 0]
    low = float(positive.min()) if positive.size else 1.0
    high = float(positive.max()) if positive.size else 1.0
    return np.geomspace(low, high * 1.0001 + 1e-9, n_bins + 1)


SECONDS_PER_DAY = 86_400


def monthly_counts(timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar months (``datetime64[M]``) from the first to the last known timestamp, and ratings in each.

    Counts by day with one bincount, then folds days into months, so it stays fast on tens of millions.
    """
    known = timestamps[timestamps > 0]
    if known.size == 0:
        return np.empty(0, dtype="datetime64[M]"), np.empty(0, dtype=np.int64)
    days = known // SECONDS_PER_DAY
    first = int(days.min())
    day_counts = np.bincount(days - first)
    del known, days
    day_dates = (first + np.arange(day_counts.shape[0])).astype("datetime64[D]")
    month_index = day_dates.astype("datetime64[M]").astype(np.int64)
    month_index -= month_index[0]
    counts = np.bincount(month_index, weights=day_counts).astype(np.int64)
    months = day_dates[0].astype("datetime64[M]") + np.arange(counts.shape[0])
    return months, counts


@dataclass(frozen=True)
class GenreStats:
    """Per genre, sorted by number of movies (largest first)."""

    genres: list[str]
    movies: np.ndarray  # rated movies with the genre
    ratings: np.ndarray  # ratings on those movies
    mean_rating: np.ndarray  # mean over all those ratings (rating-weighted)


def genre_stats(genres: list[str], item_counts: np.ndarray, item_sums: np.ndarray) -> GenreStats:
    """Aggregate per-item counts and rating sums over each item's ``"A|B"`` genres; unrated items skipped.

    ``genres`` is aligned to the item index; an item with several genres counts in each of them.
    """
    item_of: list[int] = []
    names: list[str] = []
    for item, text in enumerate(genres):
        if text and item_counts[item] > 0:
            for name in text.split("|"):
                item_of.append(item)
                names.append(name)
    codes, uniques = pd.factorize(np.asarray(names, dtype=object))
    n_genres = len(uniques)
    items = np.asarray(item_of, dtype=np.int64)
    movies = np.bincount(codes, minlength=n_genres)
    n_ratings = np.bincount(codes, weights=item_counts[items], minlength=n_genres)
    sums = np.bincount(codes, weights=item_sums[items], minlength=n_genres)
    order = np.lexsort((np.asarray(uniques, dtype=str), -movies))
    return GenreStats(
        genres=[str(uniques[j]) for j in order],
        movies=movies[order],
        ratings=n_ratings[order].astype(np.int64),
        mean_rating=(sums / np.maximum(n_ratings, 1))[order],
    )
