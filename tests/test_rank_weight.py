"""The ranking weights' grid is scored in one pass: each pair's scores are those of ``FactorModel.rank_scores``
with the pair, to the last bit, so the one-pass choice is the choice of scoring every pair on its own."""

from __future__ import annotations

import numpy as np

from movierec.models.factors import FactorModel, FactorParams
from movierec.train.rank_weight import RANK_WEIGHTS, WATCH_RANK_WEIGHTS, WATCH_WEIGHTS, _grid_scores


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
        produced = list(_grid_scores(factors, grid)(users))
        assert len(produced) == len(grid)
        for (weight, watch_weight), scores in zip(grid, produced, strict=True):
            expected = factors.with_rank_weight(weight, watch_weight).rank_scores(users)
            np.testing.assert_array_equal(scores, expected)
        assert not np.array_equal(produced[1], produced[-1])  # the weights change the scores
