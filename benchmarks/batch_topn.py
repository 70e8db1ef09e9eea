"""Batch top-N for every user of an ML-25M-sized model, beside a naive per-user loop; and new-user fold-in.

    python benchmarks/batch_topn.py                      # 162,541 users x 59,047 movies, dim 64, 2 threads
    python benchmarks/batch_topn.py --users 20000        # a quicker, smaller run
    python benchmarks/batch_topn.py --device cuda --chunk 8192 --skip-fold-in

Part 1 builds a synthetic ``FactorParams`` of that size (random factors and biases, a popularity prior with
rank weight 0.5) and ML-25M-shaped rated sets from ``movierec.data.synthetic.generate_ratings``, then times
``batch_top_n`` over all users (chunked matrix product + ``torch.topk``, rated movies excluded) and samples
the process's RSS while it runs to report its peak memory above the starting point. The reference is the
obvious per-user NumPy loop (``rank_scores`` of one user, mask, ``argpartition``) timed on ``--sample`` users
and extrapolated to all of them; both must pick the same lists.

Part 2 times a new user's request at ML-25M size with dim 128: ``FactorModel.fold_in`` from 20 ratings alone,
and ``Recommender.recommend_new_user`` end to end (fold-in, scoring every movie, filters, top-10,
explanations), beside one full scoring pass (the matrix-vector product every request needs anyway).

NumPy's OpenBLAS is held to one thread (unless OPENBLAS_NUM_THREADS is set): its tiny multi-threaded solves
stall for tens to hundreds of milliseconds waiting on threads when the machine is busy, which would time the
scheduler rather than the code. Wall and CPU seconds are both printed; on a shared machine CPU seconds divided
by the thread count is the better estimate of a dedicated run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import threading
import time
from collections.abc import Callable

import numpy as np
import psutil
import torch

from movierec.data.synthetic import ML25M_ITEMS, ML25M_RATINGS, ML25M_USERS, generate_ratings, synthetic_movies
from movierec.models.baselines import popularity_prior
from movierec.models.factors import FactorModel, FactorParams
from movierec.recommend.batch import DEFAULT_CHUNK, batch_top_n
from movierec.recommend.rated import RatedSets
from movierec.recommend.recommender import Recommender
from serve_common import with_default_model_parts

TIME_BAR_S = 120.0
FOLD_IN_BAR_MS = 5.0


class PeakRss:
    """Sample this process's resident memory every few milliseconds while the block runs."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s, self.process = every_s, psutil.Process()
        self.start = self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def above_start_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def synthetic_params(n_users: int, n_items: int, dim: int, prior: np.ndarray, seed: int) -> FactorParams:
    rng = np.random.default_rng(seed)
    params = FactorParams(
        global_mean=3.5,
        user_bias=rng.normal(0, 0.4, n_users).astype(np.float32),
        item_bias=rng.normal(0, 0.5, n_items).astype(np.float32),
        user_factors=rng.normal(0, 0.15, (n_users, dim)).astype(np.float32),
        item_factors=rng.normal(0, 0.15, (n_items, dim)).astype(np.float32),
        low=0.5,
        high=5.0,
        user_known=np.ones(n_users, bool),
        item_known=np.ones(n_items, bool),
        item_prior=prior,
        rank_weight=0.5,
    )
    return with_default_model_parts(params, rng)


