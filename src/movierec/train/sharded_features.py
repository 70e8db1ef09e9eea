"""The hybrid's feature rows under sharded ALS: small, so every rank holds all of them and solves them alike.

The movie x feature matrix ``F`` is cut like the movies: rank ``r`` keeps the rows of the movies it owns (local
position ``i // W``). Every product onto the features (``F' x``, the only one ``als.solve_features`` needs besides
``F x`` on the movies) is the sum of each rank's share, so ``SummedFeatureMatrix`` all-reduces it: the right-hand
side, the Jacobi diagonal and each conjugate-gradient step's product are all-reduced ``(features, dim + 1)``
blocks, and every rank takes the same steps on the same table. ``F x`` for a rank's own movies needs nothing from
the others, so each rank computes the feature part of its own movies and sends whole movie rows
``[e_i + F_i W, b_i + F_i c]`` where the users need them, like any factor row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.train import als
from movierec.train.shard_exchange import Exchange


@dataclass(frozen=True)
class SummedFeatureMatrix(als.FeatureMatrix):
    """The rows of ``F`` of this rank's own movies; products onto the features summed over every rank."""

    exchange: Exchange | None = None

    @classmethod
    def own_rows(
        cls, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, n_features: int, exchange: Exchange
    ) -> SummedFeatureMatrix:
        """The rows ``i % W == rank`` of the CSR matrix ``(indptr, indices, weights)`` over every movie."""
        rows = np.arange(exchange.rank, indptr.shape[0] - 1, exchange.world)
        starts, lengths = indptr[rows], np.diff(indptr)[rows]
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        own_indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        own = als.FeatureMatrix.from_csr(
            own_indptr, indices[positions], weights[positions], n_features, exchange.device
        )
        return cls(own.by_item, own.by_feature, own.n_items, own.n_features, exchange)

    def transposed_times(self, table: torch.Tensor, squared: bool = False) -> torch.Tensor:
        assert self.exchange is not None, "built by own_rows"
        return self.exchange.all_sum(super().transposed_times(table, squared))
