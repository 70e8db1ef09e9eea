"""Speed of the "likely to watch" fit (iALS) alone, exact row solves beside conjugate gradients, next to the
rating fit's ALS epoch at the same dim, on ML-25M-shaped synthetic data.

    python benchmarks/watch_speed.py                          # 25,000,095 ratings, dims 64 and 128, 8 sweeps
    python benchmarks/watch_speed.py --scale 0.25 --dims 128

- watch fit: ``fit_watch`` as training runs it (grouping the ratings both ways, ``--sweeps`` user and movie
  half-steps, then the users' signed solve), with every row solved exactly (``cg_steps`` 0: a Cholesky of its
  ``dim x dim`` Gram) or by ``CG_STEPS`` conjugate gradient steps; ``movierec train`` runs it twice (once on the
  fit part for the ranking weights, once on all training ratings). The objective (on the signed targets) shows
  that both land in the same place.
- rating fit: the median epoch of ``--solver als`` for biased MF at the same dim (``train_speed.measure_fast``,
  without the SVD++ term), and that times ``--rating-epochs`` (9: where ALS stops early on ML-25M, issue 16).
- peak memory: the most the process's resident memory rose above what it held before the step (sampled).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.data.synthetic import ML25M_RATINGS
from movierec.models.watch import Taste
from movierec.train.als import build_side
from movierec.train.watch import CG_STEPS, WatchFactors, WatchSettings, fit_watch, watch_objective
from train_speed import measure_fast, shape_for, synthetic_dataset  # same folder

GiB = 1 << 30


def peak_rise(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result, its wall seconds and the most the resident memory rose above its start (bytes)."""
    process = psutil.Process()
    start = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tick = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - tick
    done.set()
    sampler.join()
    return result, seconds, max(peak, process.memory_info().rss) - start


def signed_objective(train: Ratings, factors: WatchFactors, settings: WatchSettings, taste: Taste) -> float:
    """The iALS objective of ``factors`` on the signed targets of ``train``'s ratings."""
    targets = taste.targets(train.users, train.ratings, train.n_users)
    side = build_side(train.users, train.items, targets, train.n_users, train.n_items, torch.device("cpu"))

    def padded(table: np.ndarray) -> torch.Tensor:
        return torch.cat([torch.from_numpy(table), torch.zeros(1, table.shape[1])])

    return watch_objective(side, padded(factors.user), padded(factors.item), settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of ML-25M's ratings (default 1: full size)")
    parser.add_argument("--dims", default="64,128", help="comma-separated dims (default 64,128)")
    parser.add_argument("--sweeps", type=int, default=8, help="alternating sweeps of the watch fit (default 8)")
    parser.add_argument("--als-epochs", type=int, default=2, help="rating-fit epochs to time (default 2)")
    parser.add_argument(
        "--rating-epochs", type=int, default=9, help="epochs of a rating fit (default 9: ALS stops there on ML-25M)"
    )
    parser.add_argument("--no-exact", action="store_true", help="skip the exact watch fit")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_ratings = round(ML25M_RATINGS * args.scale)
    started = time.perf_counter()
    data = synthetic_dataset(n_ratings, args.seed)
    train = data.ratings
    n_users, n_items = shape_for(n_ratings)
    taste = Taste(float(train.ratings.mean()), TrainConfig().watch_margin, TrainConfig().watch_dislike)
    print(
        f"watch_speed: {n_ratings:,} ratings ({n_users:,} users x {n_items:,} movies), {args.sweeps} sweeps + the "
        f"signed user solve, torch {torch.__version__}, {torch.get_num_threads()} threads; data generated in "
        f"{time.perf_counter() - started:.1f} s; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        flush=True,
    )
    rating_config = TrainConfig(model="biased-mf", device="cpu", use_implicit=False)
    for dim in (int(d) for d in args.dims.split(",")):
        rating_fit, _, als_memory = peak_rise(
            lambda config=rating_config.replace(dim=dim): measure_fast(config, data, args.als_epochs)
        )
        epoch = float(np.median(rating_fit["epoch_seconds"]))
        rating_seconds = args.rating_epochs * epoch
        print(
            f"dim {dim:>3}  rating fit (als) : {epoch:7.1f} s an epoch "
            f"({args.rating_epochs} epochs: {rating_seconds:.1f} s)  peak +{als_memory / GiB:.2f} GiB",
            flush=True,
        )
        for steps in (0, CG_STEPS)[args.no_exact :]:
            settings = WatchSettings(dim=dim, iterations=args.sweeps, cg_steps=steps)
            factors, seconds, memory = peak_rise(lambda settings=settings: fit_watch(train, settings, taste))
            name = f"CG, {steps} steps" if steps else "exact (Cholesky)"
            objective = signed_objective(train, factors, settings, taste)
            print(
                f"dim {dim:>3}  watch fit {name:<16}: {seconds:7.1f} s  ({seconds / rating_seconds:.2f}x the rating "
                f"fit)  objective {objective:,.0f}  peak +{memory / GiB:.2f} GiB",
                flush=True,
            )
    print(f"process peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
