"""Shared by the service benchmarks: an ML-25M-sized run folder without training, and a tiny HTTP/1.1 load client.

``build_synthetic_run`` writes a real run folder (``save_run``) whose model is drawn at random: the catalog of
ML-25M (59,047 movies from the synthetic generator), 128 factors, the default model's "likely to watch"
component and fold-in prior, and synthetic ML-shaped training ratings for
the rating counts and the "already rated" sets. Serving cost depends on these sizes, not on what was learned.

The load client speaks HTTP/1.1 over raw asyncio streams with keep-alive: a few microseconds of client CPU per
request, so on a small machine the measurement does not starve the server it measures.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from movierec.artifact.run import save_run
from movierec.config import TrainConfig
from movierec.data.synthetic import ML25M_ITEMS, generate_ratings, synthetic_movies
from movierec.models.factors import FactorModel, FactorParams, population_prior


def build_synthetic_run(
    run_dir: Path,
    *,
    n_items: int = ML25M_ITEMS,
    dim: int = 128,
    n_users: int = 20_000,
    n_ratings: int = 2_000_000,
    seed: int = 0,
) -> Path:
    """A servable run folder with random factors over an ML-25M-sized synthetic catalog."""
    ratings = generate_ratings(n_users, n_items, n_ratings, seed=seed)
    movies = synthetic_movies(n_items, seed=seed)
    rng = np.random.default_rng(seed + 1)
    counts = np.bincount(ratings.items, minlength=n_items).astype(np.float32)
    scale = 0.3 / np.sqrt(dim) ** 0.5
    params = FactorParams(
        global_mean=float(ratings.ratings.mean()),
        user_bias=rng.normal(0, 0.3, n_users).astype(np.float32),
        item_bias=rng.normal(0, 0.4, n_items).astype(np.float32),
        user_factors=rng.normal(0, scale, (n_users, dim)).astype(np.float32),
        item_factors=rng.normal(0, scale, (n_items, dim)).astype(np.float32),
        low=0.5,
        high=5.0,
        user_known=np.ones(n_users, bool),
        item_known=counts > 0,
        item_prior=(np.log1p(counts) / np.log1p(counts.max())).astype(np.float32),
        rank_weight=0.2,
    )
    save_run(
        run_dir,
        config=TrainConfig(dim=dim, epochs=1),
        model=FactorModel(with_default_model_parts(params, rng), "biased-mf"),
        movies=movies,
        train=ratings,
        metrics={},
        history=[],
        data={"source": f"synthetic ML-25M catalog ({n_items} movies, seed {seed})"},
    )
    return run_dir


def with_default_model_parts(
    params: FactorParams, rng: np.random.Generator, watch_dim: int = TrainConfig().watch_dim
) -> FactorParams:
    """What a model trained with the shipped defaults carries beyond its factors, drawn at random: the "likely
    to watch" component (``watch_dim`` per user and movie, the default's width; weight 0.1 in the ranking score)
    and the population prior that new users are folded in from. Serving cost depends on their sizes, not their
    values."""
    scale = 0.3 / np.sqrt(watch_dim)
    with_watch = replace(
        params,
        watch_user=rng.normal(0, scale, (params.n_users, watch_dim)).astype(np.float32),
        watch_item=rng.normal(0, scale, (params.n_items, watch_dim)).astype(np.float32),
        watch_weight=0.1,
        fold_in_reg=0.6,
    )
    mean, precision = population_prior(with_watch)
    return replace(with_watch, fold_in_mean=mean, fold_in_precision=precision)


# -------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    run_dir: Path, port: int, log: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`movierec serve` in a subprocess on 127.0.0.1, its output in ``log``; returns once /health answers."""
    command = [sys.executable, "-m", "movierec", "serve", str(run_dir), "--port", str(port), "--workers", str(workers)]
    with open(log, "w") as output:
        process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            status, _ = asyncio.run(request_once(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
            if status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server did not answer /health within 300 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -------------------------------------------------------------------------------------------------- client


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server wants to close) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def request_once(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        status, body, _ = await read_response(reader)
        return status, body
    finally:
        writer.close()


@dataclass
class Tally:
    """Latencies (seconds) and statuses of one phase."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # connection errors, by kind
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class Connection:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
            self.writer.write(raw)
            await self.writer.drain()
            status, body, close = await read_response(self.reader)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(
    port: int, requests: list[bytes], clients: int, max_requests: int, max_seconds: float, tally: Tally | None = None
) -> Tally:
    """``clients`` connections, each sending its next request as soon as the last one is answered."""
    tally = tally or Tally()
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def client(offset: int) -> None:
        nonlocal sent
        connection = Connection(port)
        k = offset
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            raw = requests[k % len(requests)]
            k += clients
            started = time.perf_counter()
            try:
                status, _ = await connection.send(raw)
            except (OSError, asyncio.IncompleteReadError) as error:
                tally.failures[type(error).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] += 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    tally.seconds += time.perf_counter() - started
    return tally


async def open_loop(port: int, requests: list[bytes], clients: int, rate: float, max_seconds: float) -> Tally:
    """Requests offered at ``rate`` per second in total, spread over ``clients`` connections on a fixed
    schedule. Latency counts from the scheduled send time, so a slow answer that delays the next request is
    charged to it too (no coordinated omission). A server that falls behind gets until twice ``max_seconds``;
    requests not sent by then are counted in ``failures`` as "not sent (server behind)"."""
    tally = Tally()
    interval = clients / rate
    total = int(rate * max_seconds)
    hard_deadline = time.perf_counter() + 2 * max_seconds

    async def client(offset: int) -> None:
        connection = Connection(port)
        start = time.perf_counter() + offset * interval / clients
        for k in range(offset, total, clients):
            if time.perf_counter() > hard_deadline:
                tally.failures["not sent (server behind)"] += 1
                continue
            scheduled = start + (k // clients) * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status, _ = await connection.send(requests[k % len(requests)])
            except (OSError, asyncio.IncompleteReadError) as error:
                tally.failures[type(error).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - scheduled)
            tally.statuses[status] += 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    tally.seconds = time.perf_counter() - started
    return tally
