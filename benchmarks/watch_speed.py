"""Speed of the "likely to watch" fit (iALS) as `movierec train` runs it, next to the rating fit's ALS epochs, on
ML-25M-shaped synthetic data.

    python benchmarks/watch_speed.py                                   # 25,000,095 ratings, dim 128
    python benchmarks/watch_speed.py --scale 0.2 --threads 1 --repeat 3
    python benchmarks/watch_speed.py --scale 0.1 --dims 64,128 --exact

- watch fit: the two fits `movierec train` makes (``driver.finish_model``): ``fit_watch`` on the fit part (all
  but the validation share) with the configured sweeps, then the warm refit on every rating from its movie
  vectors (``watch.REFIT_ITERATIONS`` sweeps), each ending with the users' signed solve; row solves by
  ``CG_STEPS`` preconditioned conjugate gradient steps, or (``--exact``) also exactly (``cg_steps`` 0: a Cholesky
  of each row's ``dim x dim`` Gram). The objective (of the refit, on the signed targets) shows where they land
  beside the exact fit; it is no measure of convergence across schedules (movie vectors fitted further on who
  watched what can score a higher one on the signed targets: two unpreconditioned steps land below the exact fit).
- rating fit: an epoch of ``--solver als`` for biased MF at ``--rating-dim`` (81: its default, as in the whole
  job; ``train_speed.measure_fast``, without the SVD++ term; its CPU seconds times the epochs' share of the wall
  time, the setup left out), times ``--rating-epochs`` (9: where ALS stops early on ML-25M, issue 16).
- CPU seconds (the process's, all threads) are the measure on a shared machine: with ``--threads 1`` they do not
  depend on what else runs. Wall seconds are printed beside them. ``--repeat N`` keeps the least of N runs.
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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psutil
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.data.split import validation_split
from movierec.data.synthetic import ML25M_RATINGS
from movierec.models.watch import Taste
from movierec.train.als import build_side
from movierec.train.watch import (
    CG_STEPS,
    WatchFactors,
    WatchSettings,
    configured_settings,
    configured_taste,
    fit_watch,
    watch_objective,
)
from train_speed import measure_fast, shape_for, synthetic_dataset  # same folder

GiB = 1 << 30


@dataclass(frozen=True)
class Timed:
    """What a step returned, its CPU and wall seconds and the most the resident memory rose (bytes)."""

    result: Any
    cpu: float
    wall: float
    memory: float


def timed(work: Callable[[], Any]) -> Timed:
    """``work()`` timed, its memory sampled every 50 ms."""
    process = psutil.Process()
    start = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done.set()
    sampler.join()
    return Timed(result, cpu, wall, max(peak, process.memory_info().rss) - start)


def least(work: Callable[[], Any], repeat: int) -> Timed:
    """The run of ``work`` with the least CPU time among ``repeat``."""
    return min((timed(work) for _ in range(repeat)), key=lambda run: run.cpu)


def job_fits(train: Ratings, config: TrainConfig, cg_steps: int) -> tuple[WatchFactors, float]:
    """The watch fit as ``driver.finish_model`` makes it (on the fit part, then the warm refit on all of
    ``train``) with ``cg_steps``; the refit's factors and the CPU seconds of the first fit."""
    mean = float(train.ratings.mean())
    taste = configured_taste(config, mean)
    fit_part = validation_split(train, fraction=config.val_fraction, seed=config.seed).train
    started = time.process_time()
    first = fit_watch(fit_part, replace(configured_settings(config), cg_steps=cg_steps), taste, config.seed)
    first_cpu = time.process_time() - started
    refit = replace(configured_settings(config, refit=True), cg_steps=cg_steps)
    return fit_watch(train, refit, taste, config.seed, start=first.item), first_cpu


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
    parser.add_argument("--dims", default="128", help="comma-separated watch dims (default 128: the default)")
    parser.add_argument("--sweeps", type=int, help="sweeps of the fit on the fit part (default: the configured)")
    parser.add_argument("--rating-dim", type=int, default=81, help="dim of the rating fit (default 81: biased-mf's)")
    parser.add_argument("--als-epochs", type=int, default=2, help="rating-fit epochs to time (default 2)")
    parser.add_argument(
        "--rating-epochs", type=int, default=9, help="epochs of a rating fit (default 9: ALS stops there on ML-25M)"
    )
    parser.add_argument("--exact", action="store_true", help="also time the exact watch fit (slow)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each fit, the least CPU time kept (default 1)")
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
    base = TrainConfig(model="biased-mf", device="cpu", use_implicit=False, seed=args.seed)
    if args.sweeps:
        base = base.replace(watch_iterations=args.sweeps)
    refit = configured_settings(base, refit=True).iterations
    print(
        f"watch_speed: {n_ratings:,} ratings ({n_users:,} users x {n_items:,} movies); watch fit on the fit part "
        f"({base.watch_iterations} sweeps) + warm refit on all ({refit} sweeps), each + the signed user solve; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; data generated in "
        f"{time.perf_counter() - started:.1f} s; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        flush=True,
    )
    rating = least(lambda: measure_fast(base.replace(dim=args.rating_dim), data, args.als_epochs), args.repeat)
    epochs = rating.result["epoch_seconds"]
    epoch_cpu = rating.cpu * sum(epochs) / rating.wall / len(epochs)  # the epochs' share of its wall time
    rating_cpu = args.rating_epochs * epoch_cpu
    print(
        f"rating fit (als, dim {args.rating_dim}): {epoch_cpu:6.1f} s CPU an epoch ({args.rating_epochs} epochs: "
        f"{rating_cpu:.1f} s CPU)  peak +{rating.memory / GiB:.2f} GiB",
        flush=True,
    )
    for dim in (int(d) for d in args.dims.split(",")):
        config = base.replace(watch_dim=dim)
        taste = configured_taste(config, float(train.ratings.mean()))
        for steps in (0, CG_STEPS)[not args.exact :]:
            run = least(lambda config=config, steps=steps: job_fits(train, config, steps), args.repeat)
            factors, first_cpu = run.result
            settings = replace(configured_settings(config), cg_steps=steps)
            name = f"CG {steps} steps" if steps else "exact (Cholesky)"
            print(
                f"dim {dim:>3}  watch fit {name:<16}: {run.cpu:7.1f} s CPU (fit part {first_cpu:.1f} + refit "
                f"{run.cpu - first_cpu:.1f}; {run.cpu / rating_cpu:.2f}x the rating fit), {run.wall:.1f} s wall  "
                f"objective {signed_objective(train, factors, settings, taste):,.0f}  peak +{run.memory / GiB:.2f} GiB",
                flush=True,
            )
    print(f"process peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
