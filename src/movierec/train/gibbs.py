"""``--solver gibbs``: Bayesian biased MF and hybrid by block Gibbs sampling, on batched torch ops (CPU or CUDA).

The model is ALS's (``als_solver.py``) made Bayesian: ``r = mean + b_u + b_i + p_u.q_i + noise``, noise
``N(0, 1/alpha)``, each block's rows (users, movies' own rows, each feature group of the hybrid: genres, years,
tags) from a prior ``N(mu, diag(1/lambda))`` with a mean and precision per column (factor dimension or bias) that
are themselves drawn, as in Rendle's libFM MCMC and myFM. ``reg`` plays no part: the priors are learned.

One epoch is one sweep: every user's ``[p_u, b_u]`` drawn from its Gaussian conditional (``als.row_systems`` gives its
normal equations, block by block; ``merged_systems`` joins the blocks so that ``gibbs_draws.draw_rows`` draws a
whole side at once), then every movie's own row, then (hybrid) the feature rows (``gibbs_features``), then (hybrid
with ``use_implicit``) myFM's flipped implicit block (``gibbs_implicit``: each movie's row adds a scaled sum of rows of
the users who rated it, which the movie's own draw sees as a fixed part beside its features), then (with
``use_time``) the time effects (``gibbs_time``: a movie bias per time bin and a drifting user bias, which the row draws
see as a fixed part of each rating), then the noise precision from its conjugate posterior. Under ``--solver gibbs``
``use_implicit`` means that flipped block, not the SVD++ term (which the module is built without, as under ALS; drawn
by the chain it did not pay: see ``gibbs_implicit``).

Each block's hyperparameters are drawn first, at the start of the sweep, from the rows as they stand (myFM's order),
so a fresh chain starts cold: its first priors come from the initial rows (factors of ``init_std``; zero biases,
feature, flipped and time rows) and are tight, and they loosen as the rows grow. Started from unit precisions instead
(rows first, the order before), the chain spent its sweeps where movie rows are loose (precision 2-3, against 15-60
from the cold start) and users' tight, and predicted worse: on ``benchmarks/bayes.py --validation`` (hybrid, dim 16,
250 sweeps, split seeds 0 and 1) 0.8175 and 0.7995 against 0.8086 and 0.7993 cold; after 600 sweeps that warm chain's
average had only come down to 0.8158 on split seed 0. Other starts (``registry.GIBBS_DEFAULTS`` has the chosen
length): unit precisions raised to 100, 0.8163 and 0.7971 (250 sweeps); factor columns at ``1/init_std^2`` and the
rest at 1000, 0.8133 and 0.7960 (150 sweeps, against 0.8083 and 0.7977 cold). Tried and dropped on split seed 0
(warm start, 250 sweeps, 0.8175): Adler's over-relaxation of the row draws (``x' = m + a (x - m) + sqrt(1 - a^2)
(draw - m)`` with ``a = -0.5``, which keeps every conditional) 0.8187; two chains of 125 sweeps averaged 0.8196 (and
0.8014 on split seed 1); the rows' conditional means averaged instead of the rows (Rao-Blackwellised) 0.8171.

On the CPU a sweep on a small data set runs on one torch thread (``RATINGS_PER_THREAD``).

On large data with wide rows (``gibbs_coordinate.draws_by_coordinates``) a side whose draw collects no Gram matrices
(users, and biased MF's movies) is drawn matrix-free instead, one coordinate at a time with a cached residual
(``gibbs_coordinate``; perturb-and-solve CG, ``gibbs_cg``, is the alternative the size rules can choose); the movies'
draw then leaves the training residuals, whose sum of squares the noise precision takes without predicting every
rating again.

Sweeps after ``gibbs_burn_in``, every ``gibbs_thin``-th, are kept: predictions average them (``gibbs_samples``),
and the history's validation RMSE is that of the running average (of the current sample during the burn-in). A
chain runs all its sweeps (patience does not cut it short: the average keeps improving as samples accrue, and the
stored samples are spaced over the planned ones); the model exported summarises the kept samples
(``gibbs_samples``: posterior means by default), never the best sweep's sample.

The checkpoint holds the current sample (the module's weights) and, as the solver's "optimizer" state, the
hyperparameters, the flipped block's rows, the running sums and stored samples, and both random generators' states, so
``--resume`` continues the very chain an unbroken run draws.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.errors import MovieRecError
from movierec.models.factors import FactorParams
from movierec.models.features import build_item_features
from movierec.train import als
from movierec.train.als_solver import AlsSolver, AlsState
from movierec.train.gibbs_cg import RowConditional, draw_side_cg, draws_by_cg
from movierec.train.gibbs_coordinate import draw_side_coordinates, draws_by_coordinates
from movierec.train.gibbs_draws import draw_noise_precision, draw_normal_gamma, draw_rows
from movierec.train.gibbs_features import colour_classes, draw_features
from movierec.train.gibbs_implicit import FLIPPED, FlippedBlock
from movierec.train.gibbs_samples import KeptSamples
from movierec.train.gibbs_time import TIME_BLOCKS, TimeEffects, row_shift
from movierec.train.solver import Setup, Solver, rating_tensors

DRAWN_ENTRIES = 1 << 23
"""Gram matrix entries drawn at once (32 MB in float32): a side's blocks are joined up to this many rows' worth,
so that a draw's fixed costs (``gibbs_cholesky``) are paid once per join, not once per block."""
RATINGS_PER_THREAD = 1_000_000
"""On the CPU a sweep runs one torch thread per this many training ratings (``sweep_threads``). A sweep is thousands
of small operations; on a small data set a second thread has too little to share and stalls the rest whenever the
cores are busy: ml-latest-small (dim 20, 2 cores, other jobs running) 0.73 s a sweep at 2 threads, 0.09-0.14 s at
one. On an idle machine a second thread does help a little: the hybrid's whole fit at the defaults (dim 32, split
seed 0) took 23.8 s wall and 25.8 s CPU at one thread, 20.4 s wall and 39.8 s CPU at two. The million itself is a
guess, not measured on larger data."""
FEATURE_GROUPS = ("genre", "year", "tag")
"""The hybrid's feature blocks, each with its own prior (by the prefix of the feature's name)."""


