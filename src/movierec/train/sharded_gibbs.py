"""``--shards DIR --solver gibbs``: the Gibbs sampler (``gibbs.py``) across ranks, on the sharded ALS machinery.

``ShardedGibbs`` is ``ShardedAls`` (the same ownership, ratings grouped both ways, row fetches, feature matrix and
gather) with each row drawn instead of solved, as ``GibbsSolver`` is ``AlsSolver``. A sweep:

0. shared: each block's Normal-Gamma hyperparameters from all-reduced sufficient statistics of the rows as they
   stand (count, per-column sums and sums of squares: ``draw_normal_gamma_from``), on NumPy's generator seeded
   alike on every rank; first, as in ``gibbs.py``, so a fresh chain starts cold;
1. local: every user of this rank drawn from its Gaussian conditional given the movie rows it rated (fetched as
   ALS fetches them), with the single-process sampler's own functions (``als.row_systems``, ``draw_rows``,
   through ``GibbsState.draw_side``); then the user rows that rated its movies are fetched and its movies drawn;
2. shared, the hybrid: the feature rows, colour by colour as ``gibbs_features`` draws them, each colour's
   right-hand sides and each feature's Gram matrix summed over the ranks (all-reduce), so that every rank draws
   the same rows from the same generator;
3. shared: the noise precision from the all-reduced squared residual of every training rating.

Row draws use a generator seeded by ``(seed, rank)``, the shared draws generators seeded by ``seed`` (and the
sweep, for the feature rows), so every rank keeps the same hyperparameters and feature rows without sending them.
A chain at world size 2 is not the chain at world size 1 (each rank's row noise is its own stream), but samples
the same posterior. Each rank keeps the running sums of its own rows' kept samples (``KeptSamples``); validation
follows the average through all-reduced squared errors, and ``gather`` brings the averaged tables to rank 0,
which exports them as ``GibbsSolver.export`` does. ``ChainCheckpoints`` keeps each rank's chain (hyperparameters,
generators, running sums) beside its rows, so ``--resume`` continues the very chain.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.errors import ArtifactError, MovieRecError
from movierec.models.factors import FactorParams
from movierec.train import als, checkpoint
from movierec.train.distributed import Context
from movierec.train.gibbs import FEATURE_GROUPS, Chain, GibbsState, feature_groups
from movierec.train.gibbs_draws import draw_noise_precision, draw_normal_gamma_given, draw_rows
from movierec.train.gibbs_features import colour_features
from movierec.train.shard_checkpoint import ShardCheckpoints, rank_file
from movierec.train.sharded_als import ShardedAls, skipped_normal_init
from movierec.train.sharded_features import SummedFeatureMatrix
from movierec.train.solver import Setup


class RankDraws(GibbsState):
    """The single-process sampler's row draws and priors (``draw_side``, ``block_prior``, ``feature_prior``) on
    this rank's rows: a ``GibbsState`` that groups no ratings of its own (the solver hands it its sides)."""

    def __init__(self, chain: Chain, groups: np.ndarray | None, device: torch.device) -> None:
        # not GibbsState.__init__: that groups the ratings of one process, and the draws need only these
        self.chain, self.device = chain, device
        if groups is not None:
            self.groups = torch.from_numpy(groups).to(device)


