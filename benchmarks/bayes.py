"""The Bayesian hybrid against myFM on ml-latest-small: random 90/10 splits, the same splits in the same run.

Prints test RMSE and training seconds (mean over split seeds, and per seed) of the default model, the hybrid under
`--solver als` and `--solver gibbs`, biased-mf under `--solver gibbs` (each with its shipped defaults, chosen on
validation data only) and myFM's Gibbs-sampled factorization machine (rank 10 and 200 sweeps, rank 20 and 300
sweeps) on the blocks of issue 15: user and movie one-hot, the SVD++-style implicit blocks (the movies a user
rated, the users who rated a movie, each scaled by 1/sqrt(count)) and genres. myFM trains on all of the training
ratings; movierec carves its validation share out of them (5%, 1% under `--solver gibbs`). Install myFM with
`pip install myfm "setuptools<81"` (it imports pkg_resources); without it its rows are skipped with a note.

    python benchmarks/bayes.py [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from movierec.data.loader import load_dataset
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.models import registry
from movierec.models.features import build_item_features
from movierec.train.driver import fit

VARIANTS: dict[str, dict[str, Any]] = {
    "default (hybrid, --solver loop)": {"model": "hybrid"},
    "hybrid, --solver als": {"model": "hybrid", "solver": "als"},
    "hybrid, --solver gibbs": {"model": "hybrid", "solver": "gibbs"},
    "biased-mf, --solver gibbs": {"model": "biased-mf", "solver": "gibbs"},
}
MYFM = {"myFM rank 10, 200 sweeps": (10, 200), "myFM rank 20, 300 sweeps": (20, 300)}

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def movierec_row(settings: dict[str, Any], dataset: Dataset, train: Ratings, test: Ratings) -> tuple[float, float]:
    started = time.perf_counter()
    options = {key: value for key, value in settings.items() if key != "model"}
    model = fit(registry.config_for(settings["model"], **options), dataset, train, progress=False).model
    seconds = time.perf_counter() - started
    return _rmse(model.predict(test.users, test.items), test.ratings), seconds


def myfm_row(
    rank: int, sweeps: int, dataset: Dataset, train: Ratings, test: Ratings, seed: int
) -> tuple[float, float] | None:
    """myFM on the issue's blocks; None when myFM is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # myFM imports the deprecated pkg_resources
            import myfm
        from scipy import sparse
    except ImportError:
        return None
    started = time.perf_counter()
    n_users, n_items = train.n_users, train.n_items
    rated = sparse.csr_matrix((np.ones(len(train)), (train.users, train.items)), shape=(n_users, n_items))
    user_scale = 1 / np.sqrt(np.maximum(rated.sum(1).A[:, 0], 1))
    item_scale = 1 / np.sqrt(np.maximum(rated.sum(0).A[0], 1))
    features = build_item_features(dataset, n_items, genres=True, years=False, tags=False)
    genres = sparse.csr_matrix(
        (features.weights, features.indices, features.indptr), shape=(n_items, features.n_features)
    )
    user_block = sparse.hstack([sparse.identity(n_users), sparse.diags(user_scale) @ rated]).tocsr()
    item_block = sparse.hstack([sparse.identity(n_items), sparse.diags(item_scale) @ rated.T, genres]).tocsr()
    shapes = [n_users, n_items, n_items, n_users, features.n_features]

    def blocks(part: Ratings) -> list[Any]:
        return [myfm.RelationBlock(part.users, user_block), myfm.RelationBlock(part.items, item_block)]

    model = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    empty = sparse.csr_matrix((len(train), 0))
    model.fit(empty, train.ratings, X_rel=blocks(train), n_iter=sweeps, group_shapes=shapes)
    seconds = time.perf_counter() - started
    predicted = model.predict(sparse.csr_matrix((len(test), 0)), X_rel=blocks(test))
    return _rmse(np.clip(predicted, dataset.scale.low, dataset.scale.high), test.ratings), seconds


def _rmse(predicted: np.ndarray, ratings: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - ratings) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="split seeds, comma-separated")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    dataset = load_dataset("ml-latest-small")
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    missing = False
    for seed in seeds:
        split = random_split(dataset.ratings, 0.1, seed=seed)
        for name, settings in VARIANTS.items():
            rows[name].append(movierec_row(settings, dataset, split.train, split.test))
        for name, (rank, sweeps) in MYFM.items():
            row = myfm_row(rank, sweeps, dataset, split.train, split.test, seed)
            missing = missing or row is None
            if row is not None:
                rows[name].append(row)
        print(f"split seed {seed} done", flush=True)

    print()
    print(f"ml-latest-small, random 90/10, mean of split seeds {seeds}")
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    per_seed = " ".join(f"{f'seed {s}':>8s}" for s in seeds)
    print(f"{'model':34s} {'RMSE':>8s} {'train s':>8s}  RMSE per split: {per_seed}")
    for name, values in rows.items():
        rmses, seconds = np.array([v[0] for v in values]), np.array([v[1] for v in values])
        cells = " ".join(f"{value:8.4f}" for value in rmses)
        print(f"{name:34s} {rmses.mean():8.4f} {seconds.mean():8.1f}                  {cells}")
    if missing:
        print('myFM is not installed: pip install myfm "setuptools<81"')
    for name in VARIANTS:
        config = registry.config_for(VARIANTS[name]["model"], solver=VARIANTS[name].get("solver"))
        if config.solver == "gibbs":
            print(
                f"{name}: dim {config.dim}, {config.epochs} sweeps, burn-in {config.gibbs_burn_in}, "
                f"thin {config.gibbs_thin}, stored {config.gibbs_stored or 'posterior mean'}, "
                f"validation share {config.val_fraction:.0%}"
            )


if __name__ == "__main__":
    main()
