"""Training speed of the fast path (``--solver als``) beside the reference loop, measured in the same run.

    python benchmarks/train_speed.py                      # 25,000,095 ML-25M-shaped ratings, dim 64
    python benchmarks/train_speed.py --ratings 2000000 --json
    python benchmarks/train_speed.py --model hybrid --ratings 2000000 --threads 1

- fast: the epochs of ``solver="als"`` as ``driver.fit`` runs them (one epoch = one sweep over every user
  and every movie, then the validation RMSE); ratings/s is the median over the epochs of training ratings /
  epoch seconds. One-time setup (validation split, grouping the ratings) is printed apart.
- reference: the loop the project grew from: dense ``nn.Embedding`` tables, Adam with ``weight_decay``,
  batch 8192 (``sgd.run_epoch`` on a bounded number of batches after a warm-up batch).
- sparse: the loop with sparse gradients and large batches (SparseAdam, batch 65536), the other candidate.

- exact (``--exact``): the same epochs with every row solved exactly (``als_cg_steps`` 0), for the validation RMSE
  the fast path must stay within ``EXACT_RMSE_BAR`` of at the same number of epochs (issue 16); ``--cg-steps``
  sets the fast path's steps (default: ``als_cg_steps``'s).
- gibbs (``--gibbs``): the same number of sweeps of ``--solver gibbs`` (no burn-in: every sweep costs the same),
  taking turns with the ALS epochs (so that both meet the same load on a shared machine), and one sweep's cost in
  ALS epochs (issue 15's bar: at most 2 at ML-25M size): wall seconds (medians) and the process's CPU seconds
  (minima) per sweep, the CG steps of its row draws (``gibbs_cg``) if any, and the validation RMSE of the sweeps'
  average. ``--gibbs-draws cholesky``, ``cg`` or ``coordinate`` forces one way of drawing the rows (default: the
  size rules, ``gibbs_coordinate.draws_by_coordinates`` then ``gibbs_cg.draws_by_cg``).

With ``--json`` the last line is ``{"fast_ratings_per_s", "reference_ratings_per_s", "ratio"}`` (and
``"exact_ratings_per_s", "rmse_gap"`` with ``--exact``).
Users scale with the number of ratings and movies with its square root (the full size is ML-25M's own).

``--model hybrid`` (default ``biased-mf``) times the hybrid the same way, both solvers without the SVD++ term
(ALS trains it without; the loop row is the same model): the synthetic movies get ML-like genres and years
(``synthetic_movies``) and made-up tags (``TAGS_PER_MOVIE`` a movie on average, long-tailed over ``TAG_NAMES``
names), so the feature rows are ~20 genres, ~10 decades and the 300 most used tags. The sparse-gradient row is
left out (the hybrid's tables are dense), and a last reference row times the loop's hybrid with its SVD++ term.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from movierec.config import TrainConfig
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, Ratings, RatingScale
from movierec.data.split import validation_split
from movierec.data.synthetic import ML25M_ITEMS, ML25M_RATINGS, ML25M_USERS, generate_ratings, synthetic_movies
from movierec.models import registry
from movierec.models.features import build_item_features
from movierec.train import driver, gibbs, gibbs_cg, gibbs_coordinate, sgd

FAST_BAR = 3_000_000
CG_BAR = 10_000_000
"""Issue 16: the fast path at ML-25M size, dim 64, on the 2-core dev machine."""
EXACT_RMSE_BAR = 0.001
GIBBS_SWEEP_BAR = 2.0
"""Issue 15: a Gibbs sweep costs at most this many ALS epochs at ML-25M size."""
RATIO_BAR = 25.0
REFERENCE = {"optimizer": "adam", "weight_decay": 1e-5, "batch_size": 8192, "lr": 0.005}
SPARSE = {"optimizer": "sparse-adam", "batch_size": 65536, "lr": 0.005}
MODELS = ("biased-mf", "hybrid")
GIBBS_DRAWS = ("auto", "cholesky", "cg", "coordinate")
TAGS_PER_MOVIE = 3.0
TAG_NAMES = 1000


def shape_for(n_ratings: int) -> tuple[int, int]:
    """Users and movies for ``n_ratings``: ML-25M's own at full size, scaled down otherwise."""
    fraction = n_ratings / ML25M_RATINGS
    n_users = max(1, round(ML25M_USERS * fraction))
    n_items = min(max(1, round(ML25M_ITEMS * math.sqrt(fraction))), ML25M_ITEMS)
    return n_users, max(n_items, math.ceil(n_ratings / n_users))