class ShardedGibbs(ShardedAls):
    """One sharded Gibbs sweep per epoch (see the module docstring); every sweep runs, the export is the average."""

    label = "training (sharded gibbs)"
    stops_early = False

    def __init__(self, setup: Setup, context: Context, template: Any, build: Any) -> None:
        super().__init__(setup, context, template, build)
        config = setup.config
        self.context = context
        groups = feature_groups(replace(setup, module=template)) if self.with_features else None
        blocks = ["user", "item", *(f"feature:{group}" for group in FEATURE_GROUPS if groups is not None)]
        with skipped_normal_init():
            own = SimpleNamespace(  # the chain's running sums are sized to this rank's own rows
                user_factors=nn.Embedding(self.rows.user_factors.shape[0] - 1, 1, device="meta"),
                item_factors=nn.Embedding(self.rows.item_factors.shape[0] - 1, 1, device="meta"),
            )
        self.optimizer = self.chain = Chain(replace(setup, module=own), blocks, planned_samples(config))
        self.chain.generator.manual_seed(_seed(config.seed, 1, context.rank))  # row draws: (seed, rank)
        self.draws = RankDraws(self.chain, groups, setup.device)

    def prepare_rows(self) -> None:
        """Rows without ratings take no part: zero, as the export leaves them (``GibbsState`` does the same)."""
        for side, counts in ((self.rows.users, self.by_user.counts), (self.rows.items, self.by_item.counts)):
            rated = torch.cat([counts > 0, counts.new_zeros(1, dtype=torch.bool)])
            side.factors.mul_(rated[:, None])
            side.bias.mul_(rated)

    def start(self) -> None:
        super().start()
        if self.with_features:
            sparse = self.template.features  # coloured over every movie: every rank draws the same colours
            colours = colour_features(sparse.indptr.numpy(), sparse.indices.numpy(), sparse.n_columns)
            self.colours = [
                torch.from_numpy(np.flatnonzero(colours == colour)).to(self.setup.device)
                for colour in range(int(colours.max(initial=-1)) + 1)
            ]

    def keep_fit(self, train: Ratings) -> None:
        self.fit = self.local_ratings(train)

    def checkpointed(self, checkpoints: ShardCheckpoints) -> ShardCheckpoints:
        return ChainCheckpoints(checkpoints, self.chain, self.context)

    def kept(self, epoch: int) -> bool:
        """Whether the sample of sweep ``epoch`` (1-based) joins the average."""
        burn_in, thin = self.setup.config.gibbs_burn_in, self.setup.config.gibbs_thin
        return epoch > burn_in and (epoch - burn_in) % thin == 0

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        chain, users, items = self.chain, self.rows.users, self.rows.items
        with torch.no_grad():
            for block, stats in self._block_stats():  # first, as ``GibbsState.sweep``: a fresh chain starts cold
                chain.hyper[block] = draw_normal_gamma_from(stats, chain.rng)
            self.draws.draw_side(self.by_user, users, self.movies, "user", None)
            needed_users = self._fetch(self.user_rows, users)
            if not self.with_features:
                self.draws.draw_side(self.by_item, items, needed_users, "item", None)
            else:
                grams, gradient = self.draws.draw_side(self.by_item, items, needed_users, "item", self.feature_part)
                assert grams is not None and gradient is not None
                self._draw_features(grams, gradient, epoch)
            self.movies = self._fetch(self.movie_rows, self._whole_items())
            fit_users, fit_items, ratings = self.fit
            residual = ratings - als.predict(users, self.movies, self.mean, fit_users, fit_items)
            squared = float(self.exchange.all_sum(residual.double().square().sum().reshape(1)).cpu()[0])
            chain.noise_precision = draw_noise_precision(squared, int(self.n_ratings), chain.rng)
            valid_users, valid_items, _ = self.valid
            self.current_valid = als.predict(users, self.movies, self.mean, valid_users, valid_items)
            if self.kept(epoch):
                chain.samples.add(users, self.whole, self.current_valid.to(torch.float64))
        mse = squared / max(1.0, self.n_ratings)
        return mse, float(np.sqrt(mse))

    def regularization(self) -> float:
        return 0.0  # the sampler draws its priors' precisions: no ridge

    def validation_rmse(self) -> float:
        samples = self.chain.samples
        return self.summed_rmse(samples.valid_mean() if samples.kept else self.current_valid)

    def gather(self, best: dict[str, torch.Tensor] | None) -> FactorParams | None:
        """The kept samples' tables (``gibbs_samples``: posterior means, or the stored samples side by side)
        gathered on rank 0 over the current sample's export (its movies known, scale and link), as
        ``GibbsSolver.export`` makes them; None on the other ranks. ``best`` plays no part: the export is the
        average, never one sweep's sample. Every rank must call it."""
        params = super().gather(None)
        tables, device = self.chain.samples.tables(), self.setup.device
        gathered = {}
        for side, n_rows in (("user", self.template.user_factors.num_embeddings),
                             ("item", self.template.item_factors.num_embeddings)):  # fmt: skip
            own = np.concatenate([tables[f"{side}_factors"], tables[f"{side}_bias"][:, None]], 1)
            gathered[side] = self.exchange.gather_rows(torch.from_numpy(own).to(device), n_rows)
        if params is None:
            return None
        out: dict[str, Any] = {}
        for side, table in gathered.items():
            assert table is not None
            whole = table.cpu().numpy()
            out[f"{side}_factors"], out[f"{side}_bias"] = whole[:, :-1].copy(), whole[:, -1].copy()
        return replace(params, **out)

    def divergence(self, epoch: int, loss: float) -> str:
        return f"The Gibbs sampler diverged at epoch {epoch} (loss {loss}); lower --dim (now {self.setup.config.dim})."

    def _draw_features(self, grams: torch.Tensor, gradient: torch.Tensor, epoch: int) -> None:
        """Every feature row drawn alike on every rank, from sums over every rank's movies (see the docstring)."""
        k = grams.shape[1]
        feature_grams = self.matrix.transposed_times(grams.view(-1, k * k), squared=True).view(-1, k, k)
        shared = torch.Generator(self.setup.device).manual_seed(_seed(self.setup.config.seed, 2, epoch))
        draw_summed_features(
            self.rows.feature_rows, self.colours, self.matrix, feature_grams, grams, gradient,
            self.draws.feature_prior(), self.chain.noise_precision, shared,
        )  # fmt: skip

    def _block_stats(self) -> list[tuple[str, np.ndarray]]:
        """Each block's sufficient statistics ``(3, dim + 1)`` (count, column sums, column sums of squares), over
        every rank: users' and movies' own rows with ratings all-reduced, the feature rows (the same on every rank)
        as they are."""
        own = []
        for rows, side in ((self.rows.users, self.by_user), (self.rows.items, self.by_item)):
            table = torch.cat([rows.factors[:-1], rows.bias[:-1, None]], 1)[side.counts > 0]
            own.append(column_stats(table))
        summed = self.exchange.all_sum(torch.stack(own)).cpu().numpy()
        stats = [("user", summed[0]), ("item", summed[1])]
        if self.with_features:
            table = self.rows.feature_rows
            for g, group in enumerate(FEATURE_GROUPS):
                stats.append((f"feature:{group}", column_stats(table[self.draws.groups == g]).cpu().numpy()))
        return stats


