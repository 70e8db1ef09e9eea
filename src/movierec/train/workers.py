"""Worker threads that share a CPU's cores among a side's slices of rows, for loops that release the GIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def slice_workers(device: torch.device) -> Iterator[Callable[..., list[Any]]]:
    """A ``map`` over a side's slices or blocks (``gibbs_coordinate.draw_side_coordinates``, ``als.solve_side``'s
    compiled rows): on a CPU with torch's intra-op threads above one, that many Python threads each running whole
    slices on one torch thread (restored after), else a plain loop.

    A slice's torch ops are too small for torch to split across threads (each coordinate's touches ``L B`` values,
    below its grain of 32K), so the second core sat idle, and on a busy machine waiting for it cost far more than it
    gave (see ``gibbs_coordinate``'s docstring); Python threads running slices side by side share the cores instead
    (torch and the compiled loops release the GIL). Each slice runs on one thread either way, so results that are
    computed slice by slice (the sampler's draws from noise drawn beforehand in slice order) do not depend on the
    threads."""
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
