"""The ranking weights' grid is scored in one pass: each pair's scores are those of ``FactorModel.rank_scores``
with the pair, to the last bit, so the one-pass choice is the choice of scoring every pair on its own."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.ratings import Ratings, Vocabulary, no_timestamps
from movierec.evaluate.protocol import rank_candidates
from movierec.models.factors import FactorModel, FactorParams
from movierec.train import rank_weight
from movierec.train.rank_weight import RANK_WEIGHTS, WATCH_RANK_WEIGHTS, WATCH_WEIGHTS, _Grid


def model(with_watch: bool) -> FactorModel:
    rng = np.random.default_rng(0)
    users, items, dim, watch_dim = 7, 11, 3, 4
    known = np.ones(users, bool)
    known[2] = False  # an untrained user scores as the fallback
    params = FactorParams(
        global_mean=3.5,
        user_bias=rng.normal(size=users).astype(np.float32),
        item_bias=rng.normal(size=items).astype(np.float32),
        user_factors=rng.normal(size=(users, dim)).astype(np.float32),
        item_factors=rng.normal(size=(items, dim)).astype(np.float32),
        low=0.5,
        high=5.0,
        link="sigmoid",
        user_known=known,
        item_prior=rng.random(items).astype(np.float32),
        watch_user=rng.normal(size=(users, watch_dim if with_watch else 0)).astype(np.float32),
        watch_item=rng.normal(size=(items, watch_dim if with_watch else 0)).astype(np.float32),
    )
    return FactorModel(params, "hybrid")


def test_every_pair_scores_exactly_as_the_model_with_those_weights() -> None:
    for with_watch in (True, False):
        factors = model(with_watch)
        grid = [(w, 0.0) for w in RANK_WEIGHTS] + [(w, v) for w in WATCH_RANK_WEIGHTS for v in WATCH_WEIGHTS]
        users = np.array([0, 2, 5, 6], dtype=np.int32)
        scorers = _Grid(factors, grid)
        produced = [scores.copy() for scores in scorers.scores(*scorers.parts(users))]  # one buffer, rewritten
        assert len(produced) == len(grid)
        for (weight, watch_weight), scores in zip(grid, produced, strict=True):
            expected = factors.with_rank_weight(weight, watch_weight).rank_scores(users)
            np.testing.assert_array_equal(scores, expected)
        assert not np.array_equal(produced[1], produced[-1])  # the weights change the scores


def test_the_grid_ranks_block_by_block_as_each_pair_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of rows (here 2 users at a time) and the shared exclusion of non-candidates change no list."""
    factors = model(with_watch=True)
    rng = np.random.default_rng(1)
    users, items = np.nonzero(rng.random((7, 11)) < 0.3)
    users, items = users.astype(np.int32), items.astype(np.int32)
    vocab = Vocabulary(np.arange(7, dtype=np.int64)), Vocabulary(np.arange(11, dtype=np.int64))
    train = Ratings(users, items, np.full(users.size, 4.0, np.float32), no_timestamps(users.size), *vocab)
    grid = [(w, 0.0) for w in RANK_WEIGHTS] + [(w, v) for w in WATCH_RANK_WEIGHTS for v in WATCH_WEIGHTS]
    monkeypatch.setattr(rank_weight, "ROW_BLOCK", 2 * train.n_items)
    ranked = np.array([0, 2, 3, 5, 6])
    together = _Grid(factors, grid).rank(train, ranked, 3, chunk_size=4)
    for (weight, watch_weight), lists in zip(grid, together, strict=True):
        alone = factors.with_rank_weight(weight, watch_weight).rank_scores
        np.testing.assert_array_equal(lists, rank_candidates(lambda u, s=alone: s(u), train, ranked, 3))
