"""ALS for biased-mf and the hybrid sharded across a process group, each rank holding only its share (``--shards``).

Rank ``r`` of ``W`` owns the users and the movies whose index is ``r`` modulo ``W`` (``shard_exchange``). It reads
only its users' ratings (the shard folder's parts), sends each rating once to its movie's owner at start-up (one
all-to-all), and so holds its users' ratings grouped by user and its movies' ratings grouped by movie: about
``2/W`` of the ratings. A sweep is the single-process one (``als_solver``), on the same row solves
(``als.solve_side``):

1. fetch the movie rows that this rank's users rated (``RowFetch``: all-to-all of exactly those rows), solve its
   users;
2. fetch the user rows that rated this rank's movies, solve its movies (the hybrid: their own rows, then the
   feature rows, ``sharded_features``);
3. fetch the movie rows again, fresh, for validation and the next sweep's user half (the hybrid: whole rows, own
   part plus feature part).

Each row's bias is solved with its vector, from its own ratings, so biases need no exchange; what is shared is
summed over the ranks (all-reduce): the global mean, the preconditioner's scale, the loss, the validation error
and (the hybrid) every product onto the feature rows, which every rank holds whole. Rows start from
``stable_normal`` of their global index and the validation ratings are a hash of the (user, movie) pair, so every
world size trains the same model, up to the order of float sums. World size 1 is this same code in a group of one
process.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from movierec.data.ratings import Ratings
from movierec.data.shard import stable_uniform
from movierec.models.factors import FactorParams
from movierec.models.hybrid import HybridMF
from movierec.train import als
from movierec.train.als_solver import CG_STEPS, FEATURE_STEPS, HYBRID_PRIOR, MIN_IMPROVEMENT, path_reg
from movierec.train.checkpoint import NoOptimizer
from movierec.train.distributed import Context
from movierec.train.freed_memory import give_back_freed_memory
from movierec.train.shard_checkpoint import ShardCheckpoints
from movierec.train.shard_exchange import Exchange, RowFetch
from movierec.train.sharded_features import SummedFeatureMatrix
from movierec.train.solver import Setup, Solver


class ShardRows(nn.Module):
    """This rank's own rows, each table with the all-zero padding row last: user ``u`` (``u % W == rank``) at
    ``u // W``, movies alike; with ``n_features``, the hybrid's feature rows ``[W_f, c_f]`` (all of them, zero at
    the start, as ``HybridMF`` starts them). The driver keeps the best epoch's state of it and each rank
    checkpoints its own."""

    user_factors: torch.Tensor
    user_bias: torch.Tensor
    item_factors: torch.Tensor
    item_bias: torch.Tensor
    feature_rows: torch.Tensor

    def __init__(
        self, n_users: int, n_items: int, n_features: int, dim: int, init_std: float, seed: int, context: Context
    ) -> None:
        super().__init__()
        for salt, (name, n_rows) in enumerate((("user", n_users), ("item", n_items))):
            rows = np.arange(context.rank, n_rows, context.world)
            factors = np.zeros((rows.size + 1, dim), np.float32)
            factors[:-1] = stable_normal(rows, dim, 2 * seed + salt) * init_std
            self.register_buffer(f"{name}_factors", torch.from_numpy(factors).to(context.device))
            self.register_buffer(f"{name}_bias", torch.zeros(rows.size + 1, device=context.device))
        self.register_buffer("feature_rows", torch.zeros(n_features, dim + 1, device=context.device))

    @property
    def users(self) -> als.Factors:
        return als.Factors(self.user_factors, self.user_bias)

    @property
    def items(self) -> als.Factors:
        return als.Factors(self.item_factors, self.item_bias)


class ShardedAls(Solver):
    """One sharded sweep per epoch (see the module docstring). ``setup.module`` is this rank's ``ShardRows``,
    ``setup.train`` and ``setup.valid`` its users' fit and validation ratings; ``build`` makes the registry's
    module (``BiasedMF``, or ``HybridMF`` without its SVD++ term) on the default device: ``template`` is one on the
    meta device (its settings and the hybrid's feature matrix, without the tables' memory), and rank 0 builds one
    on the CPU to export the gathered tables."""

    label = "training (sharded als)"
    min_improvement = MIN_IMPROVEMENT

    def __init__(self, setup: Setup, context: Context, template: Any, build: Callable[[], Any]) -> None:
        super().__init__(setup)
        self.optimizer = NoOptimizer()
        self.reg = setup.config.reg
        """The ridge of the latest epoch (the hybrid's on its path, ``als_solver.path_reg``)."""
        self.exchange = Exchange(context)
        self.rows: ShardRows = setup.module
        self.template, self.build = template, build
        self.bias_scale = float(self.template.bias_reg_scale)
        self.with_features = feature_count(template) > 0
        self.prior = HYBRID_PRIOR if isinstance(self.template, HybridMF) else (0.0, 0.0)

    def start(self) -> None:
        train, valid, device, world = self.setup.train, self.setup.valid, self.setup.device, self.exchange.world
        sums = torch.tensor([float(train.ratings.sum(dtype=np.float64)), float(len(train))], dtype=torch.float64)
        total, self.n_ratings = (float(x) for x in self.exchange.all_sum(sums.to(device)).cpu())
        self.mean = float(np.float32(total / max(1.0, self.n_ratings)))
        centred = train.ratings.astype(np.float32) - np.float32(self.mean)
        n_users, n_items = self.rows.user_factors.shape[0] - 1, self.rows.item_factors.shape[0] - 1
        self.movie_rows = RowFetch.plan(np.unique(np.concatenate([train.items, valid.items])), self.exchange)
        local = self.movie_rows.positions(train.items)
        self.by_user = als.build_side(train.users // world, local, centred, n_users, self.movie_rows.n_rows, device)
        users, items, values = self.exchange.scatter_by_owner(train.items % world, train.users, train.items, centred)
        del centred, local
        self.user_rows = RowFetch.plan(np.unique(users), self.exchange)
        local = self.user_rows.positions(users)
        self.by_item = als.build_side(items // world, local, values, n_items, self.user_rows.n_rows, device)
        del users, items, values, local
        self.trained = (self.by_item.counts > 0).to(torch.float32)
        if self.with_features:
            self._start_features()
        self.prepare_rows()
        self.movies = self._fetch(self.movie_rows, self._whole_items())
        self.valid = self.local_ratings(valid)
        self.keep_fit(train)
        self.setup = replace(self.setup, train=_none_of(train), valid=_none_of(valid))  # grouped: let them go
        del train, valid
        give_back_freed_memory()
        self.bytes_at_start = self.exchange.bytes_sent

    def keep_fit(self, train: Ratings) -> None:
        """Called by ``start`` with this rank's users' fit ratings, before it lets go of them (of ``setup.train``
        and ``setup.valid``: they are grouped both ways by then): a subclass may keep what it needs of them (the
        sharded sampler: as ``local_ratings``)."""
        return None

    def prepare_rows(self) -> None:
        """Called by ``start`` once the ratings are grouped, before the first fetch of the movie rows: a
        subclass may change the starting rows (the sharded sampler zeroes those without ratings)."""
        return None

    def local_ratings(self, ratings: Ratings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's users' ``ratings`` as (user's local position, position among the fetched movie rows,
        rating) tensors on the device."""
        device = self.setup.device
        return (
            torch.from_numpy((ratings.users // self.exchange.world).astype(np.int64)).to(device),
            torch.from_numpy(self.movie_rows.positions(ratings.items).astype(np.int64)).to(device),
            torch.from_numpy(ratings.ratings.astype(np.float32)).to(device),
        )

    def checkpointed(self, checkpoints: ShardCheckpoints) -> ShardCheckpoints:
        """The checkpoints that keep this solver's state: ``checkpoints`` themselves (ALS keeps only the rows)."""
        return checkpoints

    def _start_features(self) -> None:
        """The hybrid: the feature matrix's rows of this rank's movies, and each feature row's ridge weight
        ``feature_reg_scale * N_f`` (``N_f = sum_i n_i w_if`` over every rank's movies), as ``AlsState`` has them."""
        sparse = self.template.features
        self.matrix = SummedFeatureMatrix.own_rows(
            sparse.indptr.numpy(), sparse.indices.numpy(), sparse.values.numpy(), sparse.n_columns, self.exchange
        )
        counts = torch.cat([self.by_item.counts, self.by_item.counts.new_zeros(1)])[:, None]
        scales = torch.ones(self.rows.feature_rows.shape[1], device=self.setup.device)
        scales[-1] = self.bias_scale
        self.feature_weight = float(self.template.feature_reg_scale) * self.matrix.transposed_times(counts) * scales

    def _whole_items(self) -> als.Factors:
        """This rank's movie rows as the users see them, kept as ``self.whole``: the own rows (the hybrid: of movies
        with training ratings, plus the feature part, kept as ``self.feature_part``)."""
        self.whole = self.rows.items
        if self.with_features:
            spread = self.matrix.times(self.rows.feature_rows)
            self.feature_part = als.Factors(spread[:, :-1], spread[:, -1])
            keep = torch.cat([self.trained, self.trained.new_zeros(1)])
            own = self.whole
            self.whole = als.Factors(own.factors * keep[:, None] + spread[:, :-1], own.bias * keep + spread[:, -1])
        return self.whole

    def run_epoch(self, epoch: int) -> tuple[float, float]:
        reg, users, items, prior = self.setup.config.reg, self.rows.users, self.rows.items, self.prior
        if isinstance(self.template, HybridMF):
            reg = path_reg(reg, self.validation_history)
        self.reg = reg
        with torch.no_grad():
            scale = self._mean_square(self.whole, self.by_item)
            als.solve_side(self.by_user, users, self.movies, scale, reg, self.bias_scale, CG_STEPS, None, prior)
            needed_users = self._fetch(self.user_rows, users)
            scale = self._mean_square(users, self.by_user)
            if not self.with_features:
                squared = als.solve_side(
                    self.by_item, items, needed_users, scale, reg, self.bias_scale, CG_STEPS, None, prior
                )
            else:
                sums = als.RowSums.zeros(self.by_item.n_rows, users.factors.shape[1], self.setup.device)
                squared = als.solve_side(
                    self.by_item, items, needed_users, scale, reg, self.bias_scale, CG_STEPS,
                    self.feature_part, prior, sums,
                )  # fmt: skip
                table, ridge = self.rows.feature_rows, reg * self.feature_weight
                als.solve_features(self.by_item, table, needed_users, self.matrix, ridge, FEATURE_STEPS, sums)
            self.movies = self._fetch(self.movie_rows, self._whole_items())
            penalty = sum(
                (side.counts * (rows.factors[:-1].square().sum(1) + self.bias_scale * rows.bias[:-1].square())).sum()
                for rows, side in ((users, self.by_user), (items, self.by_item))
            )
            totals = self.exchange.all_sum(torch.stack([squared.double(), torch.as_tensor(penalty).double()]))
        squared_sum, penalty_sum = (float(x) for x in totals.cpu())
        if self.with_features:  # every rank holds the same feature rows: their penalty counts once
            penalty_sum += float((self.feature_weight * self.rows.feature_rows.square()).sum())
        mse = squared_sum / max(1.0, self.n_ratings)
        return mse + reg * penalty_sum / max(1.0, self.n_ratings), math.sqrt(mse)

    def regularization(self) -> float:
        return self.reg

    def validation_rmse(self) -> float:
        users, items, _ = self.valid
        return self.summed_rmse(als.predict(self.rows.users, self.movies, self.mean, users, items))

    def summed_rmse(self, predicted: torch.Tensor) -> float:
        """RMSE over every rank's validation ratings of ``predicted`` (this rank's, in ``self.valid``'s order),
        clipped to the rating scale."""
        ratings = self.valid[2]
        predicted = predicted.clamp(self.template.low, self.template.high)
        sums = torch.stack([(predicted - ratings).double().square().sum(), torch.tensor(float(len(ratings)))])
        squared, count = (float(x) for x in self.exchange.all_sum(sums.to(self.setup.device).double()).cpu())
        return math.sqrt(squared / count) if count else math.nan

    def divergence(self, epoch: int, loss: float) -> str:
        return f"ALS diverged at epoch {epoch} (loss {loss}); raise --reg (now {self.setup.config.reg})."

    def let_go_of_ratings(self) -> None:
        """Drop what the sweeps needed and ``gather`` does not: the ratings grouped both ways, the fetch plans, the
        fetched movie table and the validation ratings (the rows stay). Training is over after it."""
        del self.by_user, self.by_item, self.movie_rows, self.user_rows, self.movies, self.valid

    def gather(self, best: dict[str, torch.Tensor] | None) -> FactorParams | None:
        """Every rank's rows (the best epoch's, when given) gathered on rank 0 into the registry's module, built
        there (``build``), and exported; None on the other ranks. Every rank must call it. Each side's table is let
        go of once it is in the module, so rank 0 holds at most the module, one table and then the export."""
        if best is not None:
            self.rows.load_state_dict(best)
        users, items = self.rows.users, self.rows.items
        module = self.build() if self.exchange.rank == 0 else None
        user_table = self.exchange.gather_rows(
            torch.cat([users.factors[:-1], users.bias[:-1, None]], 1), self.template.user_factors.num_embeddings
        )
        if module is not None:
            _copy_rows(user_table, module.user_factors, module.user_bias)
        del user_table
        item_table = self.exchange.gather_rows(
            torch.cat([items.factors[:-1], items.bias[:-1, None], self.trained[:, None]], 1),
            self.template.item_factors.num_embeddings,
        )
        if module is None or item_table is None:
            return None
        _copy_rows(item_table, module.item_factors, module.item_bias)
        with torch.no_grad():
            if isinstance(module, HybridMF):  # the movies trained here, whatever ratings the module was built from
                module.item_trained.copy_(item_table[:, -1] > 0)
            if self.with_features:
                module.feature_factors.weight.copy_(self.rows.feature_rows[:, :-1])
                module.feature_bias.weight.copy_(self.rows.feature_rows[:, -1:])
        del item_table
        module.init_from_mean(self.mean)
        params: FactorParams = module.export()
        return params

    @property
    def bytes_per_epoch(self) -> float:
        """Bytes this rank sent to others per epoch so far, start-up left out."""
        return self.exchange.bytes_sent - self.bytes_at_start

    def _fetch(self, plan: RowFetch, own: als.Factors) -> als.Factors:
        """The rows ``plan`` fetches of ``own``: factors and biases each in one all-to-all (no joined copy)."""
        return als.Factors(plan.fetch(own.factors), plan.fetch(own.bias[:, None])[:, 0])

    def _mean_square(self, rows: als.Factors, side: als.Side) -> torch.Tensor:
        """``als.mean_square`` over every rank's rows of one side: each rank sums its own, weighted by ratings."""
        partial = (rows.factors[:-1].square() * side.counts[:, None]).sum(0)
        return self.exchange.all_sum(partial) / max(1.0, self.n_ratings)


def meta_template(build: Callable[[], Any]) -> Any:
    """``build()`` on the meta device: the module's settings and (the hybrid) feature matrix, without its tables'
    memory. Its random starts are skipped: a normal draw on the meta device imports ``torch._dynamo`` and sympy,
    75 MB on every rank, for numbers that do not exist."""
    with skipped_normal_init(), torch.device("meta"):
        return build()


@contextlib.contextmanager
def skipped_normal_init() -> Iterator[None]:
    """``torch.nn.init.normal_`` does nothing inside (for modules built on the meta device, see ``meta_template``)."""
    normal = nn.init.normal_
    nn.init.normal_ = lambda tensor, *args, **kwargs: tensor
    try:
        yield
    finally:
        nn.init.normal_ = normal


def _none_of(ratings: Ratings) -> Ratings:
    """No ratings, over the vocabularies of ``ratings``."""
    return ratings.take(np.zeros(0, np.int64))


def feature_count(module: Any) -> int:
    """The hybrid's number of feature rows (0: another model, or a hybrid without features)."""
    features = getattr(module, "feature_factors", None)
    return 0 if features is None else int(features.num_embeddings)


def stable_normal(rows: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Standard normal ``(rows, dim)`` values, each a pure function of its row's global index, its column and
    ``seed`` (Box-Muller on ``stable_uniform``): a row starts the same whichever rank owns it."""
    keys = rows.astype(np.uint64)[:, None] * np.uint64(dim) + np.arange(dim, dtype=np.uint64)[None, :]
    radius = np.sqrt(-2.0 * np.log1p(-stable_uniform(keys, 2 * seed)))
    return (radius * np.cos(2 * np.pi * stable_uniform(keys, 2 * seed + 1))).astype(np.float32)


def _copy_rows(table: torch.Tensor | None, factors: torch.nn.Embedding, bias: torch.nn.Embedding) -> None:
    """A gathered side's ``table`` (factors, then the bias, then anything else) into the module's embeddings."""
    assert table is not None, "rank 0 receives every gathered table"
    dim = factors.weight.shape[1]
    with torch.no_grad():
        factors.weight.copy_(table[:, :dim])
        bias.weight.copy_(table[:, dim : dim + 1])