def reference_loop(model: FactorModel, rated: RatedSets, users: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The obvious way: one user at a time in NumPy."""
    out = np.empty((users.size, n), dtype=np.int64)
    started = time.perf_counter()
    for row, user in enumerate(users):
        scores = model.rank_scores(np.array([user]))[0]
        scores[rated.items_of(int(user))] = -np.inf
        top = np.argpartition(-scores, n)[:n]
        out[row] = top[np.lexsort((top, -scores[top]))]
    return out, time.perf_counter() - started


def part_batch(args: argparse.Namespace) -> None:
    n_ratings = round(ML25M_RATINGS * args.users / ML25M_USERS)
    tick = time.perf_counter()
    ratings = generate_ratings(args.users, args.items, n_ratings, seed=args.seed)
    rated = RatedSets.from_ratings(ratings)
    prior = popularity_prior(ratings)
    del ratings
    model = FactorModel(synthetic_params(args.users, args.items, args.dim, prior, args.seed))
    print(
        f"setup: {args.users:,} users x {args.items:,} movies, dim {args.dim}, {rated.items.size:,} rated pairs "
        f"({time.perf_counter() - tick:.1f} s); torch threads {torch.get_num_threads()}, chunk {args.chunk}, "
        f"OpenBLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}"
    )
    with PeakRss() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        top = batch_top_n(model, rated, args.n, chunk_size=args.chunk, device=args.device)
        batch_s, batch_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    sample = np.random.default_rng(args.seed).choice(top.users, size=min(args.sample, top.users.size), replace=False)
    reference, reference_s = reference_loop(model, rated, sample, args.n)
    extrapolated = reference_s / sample.size * top.users.size
    rows = np.searchsorted(top.users, sample)
    same = float(np.mean([set(a) == set(b) for a, b in zip(top.items[rows], reference, strict=True)]))
    leaked = sum(np.isin(top.items[r], rated.items_of(int(u))).any() for r, u in zip(rows, sample, strict=True))
    print(f"{'method':<48}{'wall':>10}{'CPU':>10}{'users/s':>10}{'peak RSS above start':>23}")
    print(f"{f'batch_top_n on {args.device} (chunked matmul + topk)':<48}{batch_s:>8.1f} s{batch_cpu_s:>8.1f} s"
          f"{top.users.size / batch_s:>10,.0f}{memory.above_start_mb:>20,.0f} MB")  # fmt: skip
    print(f"{f'per-user NumPy loop ({sample.size} users, extrapolated)':<48}{extrapolated:>8.1f} s{'':>10}"
          f"{sample.size / reference_s:>10,.0f}{'—':>23}")  # fmt: skip
    verdict = "met" if batch_s <= TIME_BAR_S else "MISSED"
    print(
        f"speed-up {extrapolated / batch_s:.1f}x; bar {TIME_BAR_S:.0f} s wall: {verdict}; same top-{args.n} set as "
        f"the loop for {same:.1%} of sampled users; rated movies recommended: {leaked}"
    )


def part_fold_in(args: argparse.Namespace) -> None:
    n_users, n_items, dim = 2_000, args.items, 128
    ratings = generate_ratings(n_users, n_items, max(n_items, 40 * n_users), seed=args.seed)
    model = FactorModel(synthetic_params(n_users, n_items, dim, popularity_prior(ratings), args.seed))
    tick = time.perf_counter()
    recommender = Recommender(model, synthetic_movies(n_items, seed=args.seed), ratings)
    init_s = time.perf_counter() - tick
    rng = np.random.default_rng(args.seed + 1)
    counts = recommender.catalog.counts
    popular = np.flatnonzero(counts >= 10)
    requests = [rng.choice(popular, 20, replace=False) for _ in range(args.repeats)]
    stars = rng.choice(np.arange(1, 11) / 2, size=(args.repeats, 20))
    movie_ids = [recommender.catalog.movie_ids[r] for r in requests]

    def timed(fn: Callable[[int], object]) -> tuple[float, float]:
        """(median, 95th percentile) in milliseconds."""
        times = []
        for i in range(args.repeats):
            started = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - started)
        return float(np.median(times)) * 1000, float(np.percentile(times, 95)) * 1000

    fold = timed(lambda i: model.fold_in(requests[i], stars[i]))
    vector = model.fold_in(requests[0], stars[0])
    score = timed(lambda i: model.rank_for(vector))
    request = timed(lambda i: recommender.recommend_new_user(zip(movie_ids[i], stars[i], strict=True), 10))
    print(f"\nnew user, 20 ratings, {n_items:,} movies, dim {dim} ({args.repeats} requests; Recommender built once "
          f"in {init_s:.2f} s)")  # fmt: skip
    print(f"{'':<52}{'median':>10}{'p95':>10}")
    verdict = "met" if fold[0] <= FOLD_IN_BAR_MS else "MISSED"
    rows = (
        (f"FactorModel.fold_in (bar {FOLD_IN_BAR_MS:.0f} ms median: {verdict})", fold),
        ("reference: one rank_for pass over every movie", score),
        ("Recommender.recommend_new_user, top-10 explained", request),
    )
    for name, (median, p95) in rows:
        print(f"{name:<52}{median:>7.2f} ms{p95:>7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=ML25M_USERS)
    parser.add_argument("--items", type=int, default=ML25M_ITEMS)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--sample", type=int, default=300, help="users timed in the per-user reference loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where batch_top_n runs: cpu or cuda")
    parser.add_argument("--repeats", type=int, default=50, help="new-user requests timed in part 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-fold-in", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_batch:
        part_batch(args)
    if not args.skip_fold_in:
        part_fold_in(args)


if __name__ == "__main__":
    main()
