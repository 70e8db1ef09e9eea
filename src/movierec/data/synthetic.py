"""Synthetic MovieLens-shaped data: realistic marginals at ML-25M scale, or a known low-rank model.

``generate_ratings`` mimics ML-25M's shape: long-tailed user activity (at least 20 ratings a user at full
scale) and item popularity, unique (user, movie) pairs, half-star ratings with ML's marginal distribution, and
timestamps over 1995–2019. ``generate_low_rank`` draws ratings from ``mean + user bias + item bias + U·Vᵀ +
noise`` without rounding, so the best possible RMSE is exactly known. Raw ids are ``1..n_users`` and
``1..n_items``; every user and every movie has at least one rating. All work is vectorised: 25M ratings take
seconds and well under 2 GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from movierec.atomic import atomic_path
from movierec.data.ratings import Ratings, Vocabulary
from movierec.errors import MovieRecError

ML25M_USERS = 162_541
ML25M_ITEMS = 59_047
ML25M_RATINGS = 25_000_095

GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# Rough share of ML movies carrying each genre (same order as GENRES).
_GENRE_WEIGHTS = (
    0.12, 0.07, 0.04, 0.04, 0.27, 0.09, 0.08, 0.41, 0.05, 0.006,
    0.09, 0.003, 0.02, 0.04, 0.17, 0.06, 0.14, 0.03, 0.02,
)  # fmt: skip
HALF_STARS = np.arange(1, 11, dtype=np.float32) / 2
# ML-25M's share of each half star, 0.5 .. 5.0.
_ML_STAR_SHARES = np.array([0.016, 0.031, 0.017, 0.066, 0.050, 0.196, 0.126, 0.266, 0.085, 0.145])
FIRST_TIMESTAMP = 788_918_400  # 1995-01-01T00:00:00Z
LAST_TIMESTAMP = 1_577_836_799  # 2019-12-31T23:59:59Z

_MIN_USER_RATINGS = 20  # ML-25M keeps only users with at least 20 ratings
_ITEM_POPULARITY_SIGMA = 2.2  # log-normal spread of item popularity
_USER_ACTIVITY_SIGMA = 1.3  # log-normal spread of user activity above the minimum
_MAX_ROUNDS = 80
_POPULARITY_ROUNDS = 3  # rounds drawn by popularity before the top-up turns uniform
_CHUNK = 1 << 21


@dataclass(frozen=True)
class LowRankData:
    """Ratings drawn from a known low-rank model, with the parameters that give the ideal predictions."""

    ratings: Ratings
    floor_rmse: float  # the noise standard deviation: the RMSE of the ideal predictor, in expectation
    global_mean: float
    user_bias: np.ndarray  # float64, one per user index
    item_bias: np.ndarray  # float64, one per item index
    user_factors: np.ndarray  # float64, (n_users, rank)
    item_factors: np.ndarray  # float64, (n_items, rank)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The noise-free model value for each (user index, item index) pair."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        base = self.global_mean + self.user_bias[users] + self.item_bias[items]
        return base + _row_dots(self.user_factors, self.item_factors, users, items)

    def ideal_rmse(self, ratings: Ratings | None = None) -> float:
        """RMSE of the ideal predictor on ``ratings`` (default: the generated ones); about ``floor_rmse``."""
        target = self.ratings if ratings is None else ratings
        errors = self.predict(target.users, target.items) - target.ratings.astype(np.float64)
        return float(np.sqrt(np.mean(errors**2))) if errors.size else 0.0


def generate_ratings(
    n_users: int = ML25M_USERS,
    n_items: int = ML25M_ITEMS,
    n_ratings: int = ML25M_RATINGS,
    seed: int = 0,
) -> Ratings:
    """ML-25M-shaped ratings: long-tailed activity and popularity, half stars 0.5–5.0, timestamps 1995–2019.

    Rows are sorted by user, then movie, like MovieLens's ratings.csv. Stars come from a latent taste model
    (biases plus a small low-rank term, popular movies rated a little higher) mapped onto ML-25M's star
    shares.
    """
    _check_sizes(n_users, n_items, n_ratings)
    rng = _rng(seed)
    counts = _user_counts(n_users, n_items, n_ratings, rng)
    popularity = _item_popularity(n_items, rng)
    users, items = _sample_pairs(counts, popularity, rng)
    scores = _latent_scores(users, items, n_users, np.log(popularity), rng)
    stars = _to_half_stars(scores, rng)
    del scores
    stamps = _timestamps(users, n_users, rng)
    return _build(users, items, stars, stamps, n_users, n_items)


def generate_low_rank(
    n_users: int = 2_000,
    n_items: int = 1_000,
    n_ratings: int = 100_000,
    rank: int = 8,
    noise_std: float = 0.5,
    seed: int = 0,
    *,
    global_mean: float = 3.5,
    user_bias_std: float = 0.4,
    item_bias_std: float = 0.5,
    interaction_std: float = 0.6,
) -> LowRankData:
    """Ratings ``mean + b_u + b_i + U_u·V_i + N(0, noise_std²)``, not rounded or clipped.

    Pairs follow the same long-tailed sampler as ``generate_ratings``; ``U_u·V_i`` has standard deviation
    ``interaction_std``. The ideal predictor's expected RMSE is exactly ``noise_std`` (``floor_rmse``).
    """
    _check_sizes(n_users, n_items, n_ratings)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise MovieRecError(f"rank must be an integer of at least 1; got {rank!r}.")
    spreads = {
        "noise_std": noise_std,
        "user_bias_std": user_bias_std,
        "item_bias_std": item_bias_std,
        "interaction_std": interaction_std,
    }
    for name, value in spreads.items():
        if not np.isfinite(value) or value < 0:
            raise MovieRecError(f"{name} must be a finite number of at least 0; got {value!r}.")
    rng = _rng(seed)
    counts = _user_counts(n_users, n_items, n_ratings, rng)
    users, items = _sample_pairs(counts, _item_popularity(n_items, rng), rng)
    factor_std = float(np.sqrt(interaction_std / np.sqrt(rank)))
    user_bias = rng.normal(0.0, user_bias_std, n_users)
    item_bias = rng.normal(0.0, item_bias_std, n_items)
    user_factors = rng.normal(0.0, factor_std, (n_users, rank))
    item_factors = rng.normal(0.0, factor_std, (n_items, rank))
    values = global_mean + user_bias[users] + item_bias[items]
    values += _row_dots(user_factors, item_factors, users, items)
    values += rng.normal(0.0, noise_std, users.shape[0])
    stamps = _timestamps(users, n_users, rng)
    return LowRankData(
        ratings=_build(users, items, values, stamps, n_users, n_items),
        floor_rmse=float(noise_std),
        global_mean=float(global_mean),
        user_bias=user_bias,
        item_bias=item_bias,
        user_factors=user_factors,
        item_factors=item_factors,
    )


def synthetic_movies(n_items: int = ML25M_ITEMS, seed: int = 0) -> pd.DataFrame:
    """A movies table (movieId 1..n_items, title "Name (year)", year Int64, genres "A|B") in movieId order.

    About 1% of movies have no year and 1% no genres (an empty string), as in MovieLens.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
        raise MovieRecError(f"n_items must be a non-negative integer; got {n_items!r}.")
    rng = _rng(seed)
    years = np.clip(2019 - np.floor(rng.exponential(18.0, n_items)), 1902, 2019).astype(np.int64)
    has_year = rng.random(n_items) >= 0.01
    names = _titles(n_items, rng)
    titles = [f"{name} ({year})" if known else name for name, year, known in zip(names, years, has_year, strict=True)]
    year = pd.array(years, dtype="Int64")
    year[~has_year] = pd.NA
    return pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1, dtype=np.int64),
            "title": pd.Series(titles, dtype="str"),
            "year": year,
            "genres": pd.Series(_genre_strings(n_items, rng), dtype="str"),
        }
    )


