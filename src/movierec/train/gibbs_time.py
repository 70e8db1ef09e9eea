"""The Gibbs sampler's time effects (``models/time_effects``): a movie bias per time bin and a drifting user bias.

Each is a block of scalars with its own prior ``N(mu, 1/lambda)`` and Normal-Gamma hyperprior, like the other
blocks: rating ``r`` adds ``w_r theta[g_r]`` (a movie-bin bias: group ``(movie, bin)``, weight 1; a user's drift:
group the user, weight ``dev_u(t)``). Given everything else a group's value is Gaussian with precision ``alpha sum
w_r^2 + lambda`` and right-hand side ``alpha sum w_r e_r + lambda mu`` over its ratings' residuals ``e_r`` without
the block's own term; groups are independent, so a block is one scatter-add and one draw. Groups without ratings
(or with zero weights) take their prior mean: they touch no rating, and the export averages that mean.

The rows of users and movies see the time terms as a fixed part of each rating: ``A'(y - t)``, so their right-hand
sides lose ``sum_r [x_r, 1] t_r`` (``row_shift``) and the normal equations are otherwise ALS's.

Off unless ``use_time``: on held-out training ratings of ml-latest-small (``benchmarks/bayes_time.py``, split seed 0,
the hybrid's Gibbs defaults) they scored 0.8049 with each rating's date against 0.8092 without them, but 0.8422
undated (at the latest training date, as ``serve`` predicts): they pay only where a prediction has its date. With the
flipped block (``benchmarks/bayes.py --validation``, split seeds 0 and 1): warm at 250 sweeps 0.8148 and 0.7988 dated
(0.8512 and 0.8302 undated) against 0.8175 and 0.7995 without them; from the cold start of ``gibbs`` at 150 sweeps
0.8112 and 0.7923 dated (0.8478 and 0.8254 undated) against 0.8083 and 0.7977, a loss on split seed 0 even dated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from movierec.data.ratings import Ratings
from movierec.models.factors import FactorParams
from movierec.models.time_effects import TimeAxis
from movierec.train.als import Factors

ITEM_BIN, USER_DRIFT = "time:item_bin", "time:user_drift"
TIME_BLOCKS = (ITEM_BIN, USER_DRIFT)
"""The time blocks, by their names among the chain's hyperparameters."""
_CHUNK = 1 << 18
"""Ratings per step of ``row_shift`` (bounds its ``(ratings, dim + 1)`` temporary)."""


@dataclass(frozen=True)
class Design:
    """Each rating's group and weight in every time block."""

    groups: dict[str, torch.Tensor]  # (n,) int64 per block
    weights: dict[str, torch.Tensor]  # (n,) float32 per block


