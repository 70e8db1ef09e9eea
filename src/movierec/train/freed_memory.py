"""Handing freed memory back to the operating system during a long training job.

glibc's allocator keeps the memory that NumPy and torch free in its heaps and per-thread arenas (gloo's threads
allocate too) for reuse, so a process's resident size stays near its highest point long after the arrays are
gone. ``malloc_trim(0)`` returns what is free between phases; Dask's workers do the same for the same reason.
``hold_little`` keeps the heaps (and Arrow's pool) from holding large freed blocks in the first place. Elsewhere
than glibc (macOS, musl) the C heap's part does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: the size from which an allocation gets a mapping of its own."""
LARGE_ALLOCATION_BYTES = 4 << 20
"""The threshold ``hold_little`` sets: 4 MB, the smallest whole-table or per-chunk array of a sharded
rank at ML-25M size and above; glibc's own starts at 128 KB and rises with every mapped block freed, up to 32 MB.
At 18M training ratings (``benchmarks/distributed_scale.py``, 8 epochs) the largest rank's peak at world 4 was
1.054 GB with it set from the end of training and 0.962 from the start (``docs/distributed.md``)."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def give_back_freed_memory() -> None:
    """Return the C heap's free memory to the operating system, where the C library can (glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def hold_little(threshold: int = LARGE_ALLOCATION_BYTES) -> None:
    """For the rest of this process, hand large freed blocks straight back to the operating system: give every
    allocation of ``threshold`` bytes or more a mapping of its own, unmapped when it is freed, and let Arrow
    allocate from the C heap. glibc's default threshold rises to the size of each mapped block freed (up to 32
    MB), after which blocks of tens of MB (fetched rows, gathered tables, grouping buffers) come from the heaps,
    where a freed one between live ones is neither reused at its size nor returned; Arrow's own pool (mimalloc)
    keeps what a Parquet read decoded (about 40 MB a 2M-rating part). A sharded rank's resident memory otherwise
    grows phase after phase. The cost: fresh pages, zeroed by the kernel, for each such block."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, threshold)
