"""The "likely to watch" fit (``train.watch``) sharded across the ranks of sharded ALS, none holding every rating.

Rows are owned as in sharded ALS (``shard_exchange``: rank ``r`` of ``W`` owns the users and the movies whose index
is ``r`` modulo ``W``, at local position ``index // W``). Each rank groups its users' ratings by user, and sends each
rating once to its movie's owner (one all-to-all) to group its movies' ratings by movie. A sweep is then the
single-process one (``watch.alternate``) on the same row solves (``watch.solve_rows``), through ``Halves`` that
fetch only the other side's rows a rank's ratings touch (``RowFetch``) and sum ``Y'Y`` over the ranks (each rank's
own rows' ``Y'Y``, all-reduced). The signed final user solve needs nothing more (a user's targets are a function
of that user's ratings). Starting movie vectors are ``stable_normal`` of their global index, so every world size
fits the same factors, up to the order of float sums; world size 1 gives exactly ``watch.fit_watch`` from those
starting vectors. Rank 0 receives the gathered tables (users x dim and movies x dim): of the first fit only the
rows that choosing the ranking weights reads (``ShardedWatchFits.fit_gathered``), the refit once those weights are
chosen (``refit_gathered``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.data.shard import held_out
from movierec.models.watch import Taste
from movierec.train.als import Side, build_side
from movierec.train.freed_memory import give_back_freed_memory
from movierec.train.shard_exchange import Exchange, RowFetch
from movierec.train.sharded_als import stable_normal
from movierec.train.watch import (
    Halves,
    WatchFactors,
    WatchSettings,
    alternate,
    configured_settings,
    configured_taste,
    signed_settings,
    signs,
    watched,
)

START_SEED = 1 << 20
"""Added to the run's seed for the starting movie vectors (``stable_normal``), apart from sharded ALS's streams."""
START_SCALE = 0.1
"""The starting movie vectors' standard deviation (``fit_watch``'s)."""


@dataclass(frozen=True)
class ShardedWatchFits:
    """Both fits as each rank holds them: its own user and movie rows (the zero padding row last), until
    gathered (``fit_gathered``, ``refit_gathered``)."""

    fit: tuple[torch.Tensor, torch.Tensor]
    refit: tuple[torch.Tensor, torch.Tensor]
    n_users: int
    n_items: int

    def fit_gathered(self, fit_users: np.ndarray, exchange: Exchange) -> WatchFactors | None:
        """The first fit on rank 0 (None elsewhere), every rank taking part: the movies whole but only the users
        ``fit_users`` (global indices, the same on every rank), the other users' rows zero. Choosing the ranking
        weights reads no other rows of it, and a zero table's untouched pages take no memory."""
        users, items = self.fit
        mine = np.asarray(fit_users, dtype=np.int64)
        mine = mine[mine % exchange.world == exchange.rank]
        own_rows = users.index_select(0, torch.from_numpy(mine // exchange.world).to(users.device))
        index, rows = exchange.to_first(mine, own_rows.cpu().numpy())
        item_table = exchange.gather_rows(items[:-1], self.n_items)
        if item_table is None:
            return None
        user_table = np.zeros((self.n_users, users.shape[1]), np.float32)
        user_table[index] = rows
        return WatchFactors(user_table, item_table.cpu().numpy())

    def refit_gathered(self, exchange: Exchange) -> WatchFactors | None:
        """The refit whole on rank 0 (None elsewhere), every rank taking part."""
        return _gathered(*self.refit, self.n_users, self.n_items, exchange)


def fit_sharded_watch(own: Ratings, config: TrainConfig, global_mean: float, exchange: Exchange) -> ShardedWatchFits:
    """``driver.finish_model``'s two fits of the component (``watch.fit_configured`` on the fit part, then the
    warm refit on every training rating) from every rank's ``own`` training ratings (its users'), each rank's rows
    of them. Every rank must call it; ``config.watch_dim`` must be above 0."""
    taste = configured_taste(config, global_mean)
    fit_part = held_out(own, config.val_fraction, config.seed).train
    mine = np.arange(exchange.rank, own.n_items, exchange.world)
    start = torch.from_numpy(starting_items(mine, config.watch_dim, config.seed)).to(exchange.device)
    fit = _fit(fit_part, configured_settings(config), taste, start, exchange)
    del fit_part
    refit = _fit(own, configured_settings(config, refit=True), taste, fit[1][:-1], exchange)
    return ShardedWatchFits(fit, refit, own.n_users, own.n_items)


def _fit(
    ratings: Ratings, settings: WatchSettings, taste: Taste, start: torch.Tensor, exchange: Exchange
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fit_watch`` of every rank's ``ratings`` (its users'), from the own movie rows ``start``: this rank's user
    and movie rows, each with the zero padding row last."""
    n_users = len(range(exchange.rank, ratings.n_users, exchange.world))
    targets = np.ones(len(ratings), np.float32)
    if signs(taste):
        targets = taste.targets(ratings.users // exchange.world, ratings.ratings, n_users)
    rated = RatedBothWays.of(ratings, targets, exchange)
    halves = Halves(
        rated.user_rows.fetch, rated.movie_rows.fetch, lambda table: exchange.all_sum(table.T @ table),
        seen_are_copies=True,
    )  # fmt: skip
    device, dim = exchange.device, settings.dim
    users = torch.zeros(rated.by_user.n_rows + 1, dim, device=device)
    items = torch.zeros(rated.by_item.n_rows + 1, dim, device=device)
    items[:-1] = start * (rated.by_item.counts > 0)[:, None]  # a movie nobody rated stays at its solution, 0
    unsigned = watched(rated.by_user)
    for _ in range(settings.iterations):  # a sweep at a time, handing back what the sweep freed
        alternate(unsigned, rated.by_item, users, items, replace(settings, iterations=1), halves)
        give_back_freed_memory()
    del unsigned
    if signs(taste):
        halves.solve_users(rated.by_user, users, items, signed_settings(settings))
    return users, items


@dataclass(frozen=True)
class RatedBothWays:
    """A rank's share of some ratings: its users' grouped by user with their targets (columns: positions among the
    movie rows ``movie_rows`` fetches) and its movies' grouped by movie, who-watched-what (columns: positions among
    the user rows ``user_rows`` fetches)."""

    by_user: Side
    by_item: Side
    movie_rows: RowFetch
    user_rows: RowFetch

    @classmethod
    def of(cls, ratings: Ratings, targets: np.ndarray, exchange: Exchange) -> RatedBothWays:
        """``ratings`` (this rank's users') grouped both ways, by user with ``targets``: each sent once to its
        movie's owner."""
        world, device = exchange.world, exchange.device
        movie_rows = RowFetch.plan(np.unique(ratings.items), exchange)
        by_user = _by_user(ratings, movie_rows, targets, exchange)
        users, items = exchange.scatter_by_owner(ratings.items % world, ratings.users, ratings.items)
        user_rows = RowFetch.plan(np.unique(users), exchange)
        n_items = len(range(exchange.rank, ratings.n_items, world))
        by_item = build_side(
            items // world, user_rows.positions(users), np.ones(users.size, np.float32), n_items, user_rows.n_rows,
            device,
        )  # fmt: skip
        del users, items
        return cls(by_user, by_item, movie_rows, user_rows)


def _by_user(ratings: Ratings, movie_rows: RowFetch, targets: np.ndarray, exchange: Exchange) -> Side:
    """This rank's users' ``ratings`` grouped by user with ``targets``, their movies as positions among the rows
    ``movie_rows`` fetches."""
    n_users = len(range(exchange.rank, ratings.n_users, exchange.world))
    positions = movie_rows.positions(ratings.items)
    return build_side(ratings.users // exchange.world, positions, targets, n_users, movie_rows.n_rows, exchange.device)


def starting_items(rows: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """The starting vectors of the movies ``rows`` (global indices): each a function of its index and ``seed``
    alone (``fit_watch``'s ``start`` for the same fit in one process, with every movie's rows)."""
    return stable_normal(rows, dim, seed + START_SEED) * np.float32(START_SCALE)


def _gathered(
    users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int, exchange: Exchange
) -> WatchFactors | None:
    user_table = exchange.gather_rows(users[:-1], n_users)
    item_table = exchange.gather_rows(items[:-1], n_items)
    if user_table is None or item_table is None:
        return None
    return WatchFactors(user_table.cpu().numpy(), item_table.cpu().numpy())
