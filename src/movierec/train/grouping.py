"""Ratings grouped by row: the order that puts each row's ratings together, as a stable sort gives it.

``np.argsort(kind="stable")`` of 22.5M row indices takes 2.8 s of CPU (a merge sort), and the whole job groups
ratings that way three times (the rating fit, both "likely to watch" fits). torch's stable sort of integers is a
radix sort: the same permutation in 0.5 s at one thread (int32).
"""

from __future__ import annotations

import numpy as np
import torch


def stable_order(rows: np.ndarray) -> np.ndarray:
    """``np.argsort(rows, kind="stable")`` of integer ``rows``: the same permutation (int64)."""
    order: np.ndarray = torch.sort(torch.from_numpy(np.ascontiguousarray(rows)), stable=True).indices.numpy()
    return order
