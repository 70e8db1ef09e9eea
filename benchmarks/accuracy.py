"""Accuracy on ml-latest-small: random 90/10 splits, mean over split seeds, beside Surprise's SVD.

Prints one table: test RMSE, MAE, NDCG@10, what people feel of the top-10 lists (coverage, personalization,
popularity-stratified recall and genre miscalibration, as `movierec evaluate` reports them) and training seconds
for the baselines, `sigmoid-mf`, `biased-mf` (per-row L2 in the loss, and optimiser-wide weight decay instead),
the default model, popularity and EASE (`movierec.models.ease`), with Surprise SVD and myFM (the Bayesian
factorization machine of issue 15, on the blocks `bayes.py` gives it: `myfm_common.py`; rating columns only) trained
on the very same splits. Install both with `pip install -e ".[bench]"`; without one its rows are skipped with a
note.

    python benchmarks/accuracy.py [--seeds 0,1,2] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from movierec.data.loader import load_dataset
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.evaluate.genres import genre_matrix
from movierec.evaluate.protocol import evaluate_ranking, evaluate_ratings, popularity_scores
from movierec.evaluate.report import evaluate_model, ranking_row
from movierec.models import registry
from movierec.models.ease import DEFAULT_LAMBDA, fit_ease
from movierec.models.registry import DEFAULT_MODEL
from movierec.train.driver import fit
from myfm_common import MISSING, SETTINGS, fit_myfm

DEFAULT_ROW = f"default ({DEFAULT_MODEL}, --solver auto)"
"""The default model as `movierec train` trains it here (`registry.config_for_data`: gibbs on this data)."""
VARIANTS: dict[str, dict[str, Any]] = {
    "global-mean": {"model": "global-mean"},
    "biases": {"model": "biases"},
    "sigmoid-mf": {"model": "sigmoid-mf"},
    "biased-mf (L2 on touched rows)": {"model": "biased-mf", "solver": "loop"},
    "biased-mf (weight_decay 1e-5, no L2)": {"model": "biased-mf", "solver": "loop", "reg": 0.0, "weight_decay": 1e-5},
    "biased-mf (weight_decay 1e-4, no L2)": {"model": "biased-mf", "solver": "loop", "reg": 0.0, "weight_decay": 1e-4},
    DEFAULT_ROW: {"model": DEFAULT_MODEL},
    f"{DEFAULT_MODEL}, --solver loop": {"model": DEFAULT_MODEL, "solver": "loop"},
    "biased-mf, --solver als": {"model": "biased-mf", "solver": "als"},
    "hybrid, --solver als": {"model": "hybrid", "solver": "als"},
}


COLUMNS = (
    ("RMSE", "rmse"),
    ("MAE", "mae"),
    ("NDCG@10", "ndcg@10"),
    ("cover@10", "coverage@10"),
    ("pers@10", "personalization@10"),
    ("poprec@10", "pop_recall@10"),
    ("miscal@10", "miscalibration@10"),
    ("train s", "seconds"),
)
"""(header, metrics key) of the table: coverage, personalization, popularity-stratified recall and genre
miscalibration are `movierec.evaluate.protocol.evaluate_ranking`'s."""
EASE = f"EASE lambda {DEFAULT_LAMBDA:g} (ranking only)"
POPULARITY = "popularity (ranking only)"


def movierec_row(
    settings: dict[str, Any], dataset: Dataset, train: Ratings, test: Ratings, genres: np.ndarray
) -> dict[str, float]:
    started = time.perf_counter()
    options = {key: value for key, value in settings.items() if key != "model"}
    config = registry.config_for_data(settings["model"], lambda: len(dataset.ratings), **options)
    model = fit(config, dataset, train, progress=False).model
    seconds = time.perf_counter() - started
    return {**_columns(evaluate_model(model, train, test, genres=genres)), "seconds": seconds}


def ease_row(train: Ratings, test: Ratings, genres: np.ndarray) -> dict[str, float]:
    started = time.perf_counter()
    ease = fit_ease(train)
    seconds = time.perf_counter() - started
    return {**_columns(ranking_row("ease", ease.scores, train, test, genres=genres)), "seconds": seconds}


def _columns(metrics: dict[str, Any]) -> dict[str, float]:
    """The table's metrics out of an evaluation's."""
    return {key: float(metrics[key]) for _, key in COLUMNS if key in metrics}


def surprise_row(
    train: Ratings, test: Ratings, scale: tuple[float, float], genres: np.ndarray
) -> dict[str, float] | None:
    try:
        from surprise import SVD, Reader
        from surprise import Dataset as SurpriseDataset
    except ImportError:
        return None
    frame = train.to_frame(raw_ids=False)[["user", "item", "rating"]]
    started = time.perf_counter()
    trainset = SurpriseDataset.load_from_df(frame, Reader(rating_scale=scale)).build_full_trainset()
    algo = SVD(random_state=0)
    algo.fit(trainset)
    seconds = time.perf_counter() - started

    def predict(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.array([algo.predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)], np.float32)

    # Surprise's own factors, for ranking: mean + b_u + b_i + p_u . q_i over every item it knows.
    user_inner = np.full(train.n_users, -1)
    for inner in range(trainset.n_users):
        user_inner[int(trainset.to_raw_uid(inner))] = inner
    item_inner = np.full(train.n_items, -1)
    for inner in range(trainset.n_items):
        item_inner[int(trainset.to_raw_iid(inner))] = inner
    known = item_inner >= 0

    def score(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), train.n_items), trainset.global_mean, np.float32)
        for row, user in enumerate(users):
            inner = user_inner[user]
            if inner >= 0:
                items = item_inner[known]
                out[row, known] = (
                    trainset.global_mean + algo.bu[inner] + algo.bi[items] + algo.qi[items] @ algo.pu[inner]
                )
        return out

    metrics = {**evaluate_ratings(predict, train, test), **evaluate_ranking(score, train, test, genres=genres)}
    return {**_columns(metrics), "seconds": seconds}


