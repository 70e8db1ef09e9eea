"""Synthetic data: exact counts, unique pairs, half stars, long tails, a known noise floor, CSV output."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data.movielens import read_ratings_csv
from movierec.data.ratings import Ratings
from movierec.data.synthetic import (
    FIRST_TIMESTAMP,
    GENRES,
    LAST_TIMESTAMP,
    generate_low_rank,
    generate_ratings,
    synthetic_movies,
    write_ratings_csv,
)
from movierec.errors import MovieRecError

N_USERS, N_ITEMS, N_RATINGS = 2_000, 1_000, 50_000


@pytest.fixture(scope="module")
def realistic() -> Ratings:
    return generate_ratings(N_USERS, N_ITEMS, N_RATINGS, seed=11)


def pair_keys(ratings: Ratings) -> np.ndarray:
    return ratings.users.astype(np.int64) * ratings.n_items + ratings.items


def assert_well_formed(ratings: Ratings, n_users: int, n_items: int, n_ratings: int) -> None:
    """Exact sizes, ids 1..n, unique pairs sorted by user then movie, every user and movie rated."""
    assert len(ratings) == n_ratings
    assert np.array_equal(ratings.user_vocab.ids, np.arange(1, n_users + 1))
    assert np.array_equal(ratings.item_vocab.ids, np.arange(1, n_items + 1))
    assert ratings.users.dtype == np.int32 and ratings.items.dtype == np.int32
    assert ratings.ratings.dtype == np.float32 and ratings.timestamps.dtype == np.int64
    assert np.all(np.diff(pair_keys(ratings)) > 0), "pairs are unique and sorted"
    assert ratings.user_counts().min() >= 1 and ratings.item_counts().min() >= 1
    assert np.all((ratings.timestamps >= FIRST_TIMESTAMP) & (ratings.timestamps <= LAST_TIMESTAMP))


def test_realistic_shape(realistic: Ratings) -> None:
    assert_well_formed(realistic, N_USERS, N_ITEMS, N_RATINGS)


def test_realistic_stars_are_half_stars(realistic: Ratings) -> None:
    stars = realistic.ratings
    assert np.all(stars * 2 == np.round(stars * 2))
    assert stars.min() == 0.5 and stars.max() == 5.0
    shares = np.bincount((stars * 2).astype(int), minlength=11)[1:] / len(stars)
    assert np.all(shares > 0.01)
    assert shares.argmax() == 7  # 4.0 is the most common star, as in MovieLens


def test_realistic_is_long_tailed(realistic: Ratings) -> None:
    items = np.sort(realistic.item_counts())[::-1]
    users = np.sort(realistic.user_counts())[::-1]
    assert items[: N_ITEMS // 10].sum() > 0.4 * N_RATINGS
    assert users[: N_USERS // 10].sum() > 0.3 * N_RATINGS
    assert np.median(items) < items.mean() and np.median(users) < users.mean()


@pytest.mark.parametrize(
    ("n_users", "n_items", "n_ratings"),
    [(1, 1, 1), (5, 7, 35), (5, 7, 7), (7, 5, 7), (3, 400, 400), (400, 3, 600), (60, 40, 2000)],
)
def test_edge_sizes(n_users: int, n_items: int, n_ratings: int) -> None:
    assert_well_formed(generate_ratings(n_users, n_items, n_ratings, seed=2), n_users, n_items, n_ratings)


def test_realistic_is_deterministic_by_seed(realistic: Ratings) -> None:
    again = generate_ratings(N_USERS, N_ITEMS, N_RATINGS, seed=11)
    other = generate_ratings(N_USERS, N_ITEMS, N_RATINGS, seed=12)
    for name in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(realistic, name), getattr(again, name))
    assert not np.array_equal(pair_keys(realistic), pair_keys(other))


@pytest.mark.parametrize(
    ("sizes", "named"),
    [
        ((0, 10, 10), "n_users"),
        ((10, -1, 10), "n_items"),
        ((10, 10, 0), "n_ratings"),
        ((10, 10, 101), "n_ratings"),
        ((10, 20, 15), "n_ratings"),
        ((10.0, 10, 20), "n_users"),
    ],
)
def test_bad_sizes_raise(sizes: tuple, named: str) -> None:
    with pytest.raises(MovieRecError, match=named):
        generate_ratings(*sizes)
    with pytest.raises(MovieRecError, match=named):
        generate_low_rank(*sizes)


def test_bad_seed_and_model_arguments_raise() -> None:
    with pytest.raises(MovieRecError, match="seed"):
        generate_ratings(10, 10, 20, seed=-1)
    with pytest.raises(MovieRecError, match="rank"):
        generate_low_rank(10, 10, 20, rank=0)
    with pytest.raises(MovieRecError, match="noise_std"):
        generate_low_rank(10, 10, 20, noise_std=-0.1)


# ---------------------------------------------------------------------------------------------- low rank


def test_low_rank_ideal_predictor_hits_the_noise_floor() -> None:
    data = generate_low_rank(1_500, 800, 40_000, rank=6, noise_std=0.3, seed=5)
    assert_well_formed(data.ratings, 1_500, 800, 40_000)
    assert data.floor_rmse == 0.3
    assert data.user_factors.shape == (1_500, 6) and data.item_factors.shape == (800, 6)
    assert data.ideal_rmse() == pytest.approx(0.3, abs=0.006)
    baseline = np.sqrt(np.mean((data.ratings.ratings - data.ratings.ratings.mean()) ** 2))
    assert baseline > 0.6, "the model explains far more than the noise"
    stars = data.ratings.ratings
    assert np.mean(stars * 2 != np.round(stars * 2)) > 0.99, "not rounded to half stars"


def test_low_rank_without_noise_is_exact_and_deterministic() -> None:
    data = generate_low_rank(200, 100, 3_000, rank=3, noise_std=0.0, seed=1)
    assert data.ideal_rmse() < 1e-5
    again = generate_low_rank(200, 100, 3_000, rank=3, noise_std=0.0, seed=1)
    assert np.array_equal(data.ratings.ratings, again.ratings.ratings)
    assert np.array_equal(data.user_factors, again.user_factors)
    predicted = data.predict(data.ratings.users[:5], data.ratings.items[:5])
    assert np.allclose(predicted, data.ratings.ratings[:5], atol=1e-5)


# ------------------------------------------------------------------------------------------------ movies


def test_synthetic_movies() -> None:
    movies = synthetic_movies(2_000, seed=3)
    assert list(movies.columns) == ["movieId", "title", "year", "genres"]
    assert movies["movieId"].dtype == np.int64 and str(movies["year"].dtype) == "Int64"
    assert movies["movieId"].tolist() == list(range(1, 2_001))
    years = movies["year"].dropna()
    assert 0 < movies["year"].isna().sum() < 100 and years.between(1900, 2019).all()
    for title, year in zip(movies["title"], movies["year"], strict=True):
        assert title.endswith(f" ({year})") if not pd.isna(year) else not re.search(r"\(\d{4}\)$", title)
    genre_lists = [g.split("|") if g else [] for g in movies["genres"]]
    assert all(set(g) <= set(GENRES) and g == sorted(g) and len(g) == len(set(g)) for g in genre_lists)
    assert sum(not g for g in genre_lists) < 100 and len({x for g in genre_lists for x in g}) >= 15
    assert movies.equals(synthetic_movies(2_000, seed=3))
    assert not movies.equals(synthetic_movies(2_000, seed=4))


# --------------------------------------------------------------------------------------------------- CSV


def test_write_ratings_csv_is_movielens_style(realistic: Ratings, tmp_path: Path) -> None:
    target = write_ratings_csv(realistic, tmp_path / "out" / "ratings.csv")
    assert [p.name for p in target.parent.iterdir()] == ["ratings.csv"], "no temporary file left behind"
    lines = target.read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert len(lines) == N_RATINGS + 1
    assert all(re.fullmatch(r"\d+,\d+,[0-5]\.[05],\d{9,10}", line) for line in lines[1:200])
    frame, _ = read_ratings_csv(target)
    expected = realistic.to_frame()
    for column in ("userId", "movieId", "rating", "timestamp"):
        assert np.array_equal(frame[column].to_numpy(), expected[column].to_numpy())


def test_write_ratings_csv_keeps_low_rank_values_exact(tmp_path: Path) -> None:
    data = generate_low_rank(50, 40, 600, seed=0)
    target = write_ratings_csv(data.ratings, tmp_path / "ratings.csv")
    frame = pd.read_csv(target, dtype={"rating": np.float32})
    assert np.array_equal(frame["rating"].to_numpy(), data.ratings.ratings)