class TimeEffects:
    """The time blocks' current values, their sums over the kept samples, and their designs on the fit and
    validation ratings."""

    def __init__(self, train: Ratings, valid: Ratings, device: torch.device) -> None:
        self.axis = TimeAxis.of(train.users, train.timestamps, train.n_users)
        sizes = {ITEM_BIN: train.n_items * self.axis.n_bins, USER_DRIFT: train.n_users}
        self.values = {name: torch.zeros(size, device=device) for name, size in sizes.items()}
        self.sums = {name: torch.zeros(size, dtype=torch.float64, device=device) for name, size in sizes.items()}
        self.train, self.valid = self.design(train, device), self.design(valid, device)
        self.informed = {
            name: torch.zeros(size, device=device).index_add_(0, self.train.groups[name], self.train.weights[name] ** 2)
            > 0
            for name, size in sizes.items()
        }
        """Per block, the groups some rating informs (the others keep their prior mean)."""

    def design(self, ratings: Ratings, device: torch.device) -> Design:
        n_bins = self.axis.n_bins
        groups = {
            ITEM_BIN: ratings.items.astype(np.int64) * n_bins + self.axis.bins(ratings.timestamps),
            USER_DRIFT: ratings.users.astype(np.int64),
        }
        weights = {ITEM_BIN: np.ones(len(ratings)), USER_DRIFT: self.axis.drift(ratings.users, ratings.timestamps)}
        return Design(
            {name: torch.from_numpy(value).to(device) for name, value in groups.items()},
            {name: torch.from_numpy(value.astype(np.float32)).to(device) for name, value in weights.items()},
        )

    def terms(self, design: Design) -> torch.Tensor:
        """Each rating's time term ``sum over blocks w_r theta[g_r]``."""
        return sum(
            (design.weights[name] * value.index_select(0, design.groups[name]) for name, value in self.values.items()),
            torch.zeros_like(next(iter(design.weights.values()))),
        )

    def draw(
        self,
        residual: torch.Tensor,
        noise_precision: float,
        priors: dict[str, tuple[torch.Tensor, torch.Tensor]],
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Draw every block in turn given the fit ratings' ``residual`` (with the time terms taken off); returns
        the residual under the new values."""
        for name, value in self.values.items():
            groups, weights = self.train.groups[name], self.train.weights[name]
            partial = residual + weights * value.index_select(0, groups)
            (mean, precision), informed = priors[name], self.informed[name]
            row_precision = noise_precision * torch.zeros_like(value).index_add_(0, groups, weights**2) + precision
            rhs = noise_precision * torch.zeros_like(value).index_add_(0, groups, weights * partial) + precision * mean
            noise = torch.randn(value.shape, generator=generator, device=value.device)
            drawn = rhs / row_precision + noise / row_precision.sqrt()
            value.copy_(torch.where(informed, drawn, mean))
            residual = partial - weights * value.index_select(0, groups)
        return residual

    def rows(self) -> list[tuple[str, torch.Tensor]]:
        """Each block's informed values as ``(n, 1)`` rows, for its hyperparameters."""
        return [(name, value[self.informed[name]][:, None]) for name, value in self.values.items()]

    def add(self) -> None:
        """Keep the current values in the sums."""
        for name, value in self.values.items():
            self.sums[name] += value

    def export(self, params: FactorParams, kept: int) -> FactorParams:
        """``params`` with the posterior mean time effects: at the latest training date folded into the biases,
        the rest as the tables ``FactorModel.predict`` dates a pair with (``models/time_effects``)."""
        means = {name: (total / max(1, kept)).cpu().numpy() for name, total in self.sums.items()}
        bins = means[ITEM_BIN].reshape(-1, self.axis.n_bins)
        drift = means[USER_DRIFT]
        return replace(
            params,
            item_bias=(params.item_bias + bins[:, -1]).astype(np.float32),
            user_bias=(params.user_bias + drift * self.axis.drift_at_last()).astype(np.float32),
            time_span=np.array([self.axis.start, self.axis.end]),
            item_time_bias=(bins - bins[:, -1:]).astype(np.float32),
            user_drift=drift.astype(np.float32),
            user_days=self.axis.user_days,
        )

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint."""
        out = {f"time.{name}": value for name, value in self.values.items()}
        out.update({f"time_sum.{name}": value for name, value in self.sums.items()})
        return out

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in self.values:
            self.values[name].copy_(tensors[f"time.{name}"])
            self.sums[name].copy_(tensors[f"time_sum.{name}"])


def row_shift(
    rows: torch.Tensor, other: Factors, columns: torch.Tensor, terms: torch.Tensor, n_rows: int
) -> torch.Tensor:
    """``(n_rows + 1, dim + 1)``: per own row, ``sum_r [x_r, 1] t_r`` over its ratings (``rows``, the other side's
    ``columns``, time terms ``terms``): what the time terms take off each row's ``A'y``."""
    out = torch.zeros(n_rows + 1, other.factors.shape[1] + 1, device=terms.device)
    for start in range(0, terms.shape[0], _CHUNK):
        part = slice(start, start + _CHUNK)
        x = other.factors.index_select(0, columns[part])
        design = torch.cat([x, torch.ones_like(x[:, :1])], 1) * terms[part, None]
        out.index_add_(0, rows[part], design)
    return out