def write_ratings_csv(ratings: Ratings, path: str | Path) -> Path:
    """Write a MovieLens-style ratings.csv (header ``userId,movieId,rating,timestamp``) atomically.

    Stars are written like ``4.0`` and ``3.5``; off-grid values (low-rank data) in their shortest exact form.
    """
    target = Path(path)
    schema = pa.schema(
        [("userId", pa.int64()), ("movieId", pa.int64()), ("rating", pa.string()), ("timestamp", pa.int64())]
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with atomic_path(target) as tmp, open(tmp, "wb") as sink:
        sink.write(b"userId,movieId,rating,timestamp\n")
        with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            for start in range(0, len(ratings), _CHUNK):
                writer.write_batch(_csv_batch(ratings, slice(start, start + _CHUNK), schema))
    return target


def _csv_batch(ratings: Ratings, rows: slice, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ratings.user_vocab.raw(ratings.users[rows])),
            pa.array(ratings.item_vocab.raw(ratings.items[rows])),
            _format_stars(ratings.ratings[rows]),
            pa.array(ratings.timestamps[rows].astype(np.int64)),
        ],
        schema=schema,
    )


def _format_stars(values: np.ndarray) -> pa.Array:
    """Shortest round-trip text for each rating, with ``.0`` added to whole numbers (``4`` becomes ``4.0``)"""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.float32)), pa.string())
    whole = pc.match_substring_regex(text, r"^-?\d+$")
    return pc.if_else(whole, pc.binary_join_element_wise(text, pa.scalar(".0"), ""), text)


