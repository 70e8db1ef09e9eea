"""Soak: 60 s at 32 concurrent clients mixing valid and invalid requests, across two model swaps.

Builds two run folders (ML-25M-sized synthetic catalogs, different seeds) under one root, starts `movierec
serve` on 127.0.0.1 with an admin token, warms it up, notes its resident memory, then runs the soak. A third
of the way in it swaps to the second run with ``POST /admin/reload``; two thirds in it sends SIGHUP (reload
from disk). The warm-up runs the same mix and swaps a -> b -> a once: the first reloads of a process raise
its memory to a plateau (allocator pools, the executor thread), and the bar asks whether memory keeps
growing after warm-up, which it would if old models leaked. Every request has an expected status (200, or
the 4xx its bad input deserves); the swaps are clean when every reload succeeds, the generation moves up by
one at each, and no request failed: no 5xx, no dropped connection, no unexpected status.

Prints requests sent, answers by status, p50/p99, resident memory after warm-up and at the end (the bar:
within 10%), and whether the swaps were clean.

    python benchmarks/soak.py [--seconds 60] [--clients 32] [--items 59047] [--dim 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq

from serve_common import Connection, build_synthetic_run, free_port, get, post, start_server, stop_server

TOKEN = "soak-admin-token-" + "x" * 16
MB = 1024 * 1024


@dataclass(frozen=True)
class Template:
    kind: str
    raw: bytes
    expected: int


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


def templates(run_dir: Path, count: int, seed: int = 0) -> list[Template]:
    """A shuffled mix of valid and invalid requests with the status each deserves."""
    rng = np.random.default_rng(seed)
    chooser = random.Random(seed)
    items = pq.read_table(run_dir / "train.parquet", columns=["item"]).column("item").to_numpy()
    users = pq.read_table(run_dir / "vocab" / "users.parquet").column("userId").to_numpy()
    movie_ids = pq.read_table(run_dir / "vocab" / "items.parquet").column("movieId").to_numpy()
    titles = pq.read_table(run_dir / "movies.parquet", columns=["title"]).column("title").to_pylist()
    counts = np.bincount(items, minlength=movie_ids.size)
    popular = movie_ids[np.argsort(-counts, kind="stable")[:3000]]
    words = sorted({w for t in titles[:5000] for w in t.split() if w.isalpha() and len(w) > 3})

    def some_ratings(k: int) -> list[dict[str, float]]:
        chosen = rng.choice(popular, k, replace=False)
        return [
            {"movieId": int(m), "rating": float(s)} for m, s in zip(chosen, rng.integers(1, 11, k) / 2, strict=True)
        ]

    def body(value: object) -> bytes:
        return json.dumps(value).encode()

    def typo(word: str) -> str:
        i = chooser.randrange(len(word) - 1)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    def recommend() -> bytes:
        return post("/recommendations", body({"ratings": some_ratings(int(rng.integers(5, 31))), "n": 10}))

    def search() -> bytes:
        word = chooser.choice(words)
        return get(f"/movies?query={chooser.choice([word, typo(word)])}&limit=10")

    def predict() -> bytes:
        pairs = [{"userId": int(chooser.choice(users)), "movieId": int(chooser.choice(popular))} for _ in range(10)]
        return post("/predict", body({"pairs": pairs}))

    too_many = [{"movieId": i, "rating": 3} for i in range(1, 502)]
    unknown = 10**9
    # kind: (weight, request maker, expected status)
    makers: dict[str, tuple[int, Callable[[], bytes], int]] = {
        "recommend": (30, recommend, 200),
        "search": (15, search, 200),
        "similar": (8, lambda: get(f"/movies/{int(chooser.choice(popular))}/similar?n=10"), 200),
        "user": (8, lambda: get(f"/users/{int(chooser.choice(users))}/recommendations?n=10"), 200),
        "predict": (5, predict, 200),
        "onboarding": (3, lambda: get("/onboarding?n=10"), 200),
        "health": (5, lambda: get("/health"), 200),
        "movie": (5, lambda: get(f"/movies/{int(chooser.choice(movie_ids))}"), 200),
        "bad rating": (4, lambda: post("/recommendations", body({"ratings": [{"movieId": 1, "rating": 7.5}]})), 422),
        "bad n": (3, lambda: post("/recommendations", body({"ratings": some_ratings(3), "n": 0})), 422),
        "too many ratings": (2, lambda: post("/recommendations", body({"ratings": too_many})), 422),
        "malformed json": (3, lambda: post("/recommendations", b'{"ratings": [{"movieId": 1,'), 422),
        "unknown movie": (3, lambda: get(f"/movies/{unknown + chooser.randrange(1000)}/similar"), 404),
        "unknown user": (3, lambda: get(f"/users/{unknown + chooser.randrange(1000)}/recommendations"), 404),
        "unknown genre": (2, lambda: get("/movies?query=a&genre=Cowboys"), 422),
        "oversized body": (1, lambda: post("/recommendations", b'{"years": "' + b"x" * 70_000 + b'"}'), 413),
    }
    kinds = list(makers)
    weights = [makers[k][0] for k in kinds]
    mix = []
    for kind in chooser.choices(kinds, weights, k=count):
        _, make, expected = makers[kind]
        mix.append(Template(kind, make(), expected))
    return mix


async def drive(port: int, mix: list[Template], clients: int, seconds: float, results: Results) -> None:
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        connection = Connection(port)
        k = offset
        while time.perf_counter() < deadline:
            template = mix[k % len(mix)]
            k += clients
            results.sent += 1
            started = time.perf_counter()
            try:
                status, _ = await connection.send(template.raw)
            except (OSError, asyncio.IncompleteReadError) as error:
                results.failures[f"{template.kind}: {type(error).__name__}"] += 1
                continue
            results.add(template.kind, time.perf_counter() - started)
            results.statuses[status] += 1
            if status != template.expected:
                results.unexpected[f"{template.kind}: {status} (expected {template.expected})"] += 1
        connection.close()

    await asyncio.gather(*(client(i) for i in range(clients)))


async def admin_reload(port: int, run: str) -> tuple[int, bytes]:
    connection = Connection(port)
    try:
        return await connection.send(
            post("/admin/reload", json.dumps({"run_dir": run}).encode(), {"Authorization": f"Bearer {TOKEN}"})
        )
    finally:
        connection.close()


async def warm_up(port: int, mix: list[Template], clients: int, seconds: float, results: Results) -> list[int]:
    """The soak's mix for ``seconds``, swapping to run b and back to a on the way."""

    async def swap_twice() -> list[int]:
        statuses = []
        for run in ("b", "a"):
            await asyncio.sleep(seconds / 3)
            statuses.append((await admin_reload(port, run))[0])
        return statuses

    _, statuses = await asyncio.gather(drive(port, mix, clients, seconds, results), swap_twice())
    return statuses