class Chain:
    """What the checkpoint keeps of a chain beside the current sample: hyperparameters, kept samples, generators.

    It stands in for the optimiser (``checkpoint.OptimizerState``): ``state_dict`` and ``load_state_dict``."""

    def __init__(self, setup: Setup, blocks: list[str], planned: int, timed: bool = False) -> None:
        config, module = setup.config, setup.module
        k = config.dim + 1
        self.hyper = {name: np.stack([np.zeros(k), np.ones(k)]) for name in blocks}
        """Per block, ``(2, dim + 1)``: each column's prior mean and precision (factors, then the bias)."""
        self.time = TimeEffects(setup.train, setup.valid, setup.device) if timed else None
        """The time blocks' values and sums (``gibbs_time``; scalars, so width 1); None without time effects."""
        if self.time is not None:
            self.hyper.update({name: np.stack([np.zeros(1), np.ones(1)]) for name in TIME_BLOCKS})
        self.noise_precision = 1.0
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator(setup.device).manual_seed(config.seed)
        n_users, n_items = module.user_factors.num_embeddings, module.item_factors.num_embeddings
        self.flipped = torch.zeros(n_users if FLIPPED in blocks else 0, k, device=setup.device)
        """The hybrid's flipped rows ``[z_v, d_v]`` (``gibbs_implicit``); no rows without the block."""
        self.samples = KeptSamples(n_users, n_items, config.dim, len(setup.valid), planned, config.gibbs_stored)
        self.samples.to(setup.device)

    def state_dict(self) -> dict[str, Any]:
        tensors, values = self.samples.state()
        tensors = {f"samples.{name}": value for name, value in tensors.items()}
        tensors.update({f"hyper.{name}": torch.from_numpy(value) for name, value in self.hyper.items()})
        tensors["generator"] = self.generator.get_state()
        tensors["flipped"] = self.flipped
        tensors.update(self.time.state() if self.time is not None else {})
        group = {"noise_precision": self.noise_precision, "rng": self.rng.bit_generator.state, "samples": values}
        return {"state": {0: tensors}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        tensors, (group,) = state_dict["state"][0], state_dict["param_groups"]
        self.samples.restore({k[8:]: v for k, v in tensors.items() if k.startswith("samples.")}, group["samples"])
        self.hyper = {  # a block the checkpoint lacks (the flipped block, new to a resumed chain) starts afresh
            name: tensors[f"hyper.{name}"].numpy().astype(np.float64) if f"hyper.{name}" in tensors else fresh
            for name, fresh in self.hyper.items()
        }
        self.generator.set_state(tensors["generator"])
        if "flipped" in tensors:  # checkpoints before the flipped block have none
            self.flipped.copy_(tensors["flipped"])
        if self.time is not None:
            self.time.restore(tensors)
        self.noise_precision = float(group["noise_precision"])
        self.rng.bit_generator.state = group["rng"]


class GibbsState(AlsState):
    """ALS's grouped ratings and rows, drawn instead of solved (see the module docstring)."""

    _collected: tuple[torch.Tensor, torch.Tensor] | None = None
    """``collected``'s tables, once allocated."""
    flipped: FlippedBlock | None = None
    """The hybrid's flipped block, None without it."""
    drawn_squares: float | None = None
    """The training residuals' sum of squares that the last side's draw left (coordinate-wise draws have them at
    hand: ``gibbs_coordinate``), None when it had none."""

    def __init__(self, setup: Setup, chain: Chain, groups: np.ndarray | None) -> None:
        super().__init__(setup.module, setup.train, setup.device, setup.config.reg)
        self.chain = chain
        if chain.flipped.shape[0]:
            self.flipped = FlippedBlock(setup.train, self.by_user.n_rows, self.by_item.n_rows, chain.flipped)
        self.train_ratings = rating_tensors(setup.train, setup.device)
        with torch.no_grad():  # rows without ratings take no part: zero, as the export leaves them
            for side, counts in ((self.users, self.by_user.counts), (self.own, self.by_item.counts)):
                rated = torch.cat([counts > 0, counts.new_zeros(1, dtype=torch.bool)])
                side.factors.mul_(rated[:, None])
                side.bias.mul_(rated)
        if self.matrix is not None:
            assert groups is not None
            sparse = setup.module.features
            self.classes = colour_classes(
                sparse.indptr.cpu().numpy(), sparse.indices.cpu().numpy(), sparse.values.cpu().numpy(),
                self.matrix.n_features, setup.device,
            )  # fmt: skip
            self.groups = torch.from_numpy(groups).to(setup.device)
        self._combine()

    def _combine(self) -> None:
        """The whole movie rows: the own rows, plus (hybrid) the feature part and the flipped part."""
        if self.matrix is not None:
            super()._combine()
        if self.flipped is not None:
            flipped = self.flipped.part
            base = self.items if self.matrix is not None else self.own
            self.items = als.Factors(base.factors + flipped.factors, base.bias + flipped.bias)

    def movie_offset(self) -> als.Factors | None:
        """The fixed part of each movie's whole row beside its own row: features and flipped part (None: none)."""
        features = self.feature_part if self.matrix is not None else None
        flipped = self.flipped.part if self.flipped is not None else None
        parts = [part for part in (features, flipped) if part is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        return als.Factors(parts[0].factors + parts[1].factors, parts[0].bias + parts[1].bias)

    def block_prior(self, block: str) -> tuple[torch.Tensor, torch.Tensor]:
        mean, precision = (
            torch.tensor(part, dtype=torch.float32, device=self.device) for part in self.chain.hyper[block]
        )
        return mean, precision

    def draw_side(
        self,
        side: als.Side,
        own: als.Factors,
        other: als.Factors,
        block: str,
        offset: als.Factors | None,
        shift: torch.Tensor | None = None,
        fixed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Draw every row of ``own`` with ratings, each row's prior mean moved by its row of ``shift`` and its
        ``A'y`` less its row of ``fixed`` (the time terms' part, ``gibbs_time.row_shift``) when given; returns the
        movies' ``(G_i, g_i)`` when ``offset`` is given (``collected``'s tables, overwritten by the next call)."""
        mean, precision = self.block_prior(block)
        k = own.factors.shape[1] + 1
        self.drawn_squares = None
        conditional = RowConditional(self.chain.noise_precision, (mean, precision), self.chain.generator, shift, fixed)
        if offset is None and draws_by_coordinates(side, k):
            self.drawn_squares = draw_side_coordinates(side, own, other, conditional)
            return None, None
        if offset is None and draws_by_cg(side, k):
            draw_side_cg(side, own, other, conditional)
            return None, None
        grams, gradient = self.collected(side.n_rows, k) if offset is not None else (None, None)
        for rows, parts, rhs in merged_systems(als.row_systems(side, other, offset), DRAWN_ENTRIES // (k * k)):
            row_mean = mean if shift is None else mean + shift.index_select(0, rows)
            rhs = rhs if fixed is None else rhs - fixed.index_select(0, rows)
            joined = parts[0] if len(parts) == 1 or grams is None else torch.cat(parts)  # collected: one join
            drawn = draw_rows(
                parts if grams is None else joined, rhs, self.chain.noise_precision, row_mean, precision,
                self.chain.generator,
            )  # fmt: skip
            own.factors.index_copy_(0, rows, drawn[:, :-1])
            own.bias.index_copy_(0, rows, drawn[:, -1])
            if grams is not None and gradient is not None:
                grams.index_copy_(0, rows, joined)
                gradient.index_copy_(0, rows, rhs - torch.bmm(joined, drawn.unsqueeze(-1)).squeeze(-1))
        return grams, gradient

    def collected(self, n_rows: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The movies' ``(G_i, g_i)`` tables, ``(n_rows + 1, k, k)`` and ``(n_rows + 1, k)``, allocated once: each
        draw overwrites the rows with ratings, and the others (the padding row last) stay zero."""
        if self._collected is None or self._collected[1].shape != (n_rows + 1, k):
            zeros = torch.zeros(n_rows + 1, k, k, device=self.device), torch.zeros(n_rows + 1, k, device=self.device)
            self._collected = zeros
        return self._collected

    @torch.no_grad()
    def sweep(self) -> tuple[float, float]:
        """Draw the hyperparameters, then users, movies, features, the flipped block and the noise precision; return
        the sample's (train MSE, train RMSE)."""
        chain = self.chain
        for block, rows in self.block_rows():  # first, as myFM does: a fresh chain starts cold (see the module doc)
            chain.hyper[block] = draw_normal_gamma(rows, chain.rng)
        users, items, ratings = self.train_ratings
        terms = chain.time.terms(chain.time.train) if chain.time is not None else None
        fixed = row_shift(users, self.items, items, terms, self.by_user.n_rows) if terms is not None else None
        self.draw_side(self.by_user, self.users, self.items, "user", None, None, fixed)
        fixed = row_shift(items, self.users, users, terms, self.by_item.n_rows) if terms is not None else None
        offset = self.movie_offset()
        if offset is None:
            self.draw_side(self.by_item, self.items, self.users, "item", None, None, fixed)
        else:
            grams, gradient = self.draw_side(self.by_item, self.own, self.users, "item", offset, None, fixed)
            if self.matrix is not None:
                assert grams is not None and gradient is not None
                prior, k = self.feature_prior(), grams.shape[1]
                feature_grams = self.matrix.transposed_times(grams.view(-1, k * k), squared=True).view(-1, k, k)
                draw_features(
                    self.features, self.classes, grams, feature_grams, gradient, chain.noise_precision, prior,
                    chain.generator, stale=True,
                )  # fmt: skip
            self._combine()
        if self.flipped is not None:
            residual = ratings - als.predict(self.users, self.items, self.mean, users, items)
            residual = residual if terms is None else residual - terms
            prior = self.block_prior(FLIPPED)
            self.flipped.draw(self.users, residual, chain.noise_precision, prior, chain.generator)
            self._combine()  # rebuilt, not moved by the change: a resumed chain rebuilds them alike
        if self.drawn_squares is not None and self.flipped is None and chain.time is None:
            squared = self.drawn_squares  # the movies' draw, the last, left every training residual
        else:
            residual = ratings - als.predict(self.users, self.items, self.mean, users, items)
            if chain.time is not None and terms is not None:
                priors = {name: self.block_prior(name) for name in TIME_BLOCKS}
                residual = chain.time.draw(residual - terms, chain.noise_precision, priors, chain.generator)
            squared = float(residual.square().sum())
        chain.noise_precision = draw_noise_precision(squared, self.n_ratings, chain.rng)
        mse = squared / max(1, self.n_ratings)
        return mse, math.sqrt(mse)

    def feature_prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each feature row's prior mean and precision, ``(n_features, dim + 1)`` each, from its group's."""
        per_group = [self.chain.hyper[f"feature:{group}"] for group in FEATURE_GROUPS]
        table = torch.tensor(np.stack(per_group), dtype=torch.float32, device=self.device)  # (groups, 2, k)
        chosen = table.index_select(0, self.groups)
        return chosen[:, 0], chosen[:, 1]

    def block_rows(self) -> list[tuple[str, torch.Tensor]]:
        """Each block's rows ``[factors, bias]`` that took part in the sweep: users and movies' own rows with ratings,
        every feature row, the flipped block's rows of users with ratings."""
        out = []
        for block, side, counts in (("user", self.users, self.by_user.counts), ("item", self.own, self.by_item.counts)):
            rows = torch.cat([side.factors[:-1], side.bias[:-1, None]], 1)
            out.append((block, rows[counts > 0]))
        if self.flipped is not None:
            out.append((FLIPPED, self.flipped.rows()))
        if self.matrix is not None:
            out += [(f"feature:{group}", self.features[self.groups == g]) for g, group in enumerate(FEATURE_GROUPS)]
        if self.chain.time is not None:
            out += self.chain.time.rows()
        return out


class GibbsSolver(Solver):
    """One Gibbs sweep per epoch (see the module docstring); every sweep runs, the export is the average."""

    label = "training (gibbs)"
    mean_dtype = np.float64
    stops_early = False
    module_config = staticmethod(AlsSolver.module_config)  # no SVD++ term: the chain's implicit block is its own

    state: GibbsState
    """Built by ``start``, from the module's current (fresh or resumed) sample."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        config = setup.config
        self.planned = (config.epochs - config.gibbs_burn_in) // config.gibbs_thin
        if self.planned < 1:
            raise MovieRecError(
                f"--gibbs-burn-in {config.gibbs_burn_in} with --gibbs-thin {config.gibbs_thin} keeps no sample of "
                f"--epochs {config.epochs}; use more epochs than the burn-in plus the thinning."
            )
        self.groups = feature_groups(setup)
        blocks = ["user", "item"]
        if self.groups is not None:
            blocks += [f"feature:{group}" for group in FEATURE_GROUPS]
        if config.model == "hybrid" and config.use_implicit:
            blocks.append(FLIPPED)
        self.optimizer = self.chain = Chain(setup, blocks, self.planned, uses_time(config))

    def start(self) -> None:
        self.state = GibbsState(self.setup, self.chain, self.groups)
        self.valid = rating_tensors(self.setup.valid, self.setup.device)

    def kept(self, epoch: int) -> bool:
        """Whether the sample of sweep ``epoch`` (1-based) joins the average."""
        burn_in, thin = self.setup.config.gibbs_burn_in, self.setup.config.gibbs_thin
        return epoch > burn_in and (epoch - burn_in) % thin == 0

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        with sweep_threads(self.state.n_ratings, self.setup.device):
            loss, rmse = self.state.sweep()
        self.state.to_module()
        self.current_valid = self._valid_predictions()
        if self.kept(epoch):
            self.chain.samples.add(self.state.users, self.state.items, self.current_valid.to(torch.float64))
            if self.chain.time is not None:
                self.chain.time.add()
        return loss, rmse

    def regularization(self) -> float:
        return 0.0  # the sampler draws its priors' precisions: no ridge

    def validation_rmse(self) -> float:
        users, _, ratings = self.valid
        if users.shape[0] == 0:
            return math.nan
        predicted = self.chain.samples.valid_mean() if self.chain.samples.kept else self.current_valid
        predicted = predicted.clamp(self.setup.module.low, self.setup.module.high)
        return math.sqrt(float((predicted - ratings).square().mean()))

    def _valid_predictions(self) -> torch.Tensor:
        users, items, _ = self.valid
        predicted = als.predict(self.state.users, self.state.items, self.state.mean, users, items)
        time = self.chain.time
        return predicted if time is None else predicted + time.terms(time.valid)

    def export(self, best: dict[str, torch.Tensor] | None) -> FactorParams:
        """The kept samples as the run folder stores them (``gibbs_samples``), not the best sweep's sample."""
        params = super().export(None)  # the current sample: its movies known, scale and link
        params = replace(params, **self.chain.samples.tables())
        time = self.chain.time
        return params if time is None else time.export(params, self.chain.samples.kept)

    def divergence(self, epoch: int, loss: float) -> str:
        return f"The Gibbs sampler diverged at epoch {epoch} (loss {loss}); lower --dim (now {self.setup.config.dim})."


@contextmanager
def sweep_threads(n_ratings: int, device: torch.device) -> Iterator[None]:
    """On the CPU, torch's intra-op threads cut to one per ``RATINGS_PER_THREAD`` ratings (at least one, at most
    torch's setting) while the ``with`` block runs, then restored."""
    threads = torch.get_num_threads()
    wanted = max(1, min(threads, n_ratings // RATINGS_PER_THREAD))
    if device.type != "cpu" or wanted == threads:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def merged_systems(
    systems: Iterable[als.RowSystem], most_rows: int
) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]]:
    """``(rows, grams, rhs)`` of consecutive blocks' normal equations joined (``grams`` as the blocks' parts), up to
    ``most_rows`` rows at a time (a single longer block alone): one draw per join, not per block."""
    parts: list[als.RowSystem] = []
    for system in systems:
        if parts and sum(len(part.rhs) for part in parts) + len(system.rhs) > most_rows:
            yield _joined(parts)
            parts = []
        parts.append(system)
    if parts:
        yield _joined(parts)


def _joined(parts: list[als.RowSystem]) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    rows, rhs = (torch.cat(tensors) for tensors in zip(*((part.block.rows, part.rhs) for part in parts), strict=True))
    return rows, [part.gram for part in parts], rhs


def uses_time(config: TrainConfig) -> bool:
    """Whether the chain draws the time effects (``gibbs_time``)."""
    return config.use_time


def feature_groups(setup: Setup) -> np.ndarray | None:
    """The hybrid's feature group (index into ``FEATURE_GROUPS``) of each feature row; None without features."""
    module, config = setup.module, setup.config
    if getattr(module, "feature_factors", None) is None:
        return None
    assert setup.data is not None, "the hybrid's Gibbs sampler needs the dataset for its feature groups"
    n_items = module.item_factors.num_embeddings
    names = build_item_features(
        setup.data, n_items, genres=config.use_genres, years=config.use_genres, tags=config.use_tags
    ).names
    assert len(names) == module.feature_factors.num_embeddings, "the hybrid's features were built another way"
    return np.array([FEATURE_GROUPS.index(name.split(":", 1)[0]) for name in names], np.int64)