def synthetic_dataset(n_ratings: int, seed: int = 0, features: bool = False) -> Dataset:
    """ML-25M-shaped synthetic ratings as a Dataset: placeholder movies, or with ``features`` synthetic genres,
    years and tags for the hybrid."""
    n_users, n_items = shape_for(n_ratings)
    ratings = generate_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)
    if not features:
        return Dataset("synthetic", ratings, align_movies(None, ratings.item_vocab), None, RatingScale(0.5, 5.0, 0.5))
    movies = align_movies(synthetic_movies(n_items, seed), ratings.item_vocab)
    return Dataset("synthetic", ratings, movies, synthetic_tags(movies, seed), RatingScale(0.5, 5.0, 0.5))


def synthetic_tags(movies: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Made-up tag applications: Poisson(TAGS_PER_MOVIE) a movie, names drawn with Zipf-like popularity."""
    rng = np.random.default_rng(seed + 1)
    per_movie = rng.poisson(TAGS_PER_MOVIE, len(movies))
    popularity = 1.0 / np.arange(1, TAG_NAMES + 1)
    names = rng.choice(TAG_NAMES, size=int(per_movie.sum()), p=popularity / popularity.sum())
    return pd.DataFrame(
        {
            "userId": 1,
            "movieId": np.repeat(movies["movieId"].to_numpy(), per_movie),
            "tag": [f"tag{n}" for n in names],
            "timestamp": 0,
        }
    )


def measure_fast(config: TrainConfig, data: Dataset, epochs: int, solver: str = "als") -> dict[str, Any]:
    """Time ``epochs`` epochs of ``solver`` (als or gibbs) as ``driver.fit`` runs them: one sweep + validation RMSE.

    The run's one-time work is timed apart: the validation split and grouping the ratings both ways on the
    device (the fit's closing choice of the ranking weight, shared with the loop, is left out).
    """
    return measure_interleaved(config, data, epochs, (solver,))[solver]


def measure_interleaved(config: TrainConfig, data: Dataset, epochs: int, solvers: tuple[str, ...]) -> dict[str, Any]:
    """``measure_fast`` for each of ``solvers`` on one validation split, their epochs taking turns (epoch 1 of each,
    then epoch 2, ...): on a shared machine the ratio of their times is then measured under the same load."""
    started = time.perf_counter()
    device = driver.resolve_device(config.device)
    split = validation_split(data.ratings, fraction=config.val_fraction, seed=config.seed)
    split_seconds = time.perf_counter() - started
    built = {}
    for name in solvers:
        started = time.perf_counter()
        solver = driver.make_solver(
            config.replace(solver=name, epochs=max(config.epochs, epochs), gibbs_burn_in=0),
            data, split.train, split.test, device,
        )  # fmt: skip
        solver.start()
        _synchronize(device)
        stats: dict[str, Any] = {
            "setup_seconds": split_seconds + time.perf_counter() - started,
            "ratings": len(split.train),
        }
        built[name] = solver, stats | {"epoch_seconds": [], "cpu_seconds": [], "val_rmse": []}
    for epoch in range(1, epochs + 1):
        for solver, stats in built.values():
            tick, cpu_tick = time.perf_counter(), time.process_time()
            solver.run_epoch(epoch)
            stats["val_rmse"].append(solver.validation_rmse())
            _synchronize(device)
            stats["epoch_seconds"].append(time.perf_counter() - tick)
            stats["cpu_seconds"].append(time.process_time() - cpu_tick)
    for _, stats in built.values():
        stats["ratings_per_s"] = statistics.median(len(split.train) / s for s in stats["epoch_seconds"])
    return {name: stats for name, (_, stats) in built.items()}


class BoundedBatches:
    """A ``BatchSource`` that serves only its first ``n_batches`` batches per epoch (for timing)."""

    def __init__(self, source: sgd.BatchSource, n_batches: int, batch_size: int) -> None:
        self.source, self.n_batches, self.batch_size = source, n_batches, batch_size

    def __len__(self) -> int:
        return min(len(self.source), self.n_batches * self.batch_size)

    def epoch(self, batch_size: int, seed: int, epoch: int) -> Iterator[Any]:
        return itertools.islice(self.source.epoch(batch_size, seed, epoch), self.n_batches)


def measure_loop(config: TrainConfig, data: Dataset, n_batches: int) -> dict[str, Any]:
    """Ratings/s of ``sgd.run_epoch`` over ``n_batches`` batches, after one warm-up batch."""
    torch.manual_seed(config.seed)
    device = driver.resolve_device(config.device)
    train: Ratings = data.ratings
    module: Any = registry.get(config.model).build(config, data, train).to(device)
    module.init_from_mean(float(train.ratings.mean()))
    optimizer = sgd.make_optimizer(config, module)
    source = sgd.BatchSource(train, device)
    warm_up: Any = BoundedBatches(source, 1, config.batch_size)
    sgd.run_epoch(module, optimizer, warm_up, config, epoch=1)  # allocations
    bounded: Any = BoundedBatches(source, n_batches, config.batch_size)
    _synchronize(device)
    started = time.perf_counter()
    loss, _ = sgd.run_epoch(module, optimizer, bounded, config, epoch=2)
    _synchronize(device)
    seconds = time.perf_counter() - started
    n = min(len(train), n_batches * config.batch_size)
    return {"ratings_per_s": n / seconds, "seconds": seconds, "ratings": n, "loss": loss}


def force_gibbs_draws(way: str) -> None:
    """``--gibbs-draws``: every side's rows coordinate-wise, or by CG, or by Cholesky (the size rules moved), or the
    rules as they are."""
    if way == "coordinate":
        gibbs_coordinate.COORDINATE_FROM_RATINGS = gibbs_coordinate.COORDINATE_FROM_WIDTH = 0
    elif way in ("cg", "cholesky"):
        gibbs_coordinate.COORDINATE_FROM_RATINGS = sys.maxsize
    if way == "cg":
        gibbs_cg.CG_FROM_RATINGS = gibbs_cg.CG_FROM_WIDTH = 0
    elif way == "cholesky":
        gibbs_cg.CG_FROM_RATINGS = sys.maxsize


def counted_cg_steps() -> list[int]:
    """The list that the sampler's CG draws (``gibbs.draw_side_cg``, wrapped) extend with each block's steps."""
    steps: list[int] = []
    draw = gibbs.draw_side_cg

    def counting(*args: Any, **kwargs: Any) -> list[int]:
        taken = draw(*args, **kwargs)
        steps.extend(taken)
        return taken

    gibbs.draw_side_cg = counting
    return steps


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=ML25M_RATINGS, help="synthetic ratings (default ML-25M's)")
    parser.add_argument("--model", choices=MODELS, default="biased-mf", help="model to time (default biased-mf)")
    parser.add_argument("--dim", type=int, default=64, help="factors per user and movie")
    parser.add_argument("--epochs", type=int, default=3, help="fast-path epochs to time")
    parser.add_argument("--cg-steps", type=int, default=None, help="fast path's CG steps (default: the shipped)")
    parser.add_argument("--exact", action="store_true", help="also time exact row solves and compare RMSE")
    parser.add_argument("--gibbs", action="store_true", help="also time sweeps of --solver gibbs (issue 15)")
    parser.add_argument(
        "--gibbs-draws",
        choices=GIBBS_DRAWS,
        default="auto",
        help="gibbs rows: cholesky, cg, coordinate or the size rules",
    )
    parser.add_argument("--reference-batches", type=int, default=40, help="reference batches to time")
    parser.add_argument("--no-sparse", action="store_true", help="skip the sparse-gradient loop")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    hybrid = args.model == "hybrid"
    data = synthetic_dataset(args.ratings, args.seed, features=hybrid)
    n_users, n_items = shape_for(args.ratings)
    base = TrainConfig(model=args.model, dim=args.dim, device=args.device, seed=args.seed, use_implicit=False)
    if args.cg_steps is not None:
        base = base.replace(als_cg_steps=args.cg_steps)
    device = driver.resolve_device(args.device)
    print(
        f"train_speed: {args.model}, {args.ratings:,} ratings ({n_users:,} users x {n_items:,} movies), "
        f"dim {args.dim}, device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"data generated in {time.perf_counter() - started:.1f} s; load average {_load()}",
        flush=True,
    )
    if hybrid:
        features = build_item_features(data, data.ratings.n_items)
        groups = ", ".join(f"{len(features.group(g))} {g}s" for g in ("genre", "year", "tag"))
        print(f"hybrid features: {groups}; {features.weights.size:,} movie-feature entries", flush=True)

    force_gibbs_draws(args.gibbs_draws)
    cg_steps = counted_cg_steps()
    timed = measure_interleaved(base, data, args.epochs, ("als", "gibbs") if args.gibbs else ("als",))
    quick, gibbs = timed["als"], timed.get("gibbs")
    epochs = ", ".join(f"{s:.2f}" for s in quick["epoch_seconds"])
    print(
        f"fast (als)        : {quick['ratings_per_s']:>12,.0f} ratings/s  (median of {args.epochs} epochs, "
        f"{base.als_cg_steps} CG steps; epoch seconds {epochs}, CPU seconds "
        f"{', '.join(f'{s:.2f}' for s in quick['cpu_seconds'])}; one-time setup {quick['setup_seconds']:.1f} s; "
        f"validation RMSE {quick['val_rmse'][-1]:.4f})",
        flush=True,
    )
    exact = measure_fast(base.replace(als_cg_steps=0), data, args.epochs) if args.exact else None
    if exact is not None:
        gap = quick["val_rmse"][-1] - exact["val_rmse"][-1]
        print(
            f"exact (als)       : {exact['ratings_per_s']:>12,.0f} ratings/s  (every row by Cholesky; validation "
            f"RMSE {exact['val_rmse'][-1]:.4f}; fast - exact = {gap:+.4f}, bar {EXACT_RMSE_BAR})",
            flush=True,
        )
    if gibbs is not None:
        sweep = statistics.median(gibbs["epoch_seconds"])
        als_epoch = statistics.median(quick["epoch_seconds"])
        cpu_ratio = min(gibbs["cpu_seconds"]) / min(quick["cpu_seconds"])
        steps = f"median {statistics.median(cg_steps):.0f}, max {max(cg_steps)}" if cg_steps else "none (no CG draws)"
        print(
            f"gibbs (sampler)   : {gibbs['ratings_per_s']:>12,.0f} ratings/s  (median of {args.epochs} sweeps; sweep "
            f"seconds {', '.join(f'{s:.2f}' for s in gibbs['epoch_seconds'])}, CPU seconds "
            f"{', '.join(f'{s:.2f}' for s in gibbs['cpu_seconds'])}; CG steps a block {steps}; validation RMSE of the "
            f"average {gibbs['val_rmse'][-1]:.4f}; one sweep / one ALS epoch = {sweep / als_epoch:.2f} in wall "
            f"seconds (medians), {cpu_ratio:.2f} in CPU seconds (minima), bar {GIBBS_SWEEP_BAR})",
            flush=True,
        )
    reference = measure_loop(base.replace(**REFERENCE), data, args.reference_batches)
    print(
        f"reference (adam)  : {reference['ratings_per_s']:>12,.0f} ratings/s  (dense tables, Adam + weight_decay, "
        f"batch 8192, {reference['ratings']:,} ratings in {reference['seconds']:.1f} s)",
        flush=True,
    )
    if hybrid:
        implicit = measure_loop(base.replace(**REFERENCE, use_implicit=True), data, args.reference_batches)
        print(
            f"loop with SVD++   : {implicit['ratings_per_s']:>12,.0f} ratings/s  (the loop's hybrid with its SVD++ "
            f"term, same settings, {implicit['ratings']:,} ratings in {implicit['seconds']:.1f} s)",
            flush=True,
        )
    elif not args.no_sparse:
        sparse = measure_loop(base.replace(**SPARSE), data, max(4, args.reference_batches // 4))
        print(
            f"sparse-adam loop  : {sparse['ratings_per_s']:>12,.0f} ratings/s  (sparse gradients, batch 65536, "
            f"{sparse['ratings']:,} ratings in {sparse['seconds']:.1f} s)",
            flush=True,
        )
    ratio = quick["ratings_per_s"] / reference["ratings_per_s"]
    one_pass = args.ratings / quick["ratings_per_s"]
    print(
        f"ratio fast/reference: {ratio:.1f}x (bar {RATIO_BAR:.0f}x); fast bar {FAST_BAR:,} ratings/s (issue 16: "
        f"{CG_BAR:,} at ML-25M size, dim 64); one pass over {args.ratings:,} ratings: {one_pass:.1f} s"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "fast_ratings_per_s": round(quick["ratings_per_s"]),
                    "reference_ratings_per_s": round(reference["ratings_per_s"]),
                    "ratio": round(ratio, 2),
                    **(
                        {
                            "exact_ratings_per_s": round(exact["ratings_per_s"]),
                            "rmse_gap": quick["val_rmse"][-1] - exact["val_rmse"][-1],
                        }
                        if exact is not None
                        else {}
                    ),
                    **({"gibbs_ratings_per_s": round(gibbs["ratings_per_s"])} if gibbs is not None else {}),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
