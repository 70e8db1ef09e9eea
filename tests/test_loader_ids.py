"""Raw ids to vocabulary indices: the lookup table (small non-negative ids) and hashing give the same indices."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.ratings import Vocabulary


@pytest.mark.parametrize(
    ("ids", "raw"),
    [
        ([-5, 0, 3, 7, 100], [0, 3, 3, 7, 8, 100, -5, 101]),  # a negative id: hashing
        ([2, 4, 6], np.random.default_rng(0).integers(0, 10, 1000)),  # the table, ids missing from it
        ([2, 4, 6, 10**12], np.random.default_rng(1).integers(0, 10, 1000)),  # a huge id in the vocabulary
        ([2, 4, 6], [10**15, 2]),  # a huge raw id: hashing
        ([], [1, 2]),
        ([5], []),
    ],
)
def test_index_many_is_index(ids: list[int], raw: list[int] | np.ndarray) -> None:
    vocabulary = Vocabulary(np.asarray(ids, np.int64))
    raw_ids = np.asarray(raw, np.int64)
    indices = vocabulary.index_many(raw_ids)
    assert indices.dtype == np.int64
    assert np.array_equal(indices, vocabulary.index(raw_ids))


def test_index_many_through_the_table_on_many_ids() -> None:
    rng = np.random.default_rng(2)
    vocabulary = Vocabulary.from_ids(rng.integers(0, 50_000, 20_000))
    raw = rng.integers(0, 60_000, 200_000)
    assert np.array_equal(vocabulary.index_many(raw), vocabulary.index(raw))