async def generation(port: int) -> int:
    connection = Connection(port)
    try:
        _, body = await connection.send(get("/health"))
        return int(json.loads(body)["generation"])
    finally:
        connection.close()


async def swaps(port: int, pid: int, seconds: float, log: list[str]) -> dict[str, object]:
    """At a third of the soak: POST /admin/reload to run b; at two thirds: SIGHUP. Reports what happened."""
    report: dict[str, object] = {"generation_start": await generation(port)}
    await asyncio.sleep(seconds / 3)
    started = time.perf_counter()
    status, body = await admin_reload(port, "b")
    report["admin_status"] = status
    report["admin_seconds"] = time.perf_counter() - started
    report["generation_after_admin"] = await generation(port)
    log.append(f"POST /admin/reload -> {status} in {report['admin_seconds']:.2f} s: {body.decode()[:160]}")
    await asyncio.sleep(seconds / 3 - report["admin_seconds"])  # type: ignore[operator]
    os.kill(pid, signal.SIGHUP)
    sent = time.perf_counter()
    while await generation(port) != report["generation_after_admin"] + 1:  # type: ignore[operator]
        if time.perf_counter() - sent > seconds / 3:
            break
        await asyncio.sleep(0.05)
    report["sighup_seconds"] = time.perf_counter() - sent
    report["generation_after_sighup"] = await generation(port)
    log.append(f"SIGHUP -> generation {report['generation_after_sighup']} after {report['sighup_seconds']:.2f} s")
    return report


async def sample_memory(pid: int, seconds: float, every: float, samples: list[tuple[float, int]]) -> None:
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        samples.append((elapsed, rss(pid)))
        await asyncio.sleep(every)


