"""Worker threads that share a CPU's cores among a side's slices of rows, for loops that release the GIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def slice_workers(device: torch.device) -> Iterator[Callable[..., list[Any]]]:
    """A ``map`` over a side's blocks for the compiled row loops (``als_kernel``, ``gibbs_coordinate_kernel``): on a
    CPU with torch's intra-op threads above one, that many Python threads each running whole blocks, with torch at
    one thread meanwhile (restored after); else a plain loop.

    The loops release the GIL, so the threads share the cores. Each block runs on one thread either way, and its
    rows in one fixed order, so what the loops compute (the sampler's draws too, from noise drawn beforehand in the
    rows' order) does not depend on the threads."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield lambda function, *args: list(map(function, *args))
        return
    torch.set_num_threads(1)  # threads started from here on run torch on one thread
    try:
        with ThreadPoolExecutor(threads) as pool:
            yield lambda function, *args: list(pool.map(function, *args))
    finally:
        torch.set_num_threads(threads)
