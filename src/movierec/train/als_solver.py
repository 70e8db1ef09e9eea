"""The ALS solver (``--solver als``): alternating least squares for ``biased-mf`` and ``hybrid``.

The driver (``movierec.train.driver``) runs it like any solver: one epoch is one ALS sweep (every user solved,
then every movie), with early stopping on validation RMSE (an epoch counts as better when it beats the best by
``MIN_IMPROVEMENT``), checkpoints without optimiser state, and a ``FactorModel`` exported through the model's
module (``BiasedMF``, or ``HybridMF``, whose export folds the feature rows into each movie's vector and bias and
gives movies without ratings a vector from their features alone).

biased-mf: it minimises the loop's own objective (squared error plus ``reg`` times the squared norms of the rows
each rating touches), so ``reg`` means the same under both solvers. The kernels are in ``als.py``.

hybrid: a sweep solves every user against the whole movie vectors ``q_i = e_i + sum_f w_if W_f`` (and biases),
then each movie's own ``[e_i, b_i]`` with its feature part as a fixed offset, then the feature rows ``[W_f, c_f]``
given the users and the movies' own rows (``als.solve_features``, its gradient left behind by the movie solve
while each block was in cache, then ``FEATURE_STEPS`` passes over the movie blocks). The loop's penalty is kept
term for term (per touched row, ``bias_reg_scale``, the feature rows weighted by ``w_if`` and
``feature_reg_scale``), so ``reg`` means what it means to the loop, with two documented differences:

- No SVD++ term: under ALS ``use_implicit`` is ignored and the module is built without it (``module_config``).
  On ml-latest-small (random 90/10, split seed 0) the loop's test RMSE is 0.8141 with it and 0.8135 without.
- A fixed ridge on every user's and movie's own rows, ``HYBRID_PRIOR``: 1 on the factors, 5 on the bias (the
  ``biases`` baseline's damping), whatever the row's number of ratings, added to ``reg``'s per-rating penalty.
  The loop stops early (best epoch 4 on ml-latest-small), which leaves rows with one or two ratings near their
  start; ALS reaches the penalised optimum in a few sweeps, where such rows fit their ratings. The prior takes
  early stopping's place: test RMSE 0.834 at the best ``reg`` without it, 0.8142 with it. The history's
  ``train_loss`` is the loop's objective, without the prior.

Tuned ``reg`` for the ALS hybrid: 0.3 (chosen on validation RMSE over 0.1-0.4 at dim 64), not the loop's 0.1:
``movierec train --model hybrid --solver als --reg 0.3`` gave test RMSE 0.8142 on that split (0.8329 at 0.1)
before the ridge path below.

The hybrid's ridge path (``HYBRID_REG_PATH``, ``path_reg``): its sweeps start at a quarter of ``reg``, go to half
and then to ``reg`` itself, each step taken after an epoch that lowered the validation RMSE by less than
``PATH_TOLERANCE``; the driver keeps the best epoch as for any solver, so ``reg`` is the strongest ridge tried and
validation picks among the three. ``reg`` 0.3 suits ml-latest-small's 100,000 ratings; on 25M ratings with a
strong low-rank signal it costs 0.2 of RMSE, and ALS climbs to its optimum from a small start at ~0.83 of the
remaining gap a sweep (29 epochs), where a weaker ridge fits in 3. ``biased-mf`` keeps its one ridge (the issue-16
comparison with LensKit runs it at LensKit's settings). Test RMSE with the path (``movierec train --model hybrid
--solver als``, split seeds 0, 1, 2): 0.8131, 0.8167, 0.8110 against 0.8142, 0.8169, 0.8115 without; the whole job
at ML-25M size 47.5 s against 96.5 s, test RMSE 0.6550 against 0.8586 (``benchmarks/results/whole_job.txt``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.models.hybrid import HybridMF
from movierec.train import als
from movierec.train.checkpoint import NoOptimizer
from movierec.train.solver import Setup, Solver, rating_tensors

CG_STEPS = 3
"""Conjugate-gradient steps per row and half-sweep, warm-started from the previous sweep (``als_cg_steps``'s
default; 0 solves exactly). Validation RMSE on ml-latest-small (the driver's validation part of split seeds 0-2's
training ratings, shipped settings, watch part off; 2026-11-30): biased-mf 0.8673 at 3 steps, 0.8681 at 2, 0.8671
exact; the hybrid 0.8204 at 3, 2 and exact. At ML-25M size 2 steps ran 11.4M ratings/s against 10.0M at 3 (by
the batched torch ops), 0.0005 above the exact solve's validation RMSE (3 steps: level with it), so 2 would have met
issue 16's speed bar by default at a cost of 0.0008 on ml-latest-small's biased-mf: kept at 3, which runs 19.4-20.7M
ratings/s as the compiled loop (``als.COMPILED``; ``benchmarks/results/train_speed.txt``).

