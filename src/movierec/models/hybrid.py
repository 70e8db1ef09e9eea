"""The hybrid model: biased matrix factorisation whose movie and user vectors are built from parts.

``rating(u, i) = mean + b_u + b_i + p_u . q_i`` as in ``biased-mf``, where

- the movie vector ``q_i = e_i + sum_f w_if W_f`` adds learned embeddings of the movie's features (genres,
  release-year bucket, user tags; see ``features.py``) to its own embedding, and the movie bias likewise
  adds one learned bias per feature, so a movie nobody rated still gets a vector and a bias;
- the user vector ``p_u = x_u + |N(u)|^-1/2 sum_{j in N(u)} y_j`` adds an SVD++ term: a normalised sum of
  embeddings of the movies the user rated, whatever the rating ("which films I chose to rate").

Regularisation is per touched row, as in ``biased-mf``: each example pays for the squared norms of the rows
it used; feature rows weighted by their share in the movie's sum, and every ``y_j`` of the user's sum in full
(as in Koren's SVD++). The weights of these groups were tuned by hand on validation ratings of
ml-latest-small (see benchmarks/accuracy_hybrid.py).

``export`` folds everything into the one ``FactorParams`` snapshot: feature embeddings into ``item_factors``
and ``item_bias``, each known user's implicit term into ``user_factors``, and the ``y_j`` table into
``implicit`` so that folding in a new user adds the same term (``FactorModel.fold_in``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.models.factors import FactorParams
from movierec.models.features import ItemFeatures, build_item_features

EXPORT_CHUNK = 4096  # users per chunk when the SVD++ terms are precomputed for export


class HybridMF(nn.Module):
    """Biased MF with feature embeddings on the movie side and the SVD++ term on the user side."""

    bias_reg_scale = 0.1
    """Biases carry one number per row; they need far less shrinkage than the factors."""
    feature_reg_scale = 0.03
    """Weight of the feature rows' penalty: features are shared by many movies, so they need little."""
    implicit_reg_scale = 10.0
    """Weight of the penalty on the squared norms of the ``y_j`` rows a user's implicit term sums."""

    global_mean: torch.Tensor
    rated_scale: torch.Tensor
    item_trained: torch.Tensor

    def __init__(
        self,
        train: Ratings,
        dim: int,
        low: float,
        high: float,
        init_std: float,
        features: ItemFeatures | None = None,
        implicit: bool = True,
    ) -> None:
        """Sized to ``train`` (the ratings it is fitted on, which also give each user's rated movies for the
        implicit term); ``features`` adds the movie-side embeddings."""
        super().__init__()
        n_users, n_items = train.n_users, train.n_items
        self.user_factors = nn.Embedding(n_users, dim)
        self.item_factors = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.register_buffer("global_mean", torch.zeros(()))
        self.register_buffer("item_trained", torch.from_numpy(train.item_counts() > 0), persistent=False)
        self.low, self.high = float(low), float(high)
        self.n_users, self.n_items, self.dim = n_users, n_items, dim

        self.features: FixedSparse | None = None
        self.feature_factors: nn.Embedding | None = None
        self.feature_bias: nn.Embedding | None = None
        self.item_has_features = np.zeros(n_items, bool)
        if features is not None and features.weights.size:
            if features.n_items != n_items:
                raise ValueError(f"features describe {features.n_items} movies, the ratings {n_items}")
            self.features = FixedSparse(features.indptr, features.indices, features.weights, features.n_features)
            self.feature_factors = nn.Embedding(features.n_features, dim)
            self.feature_bias = nn.Embedding(features.n_features, 1)
            nn.init.zeros_(self.feature_factors.weight)
            nn.init.zeros_(self.feature_bias.weight)
            self.item_has_features = features.has_features()

        self.rated: FixedSparse | None = None
        self.implicit: nn.Embedding | None = None
        if implicit and len(train):
            indptr, items = rated_sets(train)
            scale = (1.0 / np.sqrt(np.maximum(np.diff(indptr), 1))).astype(np.float32)
            self.rated = FixedSparse(indptr, items, np.repeat(scale, np.diff(indptr)), n_items)
            self.register_buffer("rated_scale", torch.from_numpy(scale), persistent=False)
            self.implicit = nn.Embedding(n_items, dim)
            nn.init.zeros_(self.implicit.weight)
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # -------------------------------------------------------------------------------------------- training

    def init_from_mean(self, mean: float) -> None:
        self.global_mean.fill_(float(mean))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        predicted, penalty = self._predict(users, items, with_penalty=torch.is_grad_enabled())
        self._cache = (users, items, penalty) if penalty is not None else None
        return predicted

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Per-example squared norms of the rows the example touched (reused from ``forward`` when the batch
        is the one just predicted)."""
        cache = self._cache
        self._cache = None
        if cache is not None and cache[0] is users and cache[1] is items:
            return cache[2]
        _, penalty = self._predict(users, items, with_penalty=True)
        assert penalty is not None
        return penalty

    def _predict(
        self, users: torch.Tensor, items: torch.Tensor, with_penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        user_rows, user_index = torch.unique(users, return_inverse=True)
        item_rows, item_index = torch.unique(items, return_inverse=True)
        p, b_u, pen_u = self._user_side(user_rows, with_penalty)
        q, b_i, pen_i = self._item_side(item_rows, with_penalty)
        dot = (p[user_index] * q[item_index]).sum(-1)
        predicted = self.global_mean + b_u[user_index] + b_i[item_index] + dot
        if not with_penalty:
            return predicted, None
        assert pen_u is not None and pen_i is not None
        return predicted, pen_u[user_index] + pen_i[item_index]

    def _user_side(
        self, rows: torch.Tensor, with_penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Vectors, biases and (optionally) penalties of distinct users."""
        vector, bias, penalty = self._own_rows(self.user_factors, self.user_bias, rows, with_penalty)
        if self.implicit is not None:
            implicit, implicit_penalty = self._implicit_terms(rows, with_penalty)
            vector = vector + implicit
            if penalty is not None and implicit_penalty is not None:
                penalty = penalty + self.implicit_reg_scale * implicit_penalty
        return vector, bias, penalty

    def _item_side(
        self, rows: torch.Tensor, with_penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Vectors, biases and (optionally) penalties of distinct movies."""
        vector, bias, penalty = self._own_rows(self.item_factors, self.item_bias, rows, with_penalty)
        if self.features is not None:
            feature_vector, feature_bias, feature_penalty = self._feature_terms(rows, with_penalty)
            vector = vector + feature_vector
            bias = bias + feature_bias
            if penalty is not None and feature_penalty is not None:
                penalty = penalty + self.feature_reg_scale * feature_penalty
        return vector, bias, penalty

    def _own_rows(
        self, factors: nn.Embedding, biases: nn.Embedding, rows: torch.Tensor, with_penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The rows' own vectors and biases, and (optionally) their squared norms."""
        vector = factors(rows)
        bias = biases(rows).squeeze(-1)
        penalty = vector.pow(2).sum(-1) + self.bias_reg_scale * bias.pow(2) if with_penalty else None
        return vector, bias, penalty

    def _implicit_terms(self, rows: torch.Tensor, with_penalty: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``|N(u)|^-1/2 sum y_j`` for distinct users, and ``sum ||y_j||^2`` over the same rows."""
        assert self.implicit is not None and self.rated is not None
        table = self.implicit.weight
        if not with_penalty:
            return self.rated.rows_times(rows, table), None
        norms = table.pow(2).sum(-1, keepdim=True)
        both = self.rated.rows_times(rows, torch.cat([table, norms], 1))
        return both[:, :-1], both[:, -1] / self.rated_scale[rows]  # the matrix holds |N(u)|^-1/2

    def _feature_terms(
        self, rows: torch.Tensor, with_penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``sum_f w_if W_f`` and ``sum_f w_if c_f`` for distinct movies, and the weighted squared norms."""
        assert self.feature_factors is not None and self.feature_bias is not None and self.features is not None
        factors, biases = self.feature_factors.weight, self.feature_bias.weight
        if not with_penalty:
            out = self.features.rows_times(rows, torch.cat([factors, biases], 1))
            return out[:, :-1], out[:, -1], None
        norms = factors.pow(2).sum(-1, keepdim=True) + self.bias_reg_scale * biases.pow(2)
        out = self.features.rows_times(rows, torch.cat([factors, biases, norms], 1))
        return out[:, :-2], out[:, -2], out[:, -1]

    # ---------------------------------------------------------------------------------------------- export

    @torch.no_grad()
    def export(self) -> FactorParams:
        """The snapshot the standard ``FactorModel`` scores; movies without ratings keep only their features."""
        device = self.item_trained.device
        keep = self.item_trained.to(self.item_factors.weight.dtype).unsqueeze(-1)
        item_vectors = self.item_factors.weight * keep  # untrained own rows are still at their random init
        item_bias = self.item_bias.weight * keep
        if self.features is not None:
            feature_vector, feature_bias, _ = self._feature_terms(torch.arange(self.n_items, device=device), False)
            item_vectors = item_vectors + feature_vector
            item_bias = item_bias + feature_bias.unsqueeze(-1)
        chunks = [
            self._user_side(torch.arange(start, min(start + EXPORT_CHUNK, self.n_users), device=device), False)[0]
            for start in range(0, self.n_users, EXPORT_CHUNK)
        ]
        user_vectors = torch.cat(chunks) if chunks else self.user_factors.weight
        known = self.item_trained.cpu().numpy() | self.item_has_features
        return FactorParams(
            global_mean=float(self.global_mean),
            user_bias=_numpy(self.user_bias.weight)[:, 0].copy(),
            item_bias=_numpy(item_bias)[:, 0].copy(),
            user_factors=_numpy(user_vectors),
            item_factors=_numpy(item_vectors),
            low=self.low,
            high=self.high,
            link="linear",
            item_known=known.astype(bool),
            implicit=_numpy(self.implicit.weight * keep) if self.implicit is not None else None,
        )


def build_hybrid(config: TrainConfig, data: Dataset, train: Ratings) -> HybridMF:
    """The hybrid sized to ``train``'s vocabularies, with the feature groups the config switches on."""
    features = build_item_features(
        data, train.n_items, genres=config.use_genres, years=config.use_genres, tags=config.use_tags
    )
    return HybridMF(train, config.dim, data.scale.low, data.scale.high, config.init_std, features, config.use_implicit)


def rated_sets(train: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """Each user's rated movies in CSR form: ``(indptr [n_users + 1], items [n_ratings])``."""
    order = np.argsort(train.users, kind="stable")
    indptr = np.zeros(train.n_users + 1, np.int64)
    np.cumsum(train.user_counts(), out=indptr[1:])
    return indptr, train.items[order].astype(np.int64)


class FixedSparse(nn.Module):
    """A constant sparse matrix in CSR form; ``rows_times(rows, table)`` is ``matrix[rows] @ table``,
    differentiable in ``table``.

    Batches touching a small share of the matrix go through ``embedding_bag`` (cost: the rows' entries);
    batches touching most of it (a small dataset, where every batch meets nearly every user) multiply the
    whole matrix and its precomputed transpose, which avoids sorting the entries again for every batch.
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_columns: int) -> None:
        super().__init__()
        for name, array in (("indptr", indptr), ("indices", indices), ("values", values)):
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            self.register_buffer(name, tensor, persistent=False)
        self.n_rows, self.n_columns = int(indptr.shape[0] - 1), int(n_columns)
        self._csr: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def rows_times(self, rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        positions, offsets, _ = bag_positions(self.indptr, rows)
        if 3 * positions.shape[0] > self.nnz and positions.shape[0] > 0:
            matrix, transposed = self._matrices()
            return _RowsTimes.apply(table, matrix, transposed, rows)
        return F.embedding_bag(
            self.indices[positions], table, offsets, mode="sum", per_sample_weights=self.values[positions]
        )

    def _matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix and its transpose as torch CSR tensors, built once per device."""
        if self._csr is None or self._csr[0].device != self.indices.device:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
                size = (self.n_rows, self.n_columns)
                matrix = torch.sparse_csr_tensor(self.indptr, self.indices, self.values, size=size)
                transposed = matrix.to_sparse_coo().t().coalesce().to_sparse_csr()
            self._csr = (matrix, transposed)
        return self._csr


class _RowsTimes(torch.autograd.Function):
    """``(matrix @ table)[rows]`` with the gradient ``transposed @ grad`` (rows must be distinct)."""

    @staticmethod
    def forward(
        ctx: Any, table: torch.Tensor, matrix: torch.Tensor, transposed: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.transposed = transposed
        ctx.n_rows = matrix.shape[0]
        return torch.sparse.mm(matrix, table)[rows]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (rows,) = ctx.saved_tensors
        full = grad.new_zeros(ctx.n_rows, grad.shape[1])
        full[rows] = grad
        return torch.sparse.mm(ctx.transposed, full), None, None, None


def bag_positions(indptr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For CSR ``rows``: the positions of their entries, each row's offset into them, and each entry's row."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum())
    owner = torch.repeat_interleave(torch.arange(rows.shape[0], device=rows.device), lengths, output_size=total)
    positions = torch.arange(total, device=rows.device) - offsets[owner] + starts[owner]
    return positions, offsets, owner


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy().copy()