class ChainCheckpoints(ShardCheckpoints):
    """Shard checkpoints that keep each rank's chain beside its rows: ``rank-R.epoch-E.chain.safetensors``
    (``checkpoint.save``'s format, the chain as the "optimizer"), written before the rows' file, so the manifest
    (written once every rank has saved its rows) names only epochs whose chains are on disk; the rows' clean-up
    (the files ``rank-R.epoch-*``) removes old chain files with them."""

    def __init__(self, checkpoints: ShardCheckpoints, chain: Chain, context: Context) -> None:
        super().__init__(checkpoints.run_dir, context, checkpoints.resume)
        self.chain = chain

    def save(self, module: nn.Module, config: TrainConfig, state: checkpoint.TrainingState) -> None:
        chain_state = replace(state, best_state=None)
        checkpoint.save(self.folder, nn.Module(), self.chain, config, chain_state, chain_file(self.rank, state.epoch))
        super().save(module, config, state)

    def load(self, module: nn.Module, config: TrainConfig) -> checkpoint.TrainingState:
        state = super().load(module, config)
        problems: list[str | None] = [None] * self.world
        dist.all_gather_object(problems, self._load_chain(config, state.epoch))
        if any(problems):
            raise ArtifactError(next(problem for problem in problems if problem))
        return state

    def _load_chain(self, config: TrainConfig, epoch: int) -> str | None:
        """Restore this rank's chain of ``epoch``; None, or the sentence that says why it cannot be."""
        try:
            loaded = checkpoint.load(self.folder, nn.Module(), self.chain, config, chain_file(self.rank, epoch))
        except ArtifactError as error:
            return f"Rank {self.rank}: {error}"
        if loaded.epoch == epoch:
            return None
        return (
            f"The chain of rank {self.rank} for epoch {epoch} is missing from {self.folder}; drop --resume to train "
            "from the start."
        )


