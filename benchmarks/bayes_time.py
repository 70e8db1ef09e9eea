"""Time effects in the Gibbs hybrid, an ablation on validation ratings of ml-latest-small (never the test split).

For each split seed, the random 90/10 split's training ratings are split again, 90/10 (seed ``100 + seed``): the
hybrid under `--solver gibbs` (its shipped defaults) is fitted on the first part with and without the time effects
(`train/gibbs_time.py`: a movie bias per time bin, a drifting user bias) and scored on the second, with each
rating's date (`FactorModel.predict` with timestamps) and without (the latest training date, what `serve` uses).

    python benchmarks/bayes_time.py [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes import with_time
from movierec.data.loader import load_dataset
from movierec.data.split import random_split
from movierec.models import registry
from movierec.train.driver import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1", help="split seeds, comma-separated")
    args = parser.parse_args()
    dataset = load_dataset("ml-latest-small")
    print(f"{'split seed':>10s} {'time effects':>12s} {'valid RMSE dated':>17s} {'undated':>8s} {'train s':>8s}")
    for seed in (int(s) for s in args.seeds.split(",")):
        train = random_split(dataset.ratings, 0.1, seed=seed).train
        inner = random_split(train, 0.1, seed=100 + seed)
        valid = inner.test
        for use_time in (False, True):
            config = with_time(registry.config_for("hybrid", solver="gibbs"), use_time)
            started = time.perf_counter()
            model = fit(config, dataset, inner.train, progress=False).model
            seconds = time.perf_counter() - started
            dated = _rmse(model.predict(valid.users, valid.items, valid.timestamps), valid.ratings)
            undated = _rmse(model.predict(valid.users, valid.items), valid.ratings)
            label = "on" if use_time else "off"
            print(f"{seed:>10d} {label:>12s} {dated:17.4f} {undated:8.4f} {seconds:8.1f}", flush=True)


def _rmse(predicted: np.ndarray, ratings: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - ratings) ** 2)))


if __name__ == "__main__":
    main()
