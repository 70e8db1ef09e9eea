"""Tiny datasets with known answers, shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from movierec.cli import main
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, Ratings, RatingScale
from movierec.data.synthetic import LowRankData, generate_low_rank


def low_rank_dataset(seed: int = 0, noise: float = 0.2) -> tuple[Dataset, LowRankData]:
    """200 users x 100 movies, 8,000 ratings from ``mean + biases + rank-3 interaction + noise``."""
    truth = generate_low_rank(200, 100, 8_000, rank=3, noise_std=noise, seed=seed, interaction_std=0.8)
    ratings = truth.ratings
    low, high = float(ratings.ratings.min()), float(ratings.ratings.max())
    movies = align_movies(None, ratings.item_vocab)
    dataset = Dataset("low-rank", ratings, movies, None, RatingScale(low, high, 0.5))
    return dataset, truth


def train_small_run(folder: Path) -> Path:
    """A run folder trained by the CLI on 150 users x 60 movies of a rank-2 model (train/test CSVs in ``folder``),
    for tests of ``movierec evaluate --protocol ...``."""
    truth = generate_low_rank(150, 60, 6_000, rank=2, noise_std=0.3, seed=1)
    frame = truth.ratings.to_frame()
    frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    frame.iloc[:5000].to_csv(train_csv, index=False)
    frame.iloc[5000:].to_csv(test_csv, index=False)
    run = folder / "run"
    args = ["--train-file", str(train_csv), "--test-file", str(test_csv), "--epochs", "2", "--dim", "4"]
    assert main(["train", *args, "--out", str(run), "--json", "--device", "cpu"]) == 0
    return run


def as_frame(dataset: Dataset) -> pd.DataFrame:
    return dataset.ratings.to_frame()


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def write_csv_files(dataset: Dataset, train: Ratings, test: Ratings, folder: Path) -> list[str]:
    """Write train/test ratings and the movies (title with its year) as CSV; return the matching CLI flags."""
    paths = {name: folder / f"{name}.csv" for name in ("train", "test", "movies")}
    for part, name in ((train, "train"), (test, "test")):
        frame = part.to_frame()
        frame["rating"] = frame["rating"].round(1)
        frame.to_csv(paths[name], index=False)
    movies = dataset.movies.assign(title=lambda f: f["title"] + " (" + f["year"].astype(str) + ")")
    movies[["movieId", "title", "genres"]].to_csv(paths["movies"], index=False)
    return [
        "--train-file",
        str(paths["train"]),
        "--test-file",
        str(paths["test"]),
        "--movies-file",
        str(paths["movies"]),
    ]


def check_resume_matches_a_straight_run(
    fit: Callable[..., Any], config: Any, dataset: Dataset, train: Ratings, run_dir: Path, tolerance: float
) -> None:
    """Two epochs, then ``--resume`` to four, must retrace a straight four-epoch run."""
    straight = fit(config, dataset, train, progress=False)
    fit(config.replace(epochs=2), dataset, train, run_dir=run_dir, progress=False)
    ran: list[int] = []
    resumed = fit(
        config, dataset, train, run_dir=run_dir, resume=True, progress=False, on_epoch=lambda s: ran.append(s.epoch)
    )
    assert ran == [3, 4] and [h.epoch for h in resumed.history] == [1, 2, 3, 4]
    val = [h.val_rmse for h in straight.history]
    assert [h.val_rmse for h in resumed.history] == pytest.approx(val, rel=tolerance)
    np.testing.assert_allclose(resumed.model.params.item_factors, straight.model.params.item_factors, atol=tolerance)
