"""Fitting the "likely to watch" component (iALS on who rated what; see ``movierec.models.watch``).

Each half-step is a ridge regression per row against the other side's vectors, the targets the values of the
padded blocks (1 for a watch, or a rating's signed target). By default a preconditioned conjugate gradient step
per row, warm-started from the previous sweep (``movierec.train.watch_cg``); ``cg_steps = 0`` solves every row exactly
(a Cholesky factorisation of its ``dim x dim`` Gram matrix, ``dim`` times the work at ``dim`` 128).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeGuard

import numpy as np
import torch

from movierec.config import TrainConfig
from movierec.data.ratings import Ratings
from movierec.models.watch import Taste
from movierec.train.als import Side, build_side, times
from movierec.train.watch_cg import Eigenbasis, cg_rows

CG_STEPS = 1
"""Preconditioned conjugate gradient steps per row and half-step (0: exact solves; ``watch_cg``). With the
preconditioner one step lowers a sweep's objective as far as the exact solve does: after 8 sweeps on
ml-latest-small (dim 128) the objective is 0.0005% above the exact fit's with 1 step, 0.0000% with 2, where 2
unpreconditioned steps (the default before) stayed 0.15% above; on 1.25M synthetic ratings 1 step is 0.06% above
2 steps, 2 unpreconditioned steps 0.31%. On validation data (ml-latest-small, split seed 0's training ratings with
10% held out, seeds 0 to 3; NDCG@10 / coverage@10 of the finished model, averaged), 8 sweeps with 1 step score
biased-mf (ALS) 0.1995 / 0.0515 and hybrid 0.2030 / 0.0585, with 2 steps 0.1995 / 0.0504 and 0.2012 / 0.0597,
exactly 0.2008 / 0.0499 and 0.2001 / 0.0584, and with 2 unpreconditioned steps 0.1948 / 0.0521 and 0.1982 /
0.0593. So 1: a half-step makes 3 passes over the gathered ratings where 2 steps make 5."""


SIGNED_CG_STEPS = 2
"""Preconditioned conjugate gradient steps of the signed final user solve (its targets move far from the unsigned
solution it starts from, and no later sweep refines it). Its scores land 0.4% (of the largest score) from the
exact fit's on the test data of tests/test_watch_cg.py with 2 steps, 6.6% with 1. On the validation data of
``CG_STEPS`` (6 sweeps of 1 step, refit of 2 sweeps) 2 steps score NDCG@10 / coverage@10 biased-mf 0.1987 / 0.0515
and hybrid 0.1987 / 0.0590, 4 steps 0.1989 / 0.0516 and 0.1987 / 0.0591; 1 step (with a refit of 1 sweep) loses
0.0013 and 0.0005 of NDCG@10 against 2."""

REFIT_ITERATIONS = 1
"""Sweeps of a refit warm-started from an earlier fit on most of the same ratings (the driver's refit on all of
the training ratings after the fit on its fit part). On the validation data of ``CG_STEPS`` (6 sweeps of 1 step,
the signed solve of 2) 1 sweep scores NDCG@10 / coverage@10 biased-mf 0.1986 / 0.0517 and hybrid 0.1981 / 0.0593,
2 sweeps 0.1987 / 0.0515 and 0.1987 / 0.0590."""


@dataclass(frozen=True)
class WatchSettings:
    """Size and strength of the "likely to watch" component (``dim`` 0 turns it off) and how its rows are solved:
    ``cg_steps`` preconditioned conjugate gradient steps, or exactly with 0."""

    dim: int = 128
    reg: float = 10.0
    unobserved: float = 1.0
    iterations: int = 8
    cg_steps: int = CG_STEPS


@dataclass(frozen=True)
class WatchFactors:
    user: np.ndarray  # float32 [n_users, dim]
    item: np.ndarray  # float32 [n_items, dim]


def fit_watch(
    train: Ratings,
    settings: WatchSettings,
    taste: Taste | None = None,
    seed: int = 0,
    device: str = "cpu",
    start: np.ndarray | None = None,
) -> WatchFactors:
    """Alternate user and movie solves ``settings.iterations`` times on who watched what (every rating a watch),
    then, with ``taste``, solve every user once more with the signed targets of their ratings (from their
    unsigned vectors): the movie vectors keep what watching says, the user vectors what the person thought of it.
    ``start`` (float32 [n_items, dim]) replaces the random starting movie vectors."""
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    ones = np.ones(len(train), np.float32)
    targets = taste.targets(train.users, train.ratings, train.n_users) if signs(taste) else ones
    user_side = build_side(train.users, train.items, targets, train.n_users, train.n_items, dev)
    item_side = build_side(train.items, train.users, ones, train.n_items, train.n_users, dev)
    users = torch.zeros(train.n_users + 1, settings.dim, device=dev)
    items = torch.zeros(train.n_items + 1, settings.dim, device=dev)
    first = (
        torch.randn(train.n_items, settings.dim, generator=generator) * 0.1 if start is None else torch.tensor(start)
    )
    items[:-1] = first.to(dev) * (item_side.counts > 0)[:, None]  # a movie nobody rated stays at its solution, 0
    alternate(watched(user_side), item_side, users, items, settings, LOCAL)
    if signs(taste):
        LOCAL.solve_users(user_side, users, items, signed_settings(settings))
    return WatchFactors(users[:-1].cpu().numpy().copy(), items[:-1].cpu().numpy().copy())


def watched(side: Side) -> Side:
    """``side`` with every rated pair's target 1 (who watched what), whatever its targets: the signed ratings'
    grouping serves the unsigned sweeps too, without grouping the ratings again."""
    blocks = [replace(block, values=(block.cols != side.n_cols).to(block.values.dtype)) for block in side.blocks]
    return replace(side, blocks=blocks)


def signed_settings(settings: WatchSettings) -> WatchSettings:
    """``settings`` for the signed final user solve: at least ``SIGNED_CG_STEPS`` steps (its targets move far from
    the unsigned solution it starts from, and no later sweep refines it)."""
    if settings.cg_steps == 0:
        return settings
    return replace(settings, cg_steps=max(settings.cg_steps, SIGNED_CG_STEPS))


def signs(taste: Taste | None) -> TypeGuard[Taste]:
    """Whether ``taste`` asks for the signed final user solve (a disliked movie's target other than 1)."""
    return taste is not None and taste.dislike != 1.0


@dataclass(frozen=True)
class Halves:
    """What a half-step's row solves see of the fixed side, given that side's table of rows held here (with the
    zero padding row last): ``seen_users`` / ``seen_items`` the rows the ratings' columns index (with the padding
    row last), ``gram`` its ``Y'Y`` over every row of the side. In one process (``LOCAL``) the table itself and its
    own ``Y'Y``; sharded (``sharded_watch``), the rows a rank's ratings touch, fetched, and ``Y'Y`` summed over
    the ranks."""

    seen_users: Callable[[torch.Tensor], torch.Tensor]
    seen_items: Callable[[torch.Tensor], torch.Tensor]
    gram: Callable[[torch.Tensor], torch.Tensor]
    seen_are_copies: bool = False
    """Whether ``seen_users`` / ``seen_items`` hand back a copy made for the half-step, which its solve may
    overwrite (``cg_rows`` then rotates it in place instead of holding a rotated second table)."""

    def solve_users(self, side: Side, users: torch.Tensor, items: torch.Tensor, settings: WatchSettings) -> None:
        """The user half-step: every rated row of ``users`` against ``items`` (``side`` grouped by user)."""
        solve_rows(side, users, self.seen_items(items), settings, self.gram(items), self.seen_are_copies)

    def solve_items(self, side: Side, items: torch.Tensor, users: torch.Tensor, settings: WatchSettings) -> None:
        """The movie half-step: every rated row of ``items`` against ``users`` (``side`` grouped by movie)."""
        solve_rows(side, items, self.seen_users(users), settings, self.gram(users), self.seen_are_copies)


def _unchanged(table: torch.Tensor) -> torch.Tensor:
    return table


def _own_gram(table: torch.Tensor) -> torch.Tensor:
    return table.T @ table


LOCAL = Halves(_unchanged, _unchanged, _own_gram)
"""One process: the solves see the whole tables."""


def alternate(
    user_side: Side,
    item_side: Side,
    users: torch.Tensor,
    items: torch.Tensor,
    settings: WatchSettings,
    halves: Halves,
) -> None:
    """``settings.iterations`` sweeps, each a user half-step then a movie half-step, on ``users`` and ``items`` in
    place (``user_side`` grouped by user, ``item_side`` by movie)."""
    for _ in range(settings.iterations):
        halves.solve_users(user_side, users, items, settings)
        halves.solve_items(item_side, items, users, settings)


def solve_rows(
    side: Side,
    own: torch.Tensor,
    other: torch.Tensor,
    settings: WatchSettings,
    gram: torch.Tensor,
    other_is_scratch: bool = False,
) -> None:
    """Re-solve every rated row of ``own`` against ``other`` (each with a zero padding row last), in place;
    ``gram`` is ``Y'Y`` of the whole fixed side (``other`` itself in one process). ``other_is_scratch``: the
    solve may overwrite ``other``."""
    if settings.cg_steps:
        basis = Eigenbasis.of(gram, settings.unobserved, settings.reg)
        cg_rows(side, own, other, basis, settings.cg_steps, other_is_scratch)
    else:
        shared = settings.unobserved * gram + settings.reg * torch.eye(other.shape[1], device=other.device)
        exact_rows(side, own, other, shared)


def exact_rows(side: Side, own: torch.Tensor, other: torch.Tensor, shared: torch.Tensor) -> None:
    """Every rated row of ``own`` set to its exact ridge solution ``(shared + Y_u'Y_u)^-1 Y_u't_u``, in place."""
    for block in side.blocks:
        gathered = other[block.cols.long()]  # (rows, length, dim); padding rows are zero
        lhs = gathered.transpose(1, 2) @ gathered + shared
        rhs = (gathered * block.values.unsqueeze(-1)).sum(dim=1)  # targets; 0 on padding
        chol = torch.linalg.cholesky(lhs)
        own.index_copy_(0, block.rows, torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1))


