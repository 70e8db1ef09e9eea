"""The Bayesian hybrid against myFM on ml-latest-small: random 90/10 splits, the same splits in the same run.

Prints test RMSE and training seconds (mean over split seeds, and per seed) of the default model (the hybrid under
`--solver auto`, which is `--solver gibbs` on data this size), the hybrid under `--solver loop` (the default before)
and `--solver als`, the Gibbs hybrid with time effects (`train/gibbs_time.py`; its test RMSE with
each test rating's date, and undated: at the latest training date, as `serve` predicts), biased-mf under
`--solver gibbs` (each with its shipped defaults, chosen on validation data only) and myFM's Gibbs-sampled
factorization machine (rank 10 and 200 sweeps, rank 20 and 300 sweeps) on the blocks of issue 15
(`myfm_common.py`). myFM trains on all of the training ratings; movierec carves its validation share out of them
(5%, 1% under `--solver gibbs`). Install myFM with `pip install myfm "setuptools<81"` (it imports pkg_resources);
without it its rows are skipped with a note. Last, the issue's bar: the default's mean RMSE at most myFM's (rank 10)
less 0.005, in at most twice its training time.

    python benchmarks/bayes.py [--seeds 0,1,2] [--only TEXT]
    python benchmarks/bayes.py --validation [--seeds 0,1]

`--validation` chooses settings without looking at a test pair: each split's training ratings lose a random 10%,
which both movierec and myFM are scored on after training on the rest; it prints the Gibbs hybrid as shipped and
without its flipped implicit block beside myFM with all its blocks, without the implicit blocks and without the
genres.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.loader import load_dataset
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.models import registry
from movierec.train.driver import fit
from myfm_common import MISSING, SETTINGS, fit_myfm

DEFAULT = "default (hybrid, --solver auto)"
"""The default model as `movierec train` trains it on this data (`registry.config_for_data`: gibbs here)."""
YARDSTICK = "myFM rank 10, 200 sweeps"
"""The issue's yardstick: the default model's mean RMSE at most its own less `MARGIN`, in at most twice its time."""
MARGIN = 0.005
VARIANTS: dict[str, dict[str, Any]] = {
    DEFAULT: {"model": "hybrid"},
    "hybrid, --solver loop": {"model": "hybrid", "solver": "loop"},
    "hybrid, --solver als": {"model": "hybrid", "solver": "als"},
    "hybrid, gibbs + time, dated": {"model": "hybrid", "solver": "gibbs", "use_time": True},
    "biased-mf, --solver gibbs": {"model": "biased-mf", "solver": "gibbs"},
}
VALIDATION_VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid, --solver gibbs": {"model": "hybrid", "solver": "gibbs"},
    "hybrid, gibbs, no flipped block": {"model": "hybrid", "solver": "gibbs", "use_implicit": False},
}
"""`--validation`: the Gibbs hybrid as shipped and without its flipped implicit block (`train/gibbs_implicit.py`),
beside `MYFM_ABLATIONS`."""
MYFM_ABLATIONS = {
    "myFM rank 10, 200 sweeps": (10, 200, {}),
    "myFM rank 10, no implicit blocks": (10, 200, {"implicit": False}),
    "myFM rank 10, no genres": (10, 200, {"genres": False}),
}
"""`--validation`: row name: (rank, sweeps, the blocks left out), to locate myFM's lead."""
VALIDATION_SHARE = 0.1
"""`--validation` holds out this share of each split's training ratings and scores on it."""
UNDATED = "hybrid, gibbs + time, undated"
"""The time-effects fit scored without dates (at the latest training date, as `serve` predicts)."""


def with_time(config: TrainConfig, use_time: bool) -> TrainConfig:
    """``config`` with the Gibbs time effects on or off."""
    return config.replace(use_time=use_time)


def movierec_row(
    settings: dict[str, Any], dataset: Dataset, train: Ratings, test: Ratings
) -> tuple[tuple[float, float], float | None]:
    """((test RMSE, training seconds), the undated test RMSE of a fit with time effects, else None)."""
    started = time.perf_counter()
    config = with_time(shipped(settings, dataset), settings.get("use_time", False))
    model = fit(config, dataset, train, progress=False).model
    seconds = time.perf_counter() - started
    undated = _rmse(model.predict(test.users, test.items), test.ratings)
    if not settings.get("use_time"):
        return (undated, seconds), None
    return (_rmse(model.predict(test.users, test.items, test.timestamps), test.ratings), seconds), undated


