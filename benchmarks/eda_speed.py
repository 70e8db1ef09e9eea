"""Time `build_eda_report` on ML-25M-shaped synthetic data and compare with the bars (120 s, 3 GB peak RSS).

    python benchmarks/eda_speed.py                 # 25,000,095 ratings, 162,541 users, 59,047 movies
    python benchmarks/eda_speed.py --ratings 1000000

The data are generated in a child process and handed over as .npy files, so this process's peak RSS
(``ru_maxrss``) covers what `movierec eda` itself holds: the dataset in memory plus the report's work.
Users scale with the number of ratings, movies with its square root (smaller sets are denser, like MovieLens).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.reports.eda import build_eda_report

ML25M = (25_000_095, 162_541, 59_047)  # ratings, users, movies
TIME_BAR_S = 120.0
MEMORY_BAR_GB = 3.0
ARRAYS = ("users", "items", "ratings", "timestamps")


def shape_for(n_ratings: int) -> tuple[int, int]:
    """Users and movies for ``n_ratings``: ML-25M's own at full size, scaled down otherwise."""
    full, users, items = ML25M
    fraction = n_ratings / full
    n_users = max(1, round(users * fraction))
    n_items = min(max(1, round(items * math.sqrt(fraction))), items)
    n_items = max(n_items, math.ceil(n_ratings / n_users))
    return n_users, n_items


def generate(folder: str, n_ratings: int, n_users: int, n_items: int, seed: int) -> None:
    """Child process: synthesise ratings and a movies table, save them under ``folder``."""
    from movierec.data.synthetic import generate_ratings, synthetic_movies

    ratings = generate_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)
    for name in ARRAYS:
        np.save(Path(folder) / f"{name}.npy", getattr(ratings, name))
    synthetic_movies(n_items, seed=seed).to_parquet(Path(folder) / "movies.parquet", index=False)


def load(folder: Path, n_users: int, n_items: int) -> Dataset:
    """The saved arrays as a Dataset (raw ids 1..n, like the generator's)."""
    arrays = {name: np.load(folder / f"{name}.npy") for name in ARRAYS}
    ratings = Ratings(
        **arrays,
        user_vocab=Vocabulary(np.arange(1, n_users + 1, dtype=np.int64)),
        item_vocab=Vocabulary(np.arange(1, n_items + 1, dtype=np.int64)),
    )
    movies = pd.read_parquet(folder / "movies.parquet")
    return Dataset("synthetic-ml-25m-shape", ratings, movies, scale=RatingScale(0.5, 5.0, 0.5))


def peak_rss_gb() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=ML25M[0], help="number of ratings (default ML-25M's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the report here (default: a temp dir)")
    args = parser.parse_args()
    n_users, n_items = shape_for(args.ratings)
    print(f"data: {args.ratings:,} ratings, {n_users:,} users, {n_items:,} movies (synthetic)")
    print(f"machine: {psutil.cpu_count()} logical CPUs, {psutil.virtual_memory().total / 1e9:.1f} GB RAM")
    with tempfile.TemporaryDirectory(prefix="eda-bench-") as tmp:
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=generate, args=(tmp, args.ratings, n_users, n_items, args.seed)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"data generation failed (exit code {child.exitcode})")
        dataset = load(Path(tmp), n_users, n_items)
        print(f"generated and loaded in {time.perf_counter() - started:.1f} s")
        rss_before = psutil.Process().memory_info().rss / 1e9
        started = time.perf_counter()
        report = build_eda_report(dataset, args.out or Path(tmp) / "report")
        seconds = time.perf_counter() - started
        peak = peak_rss_gb()
        print(f"report written: {report}")
    print(f"RSS with the dataset loaded, before the report: {rss_before:.2f} GB")
    print(f"{'':24}{'measured':>10}{'bar':>10}")
    print(f"{'build_eda_report time':24}{seconds:>9.1f}s{TIME_BAR_S:>9.0f}s  {_verdict(seconds <= TIME_BAR_S)}")
    print(f"{'peak RSS (process)':24}{peak:>8.2f}GB{MEMORY_BAR_GB:>8.1f}GB  {_verdict(peak <= MEMORY_BAR_GB)}")


def _verdict(ok: bool) -> str:
    return "within the bar" if ok else "OVER THE BAR"


if __name__ == "__main__":
    main()