def _check_sizes(n_users: int, n_items: int, n_ratings: int) -> None:
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise MovieRecError(f"{name} must be a positive integer; got {value!r}.")
    low, high = max(n_users, n_items), n_users * n_items
    if not low <= n_ratings <= high:
        raise MovieRecError(
            f"n_ratings must be from {low} (one rating per user and per movie) to {high} "
            f"(every user rates every movie); got {n_ratings}."
        )


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MovieRecError(f"seed must be a non-negative integer; got {seed!r}.")
    return np.random.default_rng(int(seed))


def _user_counts(n_users: int, n_items: int, n_ratings: int, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: a floor plus a log-normal share of the rest, capped at ``n_items``; exact total."""
    floor = max(1, min(_MIN_USER_RATINGS, n_ratings // (5 * n_users)))
    counts = np.full(n_users, floor, dtype=np.int64)
    weights = rng.lognormal(0.0, _USER_ACTIVITY_SIGMA, n_users)
    remaining = n_ratings - int(counts.sum())
    while remaining > 0:
        open_users = counts < n_items
        share = np.where(open_users, weights, 0.0)
        counts += rng.multinomial(remaining, share / share.sum())
        counts = np.minimum(counts, n_items)
        remaining = n_ratings - int(counts.sum())
    return counts


def _item_popularity(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Log-normal item weights (long-tailed), normalised to sum to one."""
    weights = rng.lognormal(0.0, _ITEM_POPULARITY_SIGMA, n_items)
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def _sample_pairs(
    counts: np.ndarray, popularity: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unique (user, item) pairs, ``counts[u]`` of them for user ``u``, items drawn by popularity.

    A first pass draws every user's items with replacement and drops repeats. Each later round draws the
    missing items for every short user, drops pairs already held or repeated, and keeps each user's first
    new items in draw order (sequential sampling without replacement). After a few rounds the draws turn
    uniform so heavy users, who already hold the popular movies, finish quickly. Then every movie is given at
    least one rating by moving a few ratings off movies that have several. Sorted by user, then item.
    """
    n_users, n_items = counts.shape[0], popularity.shape[0]
    by_popularity, uniform = _Alias.build(popularity), _Alias.build(np.ones(n_items))
    first = _draw_keys(np.arange(n_users), counts, by_popularity, n_items, rng)
    first.sort()
    blocks = [first[_first_of_runs(first)]]  # sorted, disjoint arrays of keys user * n_items + item
    del first
    have = np.bincount(blocks[0] // n_items, minlength=n_users)
    for round_no in range(1, _MAX_ROUNDS):
        short = np.flatnonzero(have < counts)
        if short.size == 0:
            break
        need = counts[short] - have[short]
        late = round_no > _POPULARITY_ROUNDS
        draws = _oversampled(need, have[short], n_items, late)
        keys = _draw_keys(short, draws, uniform if late else by_popularity, n_items, rng)
        keys = _first_new_keys(keys, blocks, need, short, n_items)
        have += np.bincount(keys // n_items, minlength=n_users)
        blocks.append(np.sort(keys))
    else:
        raise RuntimeError("The pair sampler did not converge; this is a bug in movierec.data.synthetic.")
    keys = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    del blocks
    _cover_items(keys, n_items, rng)
    keys.sort()
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)


@dataclass(frozen=True)
class _Alias:
    """Walker's alias table: draws from a discrete distribution in constant time per draw."""

    prob: np.ndarray  # float64: keep the drawn slot with this probability ...
    alias: np.ndarray  # int64: ... else take this item

    @classmethod
    def build(cls, weights: np.ndarray) -> _Alias:
        """Vose's construction (a loop over items, once per table)."""
        n = weights.shape[0]
        scaled = (weights * (n / weights.sum())).tolist()
        alias = np.arange(n, dtype=np.int64)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            lo, hi = small.pop(), large.pop()
            alias[lo] = hi
            scaled[hi] += scaled[lo] - 1.0
            (small if scaled[hi] < 1.0 else large).append(hi)
        for i in small + large:
            scaled[i] = 1.0
        return cls(np.array(scaled, dtype=np.float64), alias)

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        slots = rng.integers(0, self.prob.shape[0], size)
        drawn: np.ndarray = np.where(rng.random(size) < self.prob[slots], slots, self.alias[slots])
        return drawn


def _oversampled(need: np.ndarray, have: np.ndarray, n_items: int, uniform: bool) -> np.ndarray:
    """Draws to ask for so that most short users finish this round (more when most items are already held)."""
    free_share = np.maximum(n_items - have, 1) / n_items if uniform else np.full(need.shape, 0.75)
    draws = np.ceil(need / free_share * 1.2).astype(np.int64) + 2
    return np.minimum(draws, 8 * n_items)


def _draw_keys(
    users: np.ndarray, draws: np.ndarray, table: _Alias, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """``draws[j]`` keys ``user * n_items + item`` for ``users[j]``, grouped by user, drawn in chunks."""
    owners = np.repeat(users.astype(np.int32), draws)
    keys = np.empty(owners.shape[0], dtype=np.int64)
    for start in range(0, owners.shape[0], _CHUNK):
        rows = slice(start, start + _CHUNK)
        keys[rows] = owners[rows].astype(np.int64) * n_items + table.draw(keys[rows].shape[0], rng)
    return keys


def _first_of_runs(ordered: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values in a sorted array."""
    mask = np.ones(ordered.shape[0], dtype=bool)
    mask[1:] = ordered[1:] != ordered[:-1]
    return mask


def _first_new_keys(
    keys: np.ndarray, blocks: list[np.ndarray], need: np.ndarray, short: np.ndarray, n_items: int
) -> np.ndarray:
    """Drop keys already held or repeated, then keep each user's first ``need`` new keys in draw order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    keep = _first_of_runs(ordered)
    for block in blocks:
        keep &= ~_contains(block, ordered)
    keys = keys[np.sort(order[keep])]  # distinct and new, in draw order, still grouped by user
    owners = keys // n_items
    slot = np.searchsorted(short, owners)
    group_start = np.searchsorted(owners, short)[slot]
    kept: np.ndarray = keys[np.arange(keys.shape[0]) - group_start < need[slot]]
    return kept


def _contains(block: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each value is in the sorted ``block``."""
    if block.size == 0:
        return np.zeros(values.shape[0], dtype=bool)
    pos = np.minimum(np.searchsorted(block, values), block.size - 1)
    found: np.ndarray = block[pos] == values
    return found


def _cover_items(keys: np.ndarray, n_items: int, rng: np.random.Generator) -> None:
    """Give every unrated item one rating by moving random ratings off items with two or more (in place).

    A moved rating keeps its user, and an unrated item is new to every user, so pairs stay unique.
    """
    items = keys % n_items
    counts = np.bincount(items, minlength=n_items)
    missing = np.flatnonzero(counts == 0)
    while missing.size:
        candidates = np.flatnonzero(counts[items] >= 2)
        rows = rng.choice(candidates, size=min(2 * missing.size + 8, candidates.size), replace=False)
        donors = items[rows]
        order = np.argsort(donors, kind="stable")
        rank = np.empty(rows.size, dtype=np.int64)
        rank[order] = np.arange(rows.size) - np.searchsorted(donors[order], donors[order])
        rows = rows[rank < counts[donors] - 1][: missing.size]  # each donor keeps at least one rating
        np.subtract.at(counts, items[rows], 1)
        counts[missing[: rows.size]] = 1
        keys[rows] += missing[: rows.size] - items[rows]
        items[rows] = missing[: rows.size]
        missing = missing[rows.size :]


def _latent_scores(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    log_popularity: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """A taste score per rating: biases, popular movies a little higher, a rank-4 interaction and noise."""
    n_items = log_popularity.shape[0]
    standard_pop = (log_popularity - log_popularity.mean()) / max(float(log_popularity.std()), 1e-9)
    user_bias = rng.normal(0.0, 0.45, n_users)
    item_bias = 0.3 * standard_pop + rng.normal(0.0, 0.4, n_items)
    user_factors = rng.normal(0.0, 0.6, (n_users, 4))
    item_factors = rng.normal(0.0, 0.6, (n_items, 4))
    scores = user_bias[users] + item_bias[items]
    scores += _row_dots(user_factors, item_factors, users, items)
    scores += rng.normal(0.0, 0.6, users.shape[0])
    return scores


def _to_half_stars(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map scores onto half stars whose shares match ML-25M's (thresholds from a sample's quantiles)."""
    sample = scores if scores.size <= 1_000_000 else scores[rng.integers(0, scores.size, 1_000_000)]
    shares = _ML_STAR_SHARES / _ML_STAR_SHARES.sum()
    thresholds = np.quantile(sample, np.cumsum(shares)[:-1])
    stars: np.ndarray = HALF_STARS[np.searchsorted(thresholds, scores, side="right")]
    return stars


def _timestamps(users: np.ndarray, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Each user starts at a random moment and rates over a log-normal span (often days, sometimes years)."""
    start = rng.integers(FIRST_TIMESTAMP, LAST_TIMESTAMP, n_users, endpoint=True)
    span = np.exp(rng.normal(np.log(7 * 86_400), 2.5, n_users))
    span = np.minimum(span, LAST_TIMESTAMP - start)
    stamps = np.empty(users.shape[0], dtype=np.int64)
    for first in range(0, users.shape[0], _CHUNK):
        owners = users[first : first + _CHUNK]
        offsets = rng.random(owners.shape[0]) * span[owners]
        stamps[first : first + _CHUNK] = start[owners] + offsets.astype(np.int64)
    return stamps


def _row_dots(left: np.ndarray, right: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``sum(left[users] * right[items], axis=1)``, in chunks to bound memory."""
    out = np.empty(users.shape[0], dtype=np.float64)
    for start in range(0, users.shape[0], _CHUNK):
        rows = slice(start, start + _CHUNK)
        out[rows] = np.einsum("ij,ij->i", left[users[rows]], right[items[rows]])
    return out


def _titles(n_items: int, rng: np.random.Generator) -> list[str]:
    """Made-up two- or three-word titles."""
    first = np.array(_TITLE_FIRST)[rng.integers(0, len(_TITLE_FIRST), n_items)]
    second = np.array(_TITLE_SECOND)[rng.integers(0, len(_TITLE_SECOND), n_items)]
    sequel = rng.random(n_items) < 0.05
    return [f"{a} {b} II" if s else f"{a} {b}" for a, b, s in zip(first, second, sequel, strict=True)]


def _genre_strings(n_items: int, rng: np.random.Generator) -> list[str]:
    """One to four genres a movie, drawn without replacement by ML-like frequency; about 1% have none."""
    weights = np.array(_GENRE_WEIGHTS)
    keys = rng.exponential(1.0, (n_items, len(GENRES))) / weights  # smallest keys = weighted sample
    how_many = np.minimum(1 + rng.binomial(3, 0.35, n_items), len(GENRES))
    how_many[rng.random(n_items) < 0.01] = 0
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    chosen = rank < how_many[:, None]
    names = np.array(GENRES)
    return ["|".join(names[row]) for row in chosen]


def _build(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    stamps: np.ndarray,
    n_users: int,
    n_items: int,
) -> Ratings:
    return Ratings(
        users.astype(np.int32, copy=False),
        items.astype(np.int32, copy=False),
        values.astype(np.float32, copy=False),
        stamps.astype(np.int64, copy=False),
        Vocabulary(np.arange(1, n_users + 1, dtype=np.int64)),
        Vocabulary(np.arange(1, n_items + 1, dtype=np.int64)),
    )


_TITLE_FIRST = (
    "Silent", "Last", "Broken", "Golden", "Midnight", "Lost", "Crimson", "Hidden", "Wild", "Dark", "Little",
    "Eternal", "Forgotten", "Burning", "Secret", "Distant", "Frozen", "Electric", "Lonely", "Savage",
)  # fmt: skip
_TITLE_SECOND = (
    "Harbor", "Summer", "Empire", "River", "Promise", "Kingdom", "Garden", "Road", "Storm", "Letter", "City",
    "Dream", "Island", "Witness", "Horizon", "Journey", "Mirror", "Frontier", "Symphony", "Machine",
)  # fmt: skip
