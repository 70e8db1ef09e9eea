"""The loaded model behind a lock-free swap.

A request reads ``ModelState.current`` once, at its start, and uses that ``Loaded`` snapshot to the end. A
reload builds the next ``Loaded`` completely (load and verify the run folder, precompute the catalog and the
search index, answer one warm-up request) before it replaces the reference in a single assignment, so no
request ever sees half a model, and requests in flight finish on the model they started with. Readers never
wait; only reloads are serialised.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec.errors import MovieRecError
from movierec.recommend import DEFAULT_MIN_RATINGS, Recommender
from movierec.serve.search import TitleIndex
from movierec.train.freed_memory import give_back_freed_memory

log = logging.getLogger("movierec.serve")
MAX_PATH_CHARS = 1024
RELEASE_DELAY_S = 1.0


@dataclass(frozen=True)
class Loaded:
    """One loaded run: everything a request needs, never mutated after it is built."""

    recommender: Recommender
    search: TitleIndex
    run_dir: Path
    model: str
    generation: int
    loaded_at: float  # Unix time
    load_seconds: float
    genres: dict[str, str]  # case-folded name -> name as the catalog spells it

    @property
    def scale(self) -> tuple[float, float]:
        return self.recommender.scale


def load(run_dir: Path, *, generation: int = 1, min_ratings: int = DEFAULT_MIN_RATINGS) -> Loaded:
    """Load, verify and warm up a run folder (``MovieRecError`` with one sentence when it cannot be served)."""
    started = time.perf_counter()
    recommender = Recommender.load(run_dir, min_ratings=min_ratings)
    catalog = recommender.catalog
    search = TitleIndex(catalog.titles, catalog.counts)
    _warm_up(recommender, search)
    return Loaded(
        recommender=recommender,
        search=search,
        run_dir=Path(run_dir).resolve(),
        model=recommender.model.name,
        generation=generation,
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        genres={name.casefold(): name for name in recommender.genres},
    )


def _warm_up(recommender: Recommender, search: TitleIndex) -> None:
    """Answer one request of each kind so the first real ones pay no lazy set-up."""
    counts = recommender.catalog.counts
    top = np.argsort(-counts, kind="stable")[:3]
    ids = [int(recommender.catalog.movie_ids[i]) for i in top if counts[i] > 0]
    recommender.recommend_new_user([(movie, recommender.scale[1]) for movie in ids], n=10)
    recommender.next_questions([], n=1)  # builds the interviewer
    search.search("a", 5)
    if ids and recommender.model.params.dim:
        recommender.similar(ids[0], n=5)


class ModelState:
    """Holds the current ``Loaded``; ``reload`` swaps in a new one without pausing readers."""

    def __init__(self, loaded: Loaded, allowed_root: Path, *, min_ratings: int = DEFAULT_MIN_RATINGS) -> None:
        self._current = loaded
        self.allowed_root = Path(allowed_root).resolve()
        self.min_ratings = min_ratings
        self._reloading = threading.Lock()

    @property
    def current(self) -> Loaded:
        return self._current

    @property
    def busy(self) -> bool:
        return self._reloading.locked()

    def reload(self, run_dir: str | Path | None = None) -> tuple[Loaded, Loaded]:
        """Load ``run_dir`` (default: the current run folder, read again from disk) and swap it in.

        Returns (previous, new). Raises ``ReloadBusy`` when another reload is running and ``MovieRecError``
        when the folder is outside the allowed root or cannot be loaded; the current model then stays."""
        if not self._reloading.acquire(blocking=False):
            raise ReloadBusy("A reload is already running; wait for it to finish and try again.")
        try:
            previous = self._current
            target = previous.run_dir if run_dir is None else self.resolve(run_dir)
            try:
                loaded = load(target, generation=previous.generation + 1, min_ratings=self.min_ratings)
            except MovieRecError:
                raise
            except Exception as error:  # a folder that passes the manifest check but still cannot be served
                raise MovieRecError(
                    f"The run folder {target} could not be loaded ({type(error).__name__}: {error})."
                ) from error
            self._current = loaded  # the swap: one reference assignment
            log.info(
                "reloaded %s (%s, generation %d) in %.2f s",
                loaded.run_dir,
                loaded.model,
                loaded.generation,
                loaded.load_seconds,
            )
            return previous, loaded
        finally:
            self._reloading.release()
            # The old model goes when the last request holding it ends; then give its memory back to the OS.
            threading.Timer(RELEASE_DELAY_S, release_memory).start()

    def resolve(self, requested: str | Path) -> Path:
        """A run folder inside the allowed root; relative paths are taken from the root. Traversal (``..``,
        absolute paths elsewhere, symbolic links leading out) is refused."""
        text = os.fspath(requested)
        if not text.strip() or "\x00" in text or len(text) > MAX_PATH_CHARS:
            raise PathRefused(
                f"The run folder {text[:80]!r} is not a usable path; give a folder name inside {self.allowed_root}."
            )
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = self.allowed_root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.allowed_root):
            raise PathRefused(
                f"The run folder {text!r} is outside the folder reloads may use; give a run folder inside "
                f"{self.allowed_root}."
            )
        return resolved


M_ARENA_MAX = -8  # glibc mallopt parameter


def limit_blas_threads(threads: int) -> None:
    """Cap the BLAS and OpenMP thread pools of this process (NumPy's OpenBLAS, torch's OpenMP) at ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def settle_memory_for_reloads() -> None:
    """Allocate so that reloads do not ratchet the process's memory up; call once per serving process.

    Reloads run in a worker thread. Arrow's default allocator (mimalloc) keeps pages freed by another thread
    until the allocating thread allocates again, so each old model's Parquet buffers would stay resident
    until the next reload; and glibc gives a new thread a heap of its own, where what a reload leaves
    behind fragments memory the event loop thread never reuses. Hence: Arrow on the system allocator, and
    one glibc heap for every thread (``release_memory`` then returns freed pages). No effect off glibc.
    """
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1)


def release_memory() -> None:
    """Collect cycles, then ask glibc to return freed heap pages (large arrays freed after a swap otherwise
    stay in the process's arenas and its resident memory only grows with each reload)."""
    gc.collect()
    give_back_freed_memory()


class ReloadBusy(MovieRecError):
    """Another reload holds the lock."""


class PathRefused(MovieRecError):
    """A path that leaves the allowed folder."""