def shipped(settings: dict[str, Any], dataset: Dataset) -> TrainConfig:
    """The config of a row: the model's shipped defaults, ``settings`` on top, the solver as `movierec train` would
    choose it on ``dataset`` where the row names none."""
    options = {key: value for key, value in settings.items() if key not in ("model", "use_time")}
    return registry.config_for_data(settings["model"], lambda: len(dataset.ratings), **options)


def _rmse(predicted: np.ndarray, ratings: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - ratings) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=None, help="split seeds, comma-separated (0,1,2; 0,1 with --validation)")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score on a holdout of 10%% of each split's training ratings (never its test pairs), with myFM's "
        "ablations: for choosing settings",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="run only the movierec rows whose names contain this text (myFM's rows always run), e.g. 'gibbs'",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in (args.seeds or ("0,1" if args.validation else "0,1,2")).split(",")]
    variants = VALIDATION_VARIANTS if args.validation else VARIANTS
    if args.only is not None:
        variants = {name: settings for name, settings in variants.items() if args.only in name}
    myfm_settings = MYFM_ABLATIONS if args.validation else {name: (*setting, {}) for name, setting in SETTINGS.items()}

    dataset = load_dataset("ml-latest-small")
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    missing = False
    for seed in seeds:
        split = random_split(dataset.ratings, 0.1, seed=seed)
        if args.validation:
            split = random_split(split.train, VALIDATION_SHARE, seed=seed)
        for name, settings in variants.items():
            row, undated = movierec_row(settings, dataset, split.train, split.test)
            rows[name].append(row)
            if undated is not None:
                rows[UNDATED].append((undated, row[1]))
        for name, (rank, sweeps, blocks) in myfm_settings.items():
            fitted = fit_myfm(rank, sweeps, dataset, split.train, seed, **blocks)
            missing = missing or fitted is None
            if fitted is not None:
                predict, seconds = fitted
                rows[name].append((_rmse(predict(split.test.users, split.test.items), split.test.ratings), seconds))
        print(f"split seed {seed} done", flush=True)

    print()
    scored = f"validation RMSE (a holdout of {VALIDATION_SHARE:.0%} of the training ratings)"
    scored = scored if args.validation else "test RMSE"
    print(f"ml-latest-small, random 90/10, mean of split seeds {seeds}; {scored}")
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    per_seed = " ".join(f"{f'seed {s}':>8s}" for s in seeds)
    print(f"{'model':34s} {'RMSE':>8s} {'train s':>8s}  RMSE per split: {per_seed}")
    for name, values in rows.items():
        rmses, seconds = np.array([v[0] for v in values]), np.array([v[1] for v in values])
        cells = " ".join(f"{value:8.4f}" for value in rmses)
        print(f"{name:34s} {rmses.mean():8.4f} {seconds.mean():8.1f}                  {cells}")
    if missing:
        print(MISSING)
    for name, settings in variants.items():
        config = shipped(settings, dataset)
        if config.solver == "gibbs":
            print(
                f"{name}: --solver gibbs, dim {config.dim}, {config.epochs} sweeps, burn-in {config.gibbs_burn_in}, "
                f"thin {config.gibbs_thin}, stored {config.gibbs_stored or 'posterior mean'}, "
                f"flipped block {'on' if config.model == 'hybrid' and config.use_implicit else 'off'}, "
                f"validation share {config.val_fraction:.0%}"
            )

    if DEFAULT in rows and YARDSTICK in rows:
        print_bar(rows[DEFAULT], rows[YARDSTICK])


def print_bar(default: list[tuple[float, float]], yardstick: list[tuple[float, float]]) -> None:
    """The issue's bar: the default model's mean RMSE at most the yardstick's less ``MARGIN`` (and below it on
    every split), in at most twice the yardstick's mean training time."""
    ours, theirs = np.array(default), np.array(yardstick)
    gap, ratio = ours[:, 0].mean() - theirs[:, 0].mean(), ours[:, 1].mean() / theirs[:, 1].mean()
    every = bool((ours[:, 0] < theirs[:, 0]).all())
    print(f"default against {YARDSTICK}: {gap:+.4f} RMSE (lower on every split: {every}), {ratio:.2f}x its time")
    print(f"[{'met' if gap <= -MARGIN else 'NOT met'}] mean RMSE <= {YARDSTICK}'s - {MARGIN}")
    print(f"[{'met' if ratio <= 2 else 'NOT met'}] training time <= 2x {YARDSTICK}'s")


if __name__ == "__main__":
    main()
