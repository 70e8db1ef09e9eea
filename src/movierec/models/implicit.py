"""The "likely to watch" component of the ranking score: implicit ALS on who rated what.

Star ratings say how much a person liked a movie; the mere fact that they rated it says they chose to watch it.
This component models the second signal (iALS, Hu et al. 2008, in the form of Rendle et al. 2021): for every
user ``x_u`` and movie ``y_i``,

    sum over rated pairs (x_u . y_i - 1)^2 + unobserved * sum over all pairs (x_u . y_i)^2 + reg * (|x|^2 + |y|^2)

Each half-step is a ridge regression per row, solved exactly in closed form. The same closed form folds in a
new user from the set of movies they rated, without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movierec.data.ratings import Ratings

if TYPE_CHECKING:  # torch is imported where the fit runs: folding in and serving need only NumPy
    import torch

    from movierec.train.als import Side


@dataclass(frozen=True)
class WatchSettings:
    """Size and strength of the implicit component (``dim`` 0 turns it off)."""

    dim: int = 64
    reg: float = 10.0
    unobserved: float = 1.0
    iterations: int = 8


@dataclass(frozen=True)
class WatchFactors:
    user: np.ndarray  # float32 [n_users, dim]
    item: np.ndarray  # float32 [n_items, dim]


def fit_watch(train: Ratings, settings: WatchSettings, seed: int = 0, device: str = "cpu") -> WatchFactors:
    """Alternate exact user and movie solves ``settings.iterations`` times."""
    import torch

    from movierec.train.als import build_side

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
    return WatchFactors(users[:-1].cpu().numpy().copy(), items[:-1].cpu().numpy().copy())


def fold_in_watch(
    item_factors: np.ndarray, items: np.ndarray, reg: float, unobserved: float, gram: np.ndarray
) -> np.ndarray:
    """A new user's watch vector from the movies they rated (any rating counts). ``gram`` is
    ``watch_gram(item_factors)``, computed once per model (on a large catalog it is most of the cost)."""
    dim = item_factors.shape[1]
    if items.size == 0 or dim == 0:
        return np.zeros(dim, np.float32)
    chosen = item_factors[items].astype(np.float64)
    lhs = chosen.T @ chosen + unobserved * gram + reg * np.eye(dim)
    return np.linalg.solve(lhs, chosen.sum(axis=0)).astype(np.float32)


def watch_gram(item_factors: np.ndarray) -> np.ndarray:
    """``item_factors.T @ item_factors`` in float64: the "every movie unobserved" part of every fold-in."""
    return item_factors.T.astype(np.float64) @ item_factors.astype(np.float64)


def _solve_side(side: Side, other: torch.Tensor, settings: WatchSettings) -> torch.Tensor:
    """Every row's exact ridge solution against ``other`` (whose last row is the zero padding row)."""
    import torch

    dim = other.shape[1]
    base = settings.unobserved * (other.T @ other) + settings.reg * torch.eye(dim, device=other.device)
    out = torch.zeros(side.n_rows, dim, device=other.device)
    for block in side.blocks:
        gathered = other[block.cols.long()]  # (rows, length, dim); padding rows are zero
        lhs = gathered.transpose(1, 2) @ gathered + base
        rhs = gathered.sum(dim=1)
        chol = torch.linalg.cholesky(lhs)
        out[block.rows] = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    return out