async def soak(
    port: int, pid: int, mix: list[Template], clients: int, seconds: float, samples: list[tuple[float, int]]
) -> tuple[Results, dict, list[str]]:
    results = Results()
    log: list[str] = []
    _, report, _ = await asyncio.gather(
        drive(port, mix, clients, seconds, results),
        swaps(port, pid, seconds, log),
        sample_memory(pid, seconds, seconds / 12, samples),
    )
    return results, report, log


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--items", type=int, default=59_047, help="Catalog size of the two synthetic runs.")
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="movierec-soak-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        for name, seed in (("a", 0), ("b", 1)):
            build_synthetic_run(root / name, n_items=args.items, dim=args.dim, seed=seed)
        print(
            f"built runs a and b ({args.items:,} movies x {args.dim} factors each) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        mix = templates(root / "a", 4000)
        port = free_port()
        log_file = root / "server.log"
        env = {"MOVIEREC_ADMIN_TOKEN": TOKEN, "MOVIEREC_RUNS_ROOT": str(root)}
        server = start_server(root / "a", port, log_file, env=env)
        try:
            rss_started = rss(server.pid)
            warm = Results()
            warm_swaps = asyncio.run(warm_up(port, mix, args.clients, args.warmup, warm))
            time.sleep(3.0)  # the freed memory of a replaced model is handed back 1 s after a reload
            rss_start = rss(server.pid)
            samples: list[tuple[float, int]] = []
            results, report, log = asyncio.run(soak(port, server.pid, mix, args.clients, args.seconds, samples))
            time.sleep(3.0)  # the freed memory of a replaced model is handed back 1 s after a reload
            rss_end = rss(server.pid)
        finally:
            stop_server(server)
        server_log = log_file.read_text()

    all_latencies = np.array([s for values in results.latencies.values() for s in values]) * 1000
    server_errors = sum(n for status, n in results.statuses.items() if status >= 500)
    change = (rss_end - rss_start) / rss_start * 100
    clean = (
        warm_swaps == [200, 200]
        and report["admin_status"] == 200
        and report["generation_after_admin"] == report["generation_start"] + 1  # type: ignore[operator]
        and report["generation_after_sighup"] == report["generation_start"] + 2  # type: ignore[operator]
        and server_errors == 0
        and not results.failures
        and not results.unexpected
    )
    print(f"\nsoak: {args.seconds:g} s at {args.clients} clients after {args.warmup:g} s of warm-up "
          f"({warm.sent:,} requests, swaps a -> b -> a answered {warm_swaps}); "
          f"load average {os.getloadavg()[0]:.2f} (shared machine)")  # fmt: skip
    print(f"requests sent: {results.sent:,}  ({results.sent / args.seconds:,.0f} per second)")
    print("answers by status: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(results.statuses.items())))
    print(f"5xx: {server_errors}   dropped connections: {sum(results.failures.values())}   "
          f"unexpected statuses: {sum(results.unexpected.values())}")  # fmt: skip
    for name, counter in (("dropped", results.failures), ("unexpected", results.unexpected)):
        for what, n in counter.most_common(8):
            print(f"  {name}: {what} x{n}")
    print(
        f"latency, all requests:          p50 {np.percentile(all_latencies, 50):7.1f} ms   "
        f"p99 {np.percentile(all_latencies, 99):7.1f} ms"
    )
    recs = np.array(results.latencies.get("recommend", [0.0])) * 1000
    print(
        f"latency, POST /recommendations: p50 {np.percentile(recs, 50):7.1f} ms   p99 {np.percentile(recs, 99):7.1f} ms"
    )
    print(f"resident memory after start-up (one model loaded, no request yet): {rss_started / MB:,.1f} MiB")
    print(f"resident memory after warm-up: {rss_start / MB:,.1f} MiB   at the end: {rss_end / MB:,.1f} MiB   "
          f"change {change:+.1f}% (bar: within 10%) {'PASS' if abs(change) <= 10 else 'FAIL'}")  # fmt: skip
    print("resident memory during the soak (s: MiB): " + ", ".join(f"{t:.0f}: {m / MB:.0f}" for t, m in samples))
    for line in log:
        print(line)
    print(f"generation {report['generation_start']} -> {report['generation_after_admin']} (admin reload) -> "
          f"{report['generation_after_sighup']} (SIGHUP)")  # fmt: skip
    print(f"swaps clean: {'yes' if clean else 'NO'}")
    if not clean and server_log:
        print("server log (tail):\n" + "\n".join(server_log.splitlines()[-20:]))


if __name__ == "__main__":
    main()
