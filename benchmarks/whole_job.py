"""The whole training job, process against process: `movierec train` beside LensKit's `BiasedMFScorer`.

    python benchmarks/whole_job.py --lenskit-python /path/to/lenskit-venv/bin/python
    python benchmarks/whole_job.py --ratings 2000000 --lenskit-python ... [--models biased-mf,hybrid] [--json]

Writes an ML-25M-shaped synthetic release folder (``movierec.data.synthetic``: ratings.csv, and movies.csv with
genres and years for the hybrid), then times, each in a fresh process of its own, from start to exit:

- ``movierec train --data DIR --model biased-mf --solver als`` at the dim, reg and epochs given, with an empty
  cache folder (so parsing the CSV and writing the Parquet cache are part of it), its evaluation on the 90/10
  random split (seed 0) and the run folder it writes;
- LensKit (installed in its own virtual environment: ``pip install torch==2.13.0 lenskit``) at the same dim,
  reg and epochs: read the same CSV with pandas, drop the same test pairs (movierec's split, written to a
  Parquet file before the clock starts), train, predict the test pairs from its learned tables, and print
  the test RMSE;
- with ``--models ...,hybrid``, the default model by ALS (``movierec train --data DIR --solver als``, its shipped
  settings; the default solver, the gradient loop, takes hours at ML-25M size).

It prints wall seconds, peak memory (the process's maximum resident set, from ``wait4``), test RMSE and the
ratio of each movierec job to LensKit's. Bars (issue 16): movierec <= 0.5x LensKit's wall time with RMSE no
worse and peak memory <= 4 GB; the hybrid within the same wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from movierec.data.loader import load_dataset
from movierec.data.split import random_split
from movierec.data.synthetic import (
    ML25M_ITEMS,
    ML25M_RATINGS,
    ML25M_USERS,
    generate_ratings,
    synthetic_movies,
    write_ratings_csv,
)

LENSKIT_JOB = r"""
import json, sys, time
started = time.perf_counter()
import numpy as np, pandas as pd, pyarrow.parquet as pq
from lenskit.als import BiasedMFScorer
from lenskit.data import from_interactions_df
from lenskit.training import TrainingOptions
csv, test_file, dim, reg, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
frame = pd.read_csv(csv, usecols=["userId", "movieId", "rating"])
test = pq.read_table(test_file).to_pandas()
key = frame["userId"].to_numpy(np.int64) << 32 | frame["movieId"].to_numpy(np.int64)
is_test = np.isin(key, test["userId"].to_numpy(np.int64) << 32 | test["movieId"].to_numpy(np.int64))
train, held = frame[~is_test], frame[is_test]
data = from_interactions_df(train, user_col="userId", item_col="movieId", rating_col="rating")
model = BiasedMFScorer(embedding_size=dim, regularization=reg, epochs=epochs)
model.train(data, TrainingOptions())
users = model.users.numbers(held["userId"].to_numpy(), missing="negative")
items = model.items.numbers(held["movieId"].to_numpy(), missing="negative")
known_u, known_i = users >= 0, items >= 0
bias = model.bias
pred = np.full(len(held), bias.global_bias, np.float64)
pred[known_i] += bias.item_biases[items[known_i]]
pred[known_u] += bias.user_biases[users[known_u]]
both = known_u & known_i
pred[both] += np.einsum("ij,ij->i", model.user_embeddings[users[both]], model.item_embeddings[items[both]])
pred = np.clip(pred, 0.5, 5.0)
rmse = float(np.sqrt(np.mean((pred - held["rating"].to_numpy()) ** 2)))
print(json.dumps({"rmse": rmse, "n_test": int(len(held)), "seconds_inside": time.perf_counter() - started}))
"""


def write_release(folder: Path, n_ratings: int, seed: int) -> None:
    """ratings.csv and movies.csv of ML-25M's shape (users scale with the ratings, movies with their root)."""
    users = min(ML25M_USERS, max(10, round(ML25M_USERS * n_ratings / ML25M_RATINGS)))
    items = min(ML25M_ITEMS, max(10, round(ML25M_ITEMS * (n_ratings / ML25M_RATINGS) ** 0.5)))
    folder.mkdir(parents=True, exist_ok=True)
    write_ratings_csv(generate_ratings(users, items, n_ratings, seed=seed), folder / "ratings.csv")
    movies = synthetic_movies(items, seed=seed)  # titles carry the year, as MovieLens writes them
    movies[["movieId", "title", "genres"]].to_csv(folder / "movies.csv", index=False)


