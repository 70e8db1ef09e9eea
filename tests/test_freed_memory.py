"""Freed memory goes back to the operating system when training asks (``train.freed_memory``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from movierec.train.freed_memory import give_back_freed_memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux-only")
def test_freed_holes_in_the_heap_are_returned() -> None:
    arrays = [np.ones(1024) for _ in range(40_000)]  # 8 KB each, from the C heap: 320 MB in all
    kept = arrays[::20]  # every 20th stays, so the freed ones are holes the heap cannot shrink past
    del arrays
    before = resident_bytes()
    give_back_freed_memory()
    after = resident_bytes()
    assert len(kept) == 2_000
    assert before - after > 150e6, f"{(before - after) / 1e6:.0f} MB returned"
