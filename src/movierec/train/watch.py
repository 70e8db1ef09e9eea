"""Fitting the "likely to watch" component (iALS on who rated what; see ``movierec.models.watch``).

Each half-step is a ridge regression per row, solved exactly in closed form on batched torch ops; the targets
are the values of the padded blocks (1 for a watch, or a rating's signed target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.models.watch import Taste
from movierec.train.als import Side, build_side


@dataclass(frozen=True)
class WatchSettings:
    """Size and strength of the "likely to watch" component (``dim`` 0 turns it off)."""

    dim: int = 128
    reg: float = 10.0
    unobserved: float = 1.0
    iterations: int = 8


@dataclass(frozen=True)
class WatchFactors:
    user: np.ndarray  # float32 [n_users, dim]
    item: np.ndarray  # float32 [n_items, dim]


def fit_watch(
    train: Ratings, settings: WatchSettings, taste: Taste | None = None, seed: int = 0, device: str = "cpu"
) -> WatchFactors:
    """Alternate exact user and movie solves ``settings.iterations`` times on who watched what (every rating a
    watch), then, with ``taste``, solve every user once more with the signed targets of their ratings: the movie
    vectors keep what watching says, the user vectors what the person thought of it."""
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    dim = settings.dim
    ones = np.ones(len(train), np.float32)
    user_side = build_side(train.users, train.items, ones, train.n_users, train.n_items, dev)
    item_side = build_side(train.items, train.users, ones, train.n_items, train.n_users, dev)
    users = torch.zeros(train.n_users + 1, dim, device=dev)
    items = torch.zeros(train.n_items + 1, dim, device=dev)
    items[:-1] = (torch.randn(train.n_items, dim, generator=generator) * 0.1).to(dev)
    for _ in range(settings.iterations):
        users[:-1] = _solve_side(user_side, items, settings)
        items[:-1] = _solve_side(item_side, users, settings)
    if taste is not None and taste.dislike != 1.0:
        signed = taste.targets(train.users, train.ratings, train.n_users)
        users[:-1] = _solve_side(
            build_side(train.users, train.items, signed, train.n_users, train.n_items, dev), items, settings
        )
    return WatchFactors(users[:-1].cpu().numpy().copy(), items[:-1].cpu().numpy().copy())


def _solve_side(side: Side, other: torch.Tensor, settings: WatchSettings) -> torch.Tensor:
    """Every row's exact ridge solution against ``other`` (whose last row is the zero padding row)."""
    dim = other.shape[1]
    base = settings.unobserved * (other.T @ other) + settings.reg * torch.eye(dim, device=other.device)
    out = torch.zeros(side.n_rows, dim, device=other.device)
    for block in side.blocks:
        gathered = other[block.cols.long()]  # (rows, length, dim); padding rows are zero
        lhs = gathered.transpose(1, 2) @ gathered + base
        rhs = (gathered * block.values.unsqueeze(-1)).sum(dim=1)  # targets; 0 on padding
        chol = torch.linalg.cholesky(lhs)
        out[block.rows] = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    return out


def fit_configured(train: Ratings, config: TrainConfig, global_mean: float) -> WatchFactors | None:
    """The component ``config`` asks for (None when ``watch_dim`` is 0), its targets centred on ``global_mean``."""
    if not config.watch_dim:
        return None
    settings = WatchSettings(config.watch_dim, config.watch_reg, config.watch_unobserved, config.watch_iterations)
    taste = Taste(global_mean, config.watch_margin, config.watch_dislike)
    return fit_watch(train, settings, taste, seed=config.seed)