1 step (2026-11-30, the same split seeds, shipped settings, watch part off; validation / test RMSE): biased-mf
0.8596 / 0.8495 against 0.8671 / 0.8573 exact and 0.8673 / 0.8575 at 3 steps (the slower fit with early stopping
generalises better), the hybrid 0.8206 / 0.8146 against 0.8204 / 0.8142 exact and at 3. At ML-25M size (the whole
job: dim 81, 9 epochs, synthetic, one thread) the epochs take 36.3 s of CPU against 49.8 s at 3 steps (least of
3 and 2 runs; 47.5 s at 2 steps), with the best validation RMSE 0.63546 (epoch 7) against 0.63559 (epoch 9) and
test RMSE 0.6362 against 0.6364. It gains more slowly per epoch: at epoch 3 the validation RMSE is 0.6468
against 0.6374 at 3 steps."""
HYBRID_PRIOR = (1.0, 5.0)
"""hybrid: a fixed ridge on each user's and movie's own factors and bias (see the module docstring)."""
FEATURE_STEPS = 2
"""Conjugate-gradient steps on the hybrid's feature rows per sweep (one pass over the movie blocks each)."""
MIN_IMPROVEMENT = 1e-4
"""A validation RMSE must beat the best so far by this share to reset the patience counter."""
HYBRID_REG_PATH = (0.25, 0.5, 1.0)
"""hybrid: the shares of ``reg`` its sweeps go through, weakest first (see ``path_reg``). Validation RMSE (the
driver's validation part; 2026-11-30): on ml-latest-small (split seeds 0-2's training ratings, shipped settings,
watch part off) 0.8136 / 0.8227 / 0.8214 at best epochs 9 / 11 / 8 of 12 / 11 / 11, against 0.8143 / 0.8227 / 0.8224
at 12 / 15 / 14 with ``reg`` alone; on ML-25M-shaped synthetic ratings (``benchmarks/whole_job.py``'s) 0.6543 at
epoch 3 of 6 (the path's first step, reg 0.075), against 0.8576 at epoch 29 with ``reg`` alone, which ALS
approaches by ~0.83 of the remaining gap a sweep."""
PATH_TOLERANCE = 1e-3
"""The path takes its next step after an epoch whose validation RMSE is not this share below the epoch before."""


def path_reg(reg: float, validation: Sequence[float], shares: Sequence[float] = HYBRID_REG_PATH) -> float:
    """The ridge of the next epoch on an ascending path to ``reg``: ``shares[k] * reg`` after ``k`` epochs (the first
    one aside) that did not lower the validation RMSE by ``PATH_TOLERANCE`` of the epoch before, up to ``reg``.

    Each step is warm-started from the last, so every share gets the sweeps it needs and no more; the driver keeps
    the best epoch by validation RMSE, so the weaker ridge wins where the data carry it (ALS under a strong ridge
    crawls from its small start where the data would need few sweeps to fit). A pure function of the validation
    history, so a resumed run takes the steps it would have taken."""
    step = sum(after > before * (1 - PATH_TOLERANCE) for before, after in itertools.pairwise(validation))
    return reg * shares[min(step, len(shares) - 1)]


