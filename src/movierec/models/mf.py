"""Matrix factorisation as small PyTorch modules: embeddings and biases, nothing else inside.

- ``SigmoidMF``: the reference the project grew from. User and movie ``nn.Embedding`` tables combined by a
  dot product, squashed by a sigmoid scaled to the data's rating range (read from the data). One learned
  scalar offset inside the sigmoid lets an unknown user or movie fall back to the mean rating.
- ``BiasedMF``: global mean + user bias + movie bias + dot product, the classic "SVD" of the Netflix prize.

Each module also says how to penalise the rows a batch touched (``penalty``) and how to export itself as a
``FactorParams`` snapshot for scoring.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from movierec.models.factors import FactorParams


class SigmoidMF(nn.Module):
    """``low + (high - low) * sigmoid(offset + p_u . q_i)``."""

    def __init__(self, n_users: int, n_items: int, dim: int, low: float, high: float, init_std: float) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, dim)
        self.item_factors = nn.Embedding(n_items, dim)
        self.offset = nn.Parameter(torch.zeros(()))
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        self.low, self.high = float(low), float(high)

    def init_from_mean(self, mean: float) -> None:
        share = min(max((mean - self.low) / (self.high - self.low), 0.02), 0.98)
        with torch.no_grad():
            self.offset.fill_(float(np.log(share / (1 - share))))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(dim=-1)
        return self.low + (self.high - self.low) * torch.sigmoid(self.offset + dot)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Squared norms of the touched rows, one value per example."""
        return self.user_factors(users).pow(2).sum(-1) + self.item_factors(items).pow(2).sum(-1)

    def export(self) -> FactorParams:
        n_users, n_items = self.user_factors.num_embeddings, self.item_factors.num_embeddings
        return FactorParams(
            global_mean=float(self.offset.detach()),
            user_bias=np.zeros(n_users, np.float32),
            item_bias=np.zeros(n_items, np.float32),
            user_factors=_numpy(self.user_factors.weight),
            item_factors=_numpy(self.item_factors.weight),
            low=self.low,
            high=self.high,
            link="sigmoid",
        )


class BiasedMF(nn.Module):
    """``mean + b_u + b_i + p_u . q_i``, clipped to the rating scale when exported."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        low: float,
        high: float,
        init_std: float,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(n_users, dim, sparse=sparse)
        self.item_factors = nn.Embedding(n_items, dim, sparse=sparse)
        self.user_bias = nn.Embedding(n_users, 1, sparse=sparse)
        self.item_bias = nn.Embedding(n_items, 1, sparse=sparse)
        self.register_buffer("global_mean", torch.zeros(()))
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.low, self.high = float(low), float(high)
        self.bias_reg_scale = 0.1  # biases carry one number per row; they need far less shrinkage

    global_mean: torch.Tensor

    def init_from_mean(self, mean: float) -> None:
        self.global_mean.fill_(float(mean))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(dim=-1)
        biases = self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1)
        return self.global_mean + biases + dot

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        factors = self.user_factors(users).pow(2).sum(-1) + self.item_factors(items).pow(2).sum(-1)
        biases = self.user_bias(users).squeeze(-1).pow(2) + self.item_bias(items).squeeze(-1).pow(2)
        return factors + self.bias_reg_scale * biases

    def export(self) -> FactorParams:
        return FactorParams(
            global_mean=float(self.global_mean),
            user_bias=_numpy(self.user_bias.weight)[:, 0].copy(),
            item_bias=_numpy(self.item_bias.weight)[:, 0].copy(),
            user_factors=_numpy(self.user_factors.weight),
            item_factors=_numpy(self.item_factors.weight),
            low=self.low,
            high=self.high,
            link="linear",
        )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy().copy()
