"""Handing freed memory back to the operating system between the phases of a long training job.

glibc's allocator keeps the memory that NumPy and torch free in its heaps and per-thread arenas (gloo's threads
allocate too) for reuse, so a process's resident size stays near its highest point long after the arrays are
gone. ``malloc_trim(0)`` returns what is free; Dask's workers do the same for the same reason. Elsewhere than
glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] | None = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    return trim


def give_back_freed_memory() -> None:
    """Return the C heap's free memory to the operating system, where the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