def write_test_pairs(folder: Path, out: Path, test_fraction: float, seed: int, home: Path) -> int:
    """movierec's own 90/10 split of the release, its test pairs as raw (userId, movieId), for LensKit."""
    os.environ["MOVIEREC_HOME"] = str(home)  # a throwaway cache: the timed runs start from an empty one
    ratings = load_dataset(folder).ratings
    test = random_split(ratings, test_fraction, seed=seed).test
    table = pa.table({"userId": ratings.user_vocab.ids[test.users], "movieId": ratings.item_vocab.ids[test.items]})
    pq.write_table(table, out)
    return len(test)


def timed(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command`` to completion: wall seconds, peak resident memory in GB, its last stdout line as JSON."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if process.returncode != 0 or not lines:
            raise SystemExit(f"{' '.join(command[:4])} ... failed ({process.returncode}):\n{err.read()[-3000:]}")
    return {"seconds": seconds, "peak_gb": usage.ru_maxrss / 2**20, "result": json.loads(lines[-1])}


def movierec_job(model: str, folder: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    home = work / f"home-{model}"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "MOVIEREC_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "movierec", "train", "--data", str(folder), "--model", model, "--json"]
    command += ["--out", str(work / f"run-{model}"), "--split-seed", str(args.seed)]
    command += ["--solver", "als"]  # the loop (the hybrid's default solver) takes hours at this size
    if model == "biased-mf":
        command += ["--dim", str(args.dim), "--reg", str(args.reg), "--epochs", str(args.epochs)]
    job = timed(command, env)
    job["rmse"] = float(job["result"]["rmse"])
    job["train_seconds"] = float(job["result"].get("train_seconds", float("nan")))
    return job


def lenskit_job(folder: Path, test_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [args.lenskit_python, "-c", LENSKIT_JOB, str(folder / "ratings.csv"), str(test_file)]
    command += [str(args.dim), str(args.reg), str(args.epochs)]
    job = timed(command, {**os.environ})
    job["rmse"] = float(job["result"]["rmse"])
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=ML25M_RATINGS)
    parser.add_argument("--lenskit-python", required=True, help="python of a venv with lenskit installed")
    parser.add_argument("--models", default="biased-mf", help="movierec models to time: biased-mf, hybrid")
    parser.add_argument("--dim", type=int, default=81)
    parser.add_argument("--reg", type=float, default=0.0814)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="folder to keep the release in (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="movierec-whole-job-"))
    folder = args.keep or work / "release"
    if not (folder / "ratings.csv").exists():
        started = time.perf_counter()
        write_release(folder, args.ratings, args.seed)
        print(f"wrote {args.ratings:,} synthetic ratings in {time.perf_counter() - started:.0f} s", flush=True)
    test_file = work / "test_pairs.parquet"
    n_test = write_test_pairs(folder, test_file, 0.1, args.seed, work / "split-home")
    cores = os.cpu_count()
    print(
        f"machine: {platform.machine()}, {cores} cores; {args.ratings:,} ratings, {n_test:,} test pairs; "
        f"dim {args.dim}, reg {args.reg}, {args.epochs} epochs",
        flush=True,
    )
    lenskit = lenskit_job(folder, test_file, args)
    print(
        f"LensKit BiasedMFScorer: {lenskit['seconds']:.1f} s wall, {lenskit['peak_gb']:.2f} GB peak, "
        f"test RMSE {lenskit['rmse']:.4f}",
        flush=True,
    )
    rows: dict[str, Any] = {"lenskit": lenskit}
    for model in args.models.split(","):
        job = movierec_job(model.strip(), folder, args, work)
        rows[model] = job
        print(
            f"movierec {model}: {job['seconds']:.1f} s wall (training as reported {job['train_seconds']:.1f} s), "
            f"{job['peak_gb']:.2f} GB peak, test RMSE {job['rmse']:.4f}; "
            f"{job['seconds'] / lenskit['seconds']:.2f}x LensKit's wall time",
            flush=True,
        )
    verdicts = []
    if "biased-mf" in rows:
        ours = rows["biased-mf"]
        verdicts.append(("biased-mf wall <= 0.5x LensKit", ours["seconds"] <= 0.5 * lenskit["seconds"]))
        verdicts.append(("biased-mf RMSE no worse than LensKit", ours["rmse"] <= lenskit["rmse"]))
        verdicts.append(("biased-mf peak memory <= 4 GB", ours["peak_gb"] <= 4.0))
    if "hybrid" in rows:
        verdicts.append(("hybrid wall <= 0.5x LensKit", rows["hybrid"]["seconds"] <= 0.5 * lenskit["seconds"]))
    for text, met in verdicts:
        print(f"[{'met' if met else 'NOT met'}] {text}")
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        summary = {name: {k: v for k, v in row.items() if k != "result"} for name, row in rows.items()}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
