"""Ratings grouped by row: the order that puts each row's ratings together, as a stable sort gives it.

``np.argsort(kind="stable")`` of 22.5M row indices takes 1.5 s of CPU (a merge sort), and the whole job groups
ratings that way three times (the rating fit, both "likely to watch" fits). Row indices are small integers, so a
counting sort gives the same order in one pass: compiled by numba (``grouping_kernel``) on large inputs, NumPy's
stable sort on small ones (numba's import and cached kernel cost ~0.3 s once per process).
"""

from __future__ import annotations

import numpy as np

COMPILED_FROM = 1 << 20
"""Ratings from which ``stable_order`` counts instead of sorting."""


def stable_order(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """``np.argsort(rows, kind="stable")`` for ``rows`` in ``[0, n_rows)``: the same permutation (int64)."""
    if rows.size < COMPILED_FROM:
        return np.argsort(rows, kind="stable")
    from movierec.train.grouping_kernel import counting_order  # numba loads only for large inputs

    counts = np.bincount(rows, minlength=n_rows)
    order: np.ndarray = counting_order(np.ascontiguousarray(rows), (np.cumsum(counts) - counts).astype(np.int64))
    return order
