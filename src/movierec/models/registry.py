"""Model names to PyTorch modules."""

from __future__ import annotations

from torch import nn

from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.models.mf import BiasedMF, SigmoidMF


def build_module(config: TrainConfig, data: Dataset, train: Ratings) -> nn.Module:
    """A fresh module for ``config.model`` sized to the dataset's vocabularies."""
    n_users, n_items = train.n_users, train.n_items
    low, high = data.scale.low, data.scale.high
    if config.model == "sigmoid-mf":
        return SigmoidMF(n_users, n_items, config.dim, low, high, config.init_std)
    if config.model == "biased-mf":
        return BiasedMF(
            n_users, n_items, config.dim, low, high, config.init_std, sparse=config.optimizer == "sparse-adam"
        )
    if config.model == "hybrid":
        from movierec.models.hybrid import build_hybrid

        return build_hybrid(config, data, train)
    raise ValueError(f"{config.model} is not a trained model")