class AlsState:
    """The ratings grouped both ways on the device and the learned rows, mirrored into the module.

    For ``biased-mf`` the movie rows are the module's. For the hybrid, ``own`` holds each movie's own
    ``[e_i, b_i]``, ``features`` the feature rows ``[W_f, c_f]`` and ``items`` the whole movie vectors and biases
    the users are solved against: ``own`` (movies with training ratings only, as ``HybridMF.export`` keeps them)
    plus ``F @ features``.
    """

    def __init__(self, module: Any, ratings: Ratings, device: torch.device, reg: float, steps: int = CG_STEPS) -> None:
        self.module, self.device, self.reg, self.steps = module, device, reg, steps
        self.mean = float(module.global_mean)
        self.n_ratings = len(ratings)
        centred = ratings.ratings.astype(np.float32) - np.float32(self.mean)
        n_users, n_items = module.user_factors.num_embeddings, module.item_factors.num_embeddings
        self.by_user = als.build_side(ratings.users, ratings.items, centred, n_users, n_items, device)
        self.by_item = als.build_side(ratings.items, ratings.users, centred, n_items, n_users, device)
        del centred
        self.users = _padded(module.user_factors.weight, module.user_bias.weight, device)
        self.own = _padded(module.item_factors.weight, module.item_bias.weight, device)
        self.items = self.own
        self.bias_scale = float(module.bias_reg_scale)
        self.prior = HYBRID_PRIOR if isinstance(module, HybridMF) else (0.0, 0.0)
        self.matrix: als.FeatureMatrix | None = None
        if getattr(module, "feature_factors", None) is not None:
            sparse = module.features
            self.matrix = als.FeatureMatrix.from_csr(
                sparse.indptr.cpu().numpy(), sparse.indices.cpu().numpy(), sparse.values.cpu().numpy(),
                module.feature_factors.num_embeddings, device,
            )  # fmt: skip
            self.features = torch.cat([module.feature_factors.weight, module.feature_bias.weight], 1).detach()
            self.features = self.features.to(device, torch.float32).clone()
            # each rating pays feature_reg_scale * sum_f w_if (|W_f|^2 + bias_scale c_f^2): per feature, its
            # rating-weighted count N_f = sum_i n_i w_if times the row's squared norm
            counts = torch.cat([self.by_item.counts, self.by_item.counts.new_zeros(1)])[:, None]
            scales = torch.ones(self.features.shape[1], device=device)
            scales[-1] = self.bias_scale
            self.feature_weight = float(module.feature_reg_scale) * self.matrix.transposed_times(counts) * scales
            self.trained = (self.by_item.counts > 0).to(torch.float32)
            self._combine()

    def _combine(self) -> None:
        """Refresh the whole movie rows from the own rows and the feature rows."""
        assert self.matrix is not None
        spread = self.matrix.times(self.features)
        self.feature_part = als.Factors(spread[:, :-1], spread[:, -1])
        keep = torch.cat([self.trained, self.trained.new_zeros(1)])
        self.items = als.Factors(
            self.own.factors * keep[:, None] + self.feature_part.factors, self.own.bias * keep + self.feature_part.bias
        )

    def sweep(self) -> tuple[float, float]:
        """Solve every user, then every movie's own row, then (hybrid) the feature rows; return (train loss, train
        RMSE) measured before the movie half."""
        prior = self.prior
        scale = als.mean_square(self.items.factors, self.by_item.counts)
        als.solve_side(self.by_user, self.users, self.items, scale, self.reg, self.bias_scale, self.steps, None, prior)
        scale = als.mean_square(self.users.factors, self.by_user.counts)
        if self.matrix is None:
            squared = als.solve_side(
                self.by_item, self.items, self.users, scale, self.reg, self.bias_scale, self.steps, None, prior
            )
        else:
            sums = als.RowSums.zeros(self.by_item.n_rows, self.users.factors.shape[1], self.device)
            squared = als.solve_side(
                self.by_item, self.own, self.users, scale, self.reg, self.bias_scale, self.steps,
                self.feature_part, prior, sums,
            )  # fmt: skip
            penalty = self.reg * self.feature_weight
            als.solve_features(self.by_item, self.features, self.users, self.matrix, penalty, FEATURE_STEPS, sums)
            self._combine()
        mse = float(squared) / max(1, self.n_ratings)
        return mse + self.reg * self.mean_penalty(), math.sqrt(mse)

    def mean_penalty(self) -> float:
        """The loop's penalty term averaged over the ratings: each rating pays for the rows it touches."""
        total = 0.0
        for side, counts in ((self.users, self.by_user.counts), (self.own, self.by_item.counts)):
            row = side.factors[:-1].square().sum(1) + self.bias_scale * side.bias[:-1].square()
            total += float((counts * row).sum())
        if self.matrix is not None:
            total += float((self.feature_weight * self.features.square()).sum())
        return total / max(1, self.n_ratings)

    def rmse(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> float:
        """RMSE of the predictions clipped to the rating scale, as ``sgd.evaluate_rmse`` measures it."""
        if users.shape[0] == 0:
            return math.nan
        predicted = als.predict(self.users, self.items, self.mean, users, items)
        predicted = predicted.clamp(self.module.low, self.module.high)
        return math.sqrt(float((predicted - ratings).square().mean()))

    def to_module(self) -> None:
        """Copy the learned rows into the module (its weights live on the CPU)."""
        with torch.no_grad():
            for side, factors, bias in (
                (self.users, self.module.user_factors, self.module.user_bias),
                (self.own, self.module.item_factors, self.module.item_bias),
            ):
                factors.weight.copy_(side.factors[:-1])
                bias.weight.copy_(side.bias[:-1, None])
            if self.matrix is not None:
                self.module.feature_factors.weight.copy_(self.features[:, :-1])
                self.module.feature_bias.weight.copy_(self.features[:, -1:])


class AlsSolver(Solver):
    """One ALS sweep per epoch over an ``AlsState``; no optimiser state, a relative ``MIN_IMPROVEMENT``."""

    label = "training (als)"
    min_improvement = MIN_IMPROVEMENT
    mean_dtype = np.float64

    state: AlsState
    """Built by ``start``, from the module's starting (or resumed) weights."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.optimizer = NoOptimizer()

    def start(self) -> None:
        config = self.setup.config
        self.state = AlsState(self.setup.module, self.setup.train, self.setup.device, config.reg, config.als_cg_steps)
        self.valid = rating_tensors(self.setup.valid, self.setup.device)

    @staticmethod
    def module_config(config: TrainConfig) -> TrainConfig:
        """ALS trains the hybrid without the SVD++ term (``use_implicit``)."""
        return config.replace(use_implicit=False) if config.model == "hybrid" else config

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        if isinstance(self.setup.module, HybridMF):
            self.state.reg = path_reg(self.setup.config.reg, self.validation_history)
        loss, rmse = self.state.sweep()
        self.state.to_module()
        return loss, rmse

    def validation_rmse(self) -> float:
        return self.state.rmse(*self.valid)

    def regularization(self) -> float:
        return self.state.reg

    def divergence(self, epoch: int, loss: float) -> str:
        return f"ALS diverged at epoch {epoch} (loss {loss}); raise --reg (now {self.setup.config.reg})."


def _padded(factors: torch.Tensor, bias: torch.Tensor, device: torch.device) -> als.Factors:
    """A module's rows on ``device`` with the all-zero padding row appended."""
    dim = factors.shape[1]
    table = torch.zeros(factors.shape[0] + 1, dim, device=device, dtype=torch.float32)
    table[:-1] = factors.detach()
    column = torch.zeros(factors.shape[0] + 1, device=device, dtype=torch.float32)
    column[:-1] = bias.detach()[:, 0]
    return als.Factors(table, column)