def myfm_row(
    rank: int, sweeps: int, dataset: Dataset, train: Ratings, test: Ratings, seed: int
) -> dict[str, float] | None:
    """myFM's rating metrics (``myfm_common``): scoring every movie for every user is beyond its predictor's speed,
    so its ranking columns stay empty. None when myFM is not installed."""
    fitted = fit_myfm(rank, sweeps, dataset, train, seed)
    if fitted is None:
        return None
    predict, seconds = fitted
    return {**_columns(evaluate_ratings(predict, train, test)), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="split seeds, comma-separated")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    dataset = load_dataset("ml-latest-small")
    genres = genre_matrix(dataset.movies["genres"])
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    missing_myfm = False
    for seed in seeds:
        split = random_split(dataset.ratings, 0.1, seed=seed)
        for name, settings in VARIANTS.items():
            rows[name].append(movierec_row(settings, dataset, split.train, split.test, genres))
        popularity = ranking_row("popularity", popularity_scores(split.train), split.train, split.test, genres=genres)
        rows[POPULARITY].append(_columns(popularity))
        rows[EASE].append(ease_row(split.train, split.test, genres))
        surprise = surprise_row(split.train, split.test, (dataset.scale.low, dataset.scale.high), genres)
        if surprise is not None:
            rows["Surprise SVD (library defaults)"].append(surprise)
        for name, (rank, sweeps) in SETTINGS.items():
            myfm = myfm_row(rank, sweeps, dataset, split.train, split.test, seed)
            missing_myfm = missing_myfm or myfm is None
            if myfm is not None:
                rows[name].append(myfm)
        print(f"split seed {seed} done", flush=True)

    summary = {name: _mean(values) for name, values in rows.items()}
    _print_table(summary, seeds)
    if missing_myfm:
        print(MISSING)
    _print_bars(summary)
    if args.json:
        print(json.dumps(summary))


def _mean(values: list[dict[str, float]]) -> dict[str, float]:
    keys = values[0].keys()
    return {key: float(np.mean([v[key] for v in values])) for key in keys}


def _print_table(summary: dict[str, dict[str, float]], seeds: list[int]) -> None:
    print()
    print(f"ml-latest-small, random 90/10, mean of split seeds {seeds}")
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"{'model':40s} " + " ".join(f"{header:>9s}" for header, _ in COLUMNS))
    for name, row in summary.items():
        print(f"{name:40s} " + " ".join(f"{_cell(row.get(key)):>9s}" for _, key in COLUMNS))
    print(
        "cover: catalog coverage; pers: personalization (1 - mean overlap of two users' lists); poprec: "
        "popularity-stratified recall (Steck 2011, gamma 0.5); miscal: genre miscalibration (KL, Steck 2018, "
        "lower is better)"
    )


def _print_bars(summary: dict[str, dict[str, float]]) -> None:
    default = summary[DEFAULT_ROW]
    checks: list[tuple[str, Callable[[], bool]]] = [
        ("sigmoid-mf RMSE <= 0.885", lambda: summary["sigmoid-mf"]["rmse"] <= 0.885),
        ("biased-mf RMSE <= 0.850", lambda: summary["biased-mf (L2 on touched rows)"]["rmse"] <= 0.850),
        ("default NDCG@10 > popularity", lambda: default["ndcg@10"] > summary[POPULARITY]["ndcg@10"]),
        ("default NDCG@10 >= 0.9 x EASE", lambda: default["ndcg@10"] >= 0.9 * summary[EASE]["ndcg@10"]),
        ("default NDCG@10 >= EASE (issue 14)", lambda: default["ndcg@10"] >= summary[EASE]["ndcg@10"]),
        (
            "default pop_recall@10 >= EASE (issue 14)",
            lambda: default["pop_recall@10"] >= summary[EASE]["pop_recall@10"],
        ),
        ("default coverage@10 >= 0.10 (2x issue 14's 0.05)", lambda: default["coverage@10"] >= 0.10),
        ("default RMSE <= 0.838", lambda: default["rmse"] <= 0.838),
    ]
    if "myFM rank 10, 200 sweeps" in summary:
        myfm = summary["myFM rank 10, 200 sweeps"]["rmse"]
        checks.append((f"default RMSE <= myFM rank 10's ({myfm:.4f}) - 0.005", lambda: default["rmse"] <= myfm - 0.005))
    if "Surprise SVD (library defaults)" in summary:
        svd = summary["Surprise SVD (library defaults)"]["rmse"]
        checks.append((f"default beats Surprise SVD ({svd:.4f}) by >= 0.025", lambda: svd - default["rmse"] >= 0.025))
    print()
    for label, check in checks:
        print(f"[{'met' if check() else 'NOT met'}] {label}")


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}" if value < 100 else f"{value:.1f}"


if __name__ == "__main__":
    main()