def watch_objective(side: Side, users: torch.Tensor, items: torch.Tensor, settings: WatchSettings) -> float:
    """The iALS objective of ``users`` and ``items`` (each with a zero padding row last) on the targets of
    ``side`` (grouped by user): squared errors of the rated pairs, plus ``unobserved`` times the squared scores
    of all pairs, plus ``reg`` times the squared norms."""
    with torch.no_grad():
        rated = sum(
            float((times(items[block.cols.long()], users.index_select(0, block.rows)) - block.values).square().sum())
            for block in side.blocks
        )
        users64, items64 = users.double(), items.double()
        every = float(((users64.T @ users64) * (items64.T @ items64)).sum())
        norms = float(users64.square().sum() + items64.square().sum())
    return rated + settings.unobserved * every + settings.reg * norms


def configured_settings(config: TrainConfig, refit: bool = False) -> WatchSettings:
    """The settings ``config`` asks for: ``config.watch_iterations`` sweeps, or with ``refit`` (a fit warm-started
    from an earlier fit on most of the same ratings) ``REFIT_ITERATIONS`` at most."""
    iterations = min(REFIT_ITERATIONS, config.watch_iterations) if refit else config.watch_iterations
    return WatchSettings(config.watch_dim, config.watch_reg, config.watch_unobserved, iterations)


def configured_taste(config: TrainConfig, global_mean: float) -> Taste:
    """The signed targets ``config`` asks for, centred on ``global_mean``."""
    return Taste(global_mean, config.watch_margin, config.watch_dislike)


def fit_configured(
    train: Ratings, config: TrainConfig, global_mean: float, start: np.ndarray | None = None
) -> WatchFactors | None:
    """The component ``config`` asks for (None when ``watch_dim`` is 0), its targets centred on ``global_mean``.
    With ``start``, the movie vectors of an earlier fit on most of ``train``, it takes ``REFIT_ITERATIONS``
    sweeps from there instead of ``config.watch_iterations`` from random vectors."""
    if not config.watch_dim:
        return None
    settings = configured_settings(config, refit=start is not None)
    return fit_watch(train, settings, configured_taste(config, global_mean), seed=config.seed, start=start)
