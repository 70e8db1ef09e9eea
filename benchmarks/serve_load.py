"""Load on the HTTP service with an ML-25M-sized catalog: POST /recommendations beside GET /health.

Builds (or reuses) a run folder of 59,047 movies × 128 factors, starts `movierec serve` on 127.0.0.1 in a
subprocess, and drives it from this process over keep-alive connections, bounded in requests and seconds:

* saturation: ``--clients`` connections, each sending its next request as soon as the last is answered;
  the highest rate the service sustains. (By Little's law its latency is about clients / rate.)
* paced: the same connections offered ``--rate`` requests per second in total, latency counted from each
  request's scheduled time: p50 and p99 at that load.

Each phase runs for POST /recommendations (20 ratings drawn from the 3,000 most-rated movies, n = 10) and for
GET /health on the same server, and the script prints the ratio. The issue's bars: p50 <= 10 ms and p99 <= 30
ms at 16 clients, >= 300 requests/s.

    python benchmarks/serve_load.py [--workers 2] [--clients 16] [--rate 300] [--seconds 15] [--run DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from serve_common import Tally, build_synthetic_run, closed_loop, free_port, open_loop, post, start_server, stop_server

BARS = {"p50_ms": 10.0, "p99_ms": 30.0, "rate": 300.0}


def in_process_reference(run_dir: Path, bodies: list[bytes], count: int = 200) -> Tally:
    """The same requests straight into ``Recommender.recommend_new_user`` (no HTTP), one at a time, with one
    BLAS thread like each server worker."""
    from movierec.recommend import Recommender
    from movierec.serve.state import limit_blas_threads

    limit_blas_threads(1)
    recommender = Recommender.load(run_dir)
    requests = [json.loads(raw.split(b"\r\n\r\n", 1)[1]) for raw in bodies]
    pairs = [[(r["movieId"], r["rating"]) for r in body["ratings"]] for body in requests]
    for rated in pairs[:10]:
        recommender.recommend_new_user(rated, 10)
    tally = Tally()
    started = time.perf_counter()
    for k in range(count):
        begun = time.perf_counter()
        recommender.recommend_new_user(pairs[k % len(pairs)], 10)
        tally.latencies.append(time.perf_counter() - begun)
        tally.statuses[200] += 1
    tally.seconds = time.perf_counter() - started
    return tally


def recommendation_bodies(run_dir: Path, count: int, n_ratings: int, seed: int = 0) -> list[bytes]:
    """``count`` different requests: ``n_ratings`` half-star ratings of popular movies each, n = 10."""
    import pyarrow.parquet as pq

    items = pq.read_table(run_dir / "train.parquet", columns=["item"]).column("item").to_numpy()
    movie_ids = pq.read_table(run_dir / "vocab" / "items.parquet").column("movieId").to_numpy()
    popular = movie_ids[np.argsort(-np.bincount(items, minlength=movie_ids.size), kind="stable")[:3000]]
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        chosen = rng.choice(popular, n_ratings, replace=False)
        stars = rng.integers(1, 11, n_ratings) / 2
        ratings = [{"movieId": int(m), "rating": float(s)} for m, s in zip(chosen, stars, strict=True)]
        bodies.append(post("/recommendations", json.dumps({"ratings": ratings, "n": 10}).encode()))
    return bodies


def row(name: str, tally: Tally) -> str:
    unsent = tally.failures.get("not sent (server behind)", 0)
    errors = sum(n for s, n in tally.statuses.items() if s != 200) + sum(tally.failures.values()) - unsent
    return (
        f"{name:<42} {tally.count:>7,} {tally.rate:>9.0f} {tally.percentile(50):>8.2f} "
        f"{tally.percentile(90):>8.2f} {tally.percentile(99):>8.2f} {max(tally.latencies) * 1000:>8.1f} "
        f"{errors:>6} {unsent:>6}"
    )


def check(label: str, value: float, bar: float, higher_is_better: bool = False) -> str:
    ok = value >= bar if higher_is_better else value <= bar
    sign = ">=" if higher_is_better else "<="
    return f"  {label:<44} {value:>8.2f}  (bar {sign} {bar:g})  {'PASS' if ok else 'FAIL'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="An existing run folder (default: build the synthetic one).")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2: one per core).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0, help="Offered requests/s in the paced phases.")
    parser.add_argument("--seconds", type=float, default=15.0, help="Longest duration of each phase.")
    parser.add_argument("--max-requests", type=int, default=20_000, help="Most requests in each phase.")
    parser.add_argument("--ratings", type=int, default=20, help="Ratings per POST /recommendations.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="movierec-load-") as scratch:
        run_dir = args.run
        if run_dir is None:
            started = time.perf_counter()
            run_dir = build_synthetic_run(Path(scratch) / "run")
            print(f"built a synthetic run (59,047 movies x 128 factors) in {time.perf_counter() - started:.1f} s")
        bodies = recommendation_bodies(run_dir, 64, args.ratings)
        health = [b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]
        port = free_port()
        started = time.perf_counter()
        server = start_server(run_dir, port, Path(scratch) / "server.log", workers=args.workers)
        print(f"server up in {time.perf_counter() - started:.1f} s: {args.workers} worker(s) on 127.0.0.1:{port}")
        load_before = os.getloadavg()
        try:
            asyncio.run(closed_loop(port, bodies, args.clients, 400, 30))  # warm-up, every worker
            results = {}
            for name, requests in (("POST /recommendations", bodies), ("GET /health", health)):
                results[(name, "saturation")] = asyncio.run(
                    closed_loop(port, requests, args.clients, args.max_requests, args.seconds)
                )
                results[(name, "paced")] = asyncio.run(open_loop(port, requests, args.clients, args.rate, args.seconds))
        finally:
            stop_server(server)
        load_after = os.getloadavg()
        reference = in_process_reference(run_dir, bodies)

    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.2f} before / {load_after[0]:.2f} after (other processes share these CPUs)"
    )
    print(f"{args.clients} clients; paced phases offer {args.rate:g} requests/s; {args.ratings} ratings, n = 10")
    print()
    print(
        f"{'phase':<42} {'requests':>7} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6} {'unsent':>6}"
    )
    for (name, phase), tally in results.items():
        label = f"{name} ({phase} {args.rate:g}/s)" if phase == "paced" else f"{name} ({phase})"
        print(row(label, tally))
    print(row("Recommender call in process (1 at a time)", reference))
    rec_sat, rec_paced = results[("POST /recommendations", "saturation")], results[("POST /recommendations", "paced")]
    health_sat, health_paced = results[("GET /health", "saturation")], results[("GET /health", "paced")]
    print()
    print("POST /recommendations over GET /health on the same server:")
    print(
        f"  throughput at saturation: {rec_sat.rate / health_sat.rate:.2f} x  "
        f"({rec_sat.rate:.0f} vs {health_sat.rate:.0f} req/s)"
    )
    print(f"  p50 when paced:           {rec_paced.percentile(50) / health_paced.percentile(50):.2f} x")
    print()
    print(f"issue 6 bars (POST /recommendations, {args.clients} clients):")
    print(check(f"p50 ms, paced at {args.rate:g}/s", rec_paced.percentile(50), BARS["p50_ms"]))
    print(check(f"p99 ms, paced at {args.rate:g}/s", rec_paced.percentile(99), BARS["p99_ms"]))
    print(check("requests/s at saturation", rec_sat.rate, BARS["rate"], higher_is_better=True))
    print(check(f"requests/s achieved when paced at {args.rate:g}/s", rec_paced.rate, BARS["rate"] * 0.98, True))


if __name__ == "__main__":
    main()