def chain_file(rank: int, epoch: int) -> str:
    """The name of a rank's chain checkpoint after ``epoch``, beside ``rank_file``'s."""
    return rank_file(rank, epoch).replace(".safetensors", ".chain.safetensors")


def planned_samples(config: TrainConfig) -> int:
    """The samples a chain of ``config`` keeps; refuses a chain that would keep none."""
    planned = (config.epochs - config.gibbs_burn_in) // config.gibbs_thin
    if planned < 1:
        raise MovieRecError(
            f"--gibbs-burn-in {config.gibbs_burn_in} with --gibbs-thin {config.gibbs_thin} keeps no sample of "
            f"--epochs {config.epochs}; use more epochs than the burn-in plus the thinning."
        )
    return planned


def column_stats(rows: torch.Tensor) -> torch.Tensor:
    """``(3, k)`` float64: the number of ``rows`` (``(n, k)``), their column sums and column sums of squares."""
    values = rows.to(torch.float64)
    count = torch.full((values.shape[1],), float(values.shape[0]), dtype=torch.float64, device=values.device)
    return torch.stack([count, values.sum(0), values.square().sum(0)])


def draw_normal_gamma_from(stats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``gibbs_draws.draw_normal_gamma`` from the rows' sufficient statistics ``(3, k)`` (``column_stats``,
    summed over the ranks) instead of the rows: ``(2, k)``, each column's mean and precision."""
    n, sums, squares = float(stats[0, 0]), stats[1], stats[2]
    means = sums / n if n else np.zeros_like(sums)
    spread = np.maximum(squares - n * np.square(means), 0.0)
    return draw_normal_gamma_given(n, means, spread, rng)


def draw_summed_features(
    table: torch.Tensor,
    colours: list[torch.Tensor],
    matrix: SummedFeatureMatrix,
    feature_gram: torch.Tensor,
    gram: torch.Tensor,
    gradient: torch.Tensor,
    prior: tuple[torch.Tensor, torch.Tensor],
    noise_precision: float,
    generator: torch.Generator,
) -> None:
    """The conditional draws of ``gibbs_features.draw_features``, colour by colour (``colours``: each colour's
    features), over every rank's movies: feature ``f``'s right-hand side ``sum_i w_if g_i + (sum_i w_if^2 G_i)
    theta_f`` is ``F'g`` summed over the ranks (``matrix``) plus its summed Gram ``feature_gram`` times its row, and
    after each colour every rank moves its own movies' ``g_i`` by ``-G_i F_i (drawn - current)``."""
    for members in colours:
        current = table.index_select(0, members)
        grams = feature_gram.index_select(0, members)
        rhs = matrix.transposed_times(gradient).index_select(0, members)
        rhs += torch.bmm(grams, current.unsqueeze(-1)).squeeze(-1)
        mean, precision = (part.index_select(0, members) for part in prior)
        drawn = draw_rows(grams, rhs, noise_precision, mean, precision, generator)
        table.index_copy_(0, members, drawn)
        change = matrix.times(torch.zeros_like(table).index_copy_(0, members, drawn - current))
        gradient -= torch.bmm(gram, change.unsqueeze(-1)).squeeze(-1)


def _seed(seed: int, purpose: int, index: int) -> int:
    """A generator seed from the run's ``seed``, a ``purpose`` (1: a rank's row draws, 2: a sweep's feature
    draws) and its ``index`` (the rank, the sweep)."""
    return int(np.random.SeedSequence(seed, spawn_key=(purpose, index)).generate_state(1, np.uint64)[0])
