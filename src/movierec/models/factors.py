"""The exported form of every model: biases and factor tables in NumPy, and the one scoring contract.

Training produces a PyTorch ``nn.Module``; what recommending, evaluating and serving need is this snapshot:
``rating(u, i) = link(global_mean + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i])``.
Baselines are snapshots with zero-width factors, the hybrid folds its feature embeddings into
``item_factors`` and keeps its implicit-feedback table for fold-in.

Two named scores, kept apart on purpose:
- ``predict`` / ``score_items``: the predicted star rating, for RMSE and for "what would I rate this?";
- ``rank_scores``: what top-N lists are sorted by. A model trained on squared error alone ranks rarely seen
  movies first, so the ranking score adds a popularity prior (how likely a person is to watch the movie at all)
  with a weight chosen on validation data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from movierec.models.watch import fold_in_watch, watch_gram

Link = Literal["linear", "sigmoid"]


@dataclass(frozen=True)
class UserVector:
    """A user as the model sees them: a bias and a factor vector (folded in or learned)."""

    bias: float
    factors: np.ndarray  # float32 [dim]
    watch: np.ndarray | None = None  # float32 [watch dim]: the "likely to watch" vector, when the model has one


@dataclass(frozen=True)
class FoldInSystem:
    """``lhs @ x = design.T @ target + prior_rhs``: x is a new user's [bias, factors] (before ``offset``)."""

    design: np.ndarray  # [n_rated, dim + 1]: a column of ones, then the rated movies' factors
    target: np.ndarray  # [n_rated]: what the user's bias and factors must explain of each rating
    lhs: np.ndarray  # [dim + 1, dim + 1]: design.T @ design + the prior's precision
    prior_rhs: np.ndarray  # [dim + 1]: the prior's precision times its mean (zeros for a ridge penalty)
    offset: np.ndarray  # [dim]: the SVD++ term of the rated movies, added to the solved factors


@dataclass(frozen=True)
class FactorParams:
    """Everything needed to score users against movies."""

    global_mean: float
    user_bias: np.ndarray  # float32 [n_users]
    item_bias: np.ndarray  # float32 [n_items]
    user_factors: np.ndarray  # float32 [n_users, dim]
    item_factors: np.ndarray  # float32 [n_items, dim]
    low: float
    high: float
    link: Link = "linear"
    user_known: np.ndarray = field(default_factory=lambda: np.empty(0, bool))  # bool [n_users]
    item_known: np.ndarray = field(default_factory=lambda: np.empty(0, bool))  # bool [n_items]
    item_prior: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # [n_items] in [0, 1]
    rank_weight: float = 0.0
    fold_in_reg: float = 1.0
    implicit: np.ndarray | None = None  # float32 [n_items, dim]: SVD++ "which movies I rated" embeddings
    watch_user: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [n_users, k]
    watch_item: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [n_items, k]
    watch_weight: float = 0.0  # weight of the "likely to watch" score in the ranking score
    watch_reg: float = 10.0
    watch_unobserved: float = 1.0
    fold_in_mean: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # [dim + 1]: bias, factors
    fold_in_precision: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float64))  # [dim+1, dim+1]

    @property
    def n_users(self) -> int:
        return int(self.user_bias.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_bias.shape[0])

    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1])

    @property
    def has_watch(self) -> bool:
        return self.watch_item.size > 0 and self.watch_item.shape[0] == self.item_bias.shape[0]


class FactorModel:
    """The one contract every fitted model meets: predict, score, rank, fold in, explain."""

    def __init__(self, params: FactorParams, name: str = "model") -> None:
        self.params = params
        self.name = name

    # ------------------------------------------------------------------------------------------- ratings

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for (user index, item index) pairs; unknown users or items (index -1 or never
        seen in training) fall back to the biases, then to the global mean."""
        p = self.params
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        u_ok = (users >= 0) & (users < p.n_users)
        i_ok = (items >= 0) & (items < p.n_items)
        u_safe = np.where(u_ok, users, 0)
        i_safe = np.where(i_ok, items, 0)
        u_ok &= p.user_known[u_safe] if p.user_known.size else u_ok
        i_ok &= p.item_known[i_safe] if p.item_known.size else i_ok
        raw = np.full(users.shape, p.global_mean, dtype=np.float64)
        raw += np.where(u_ok, p.user_bias[u_safe], 0.0)
        raw += np.where(i_ok, p.item_bias[i_safe], 0.0)
        both = u_ok & i_ok
        if p.dim and both.any():
            dots = np.einsum("nd,nd->n", p.user_factors[u_safe[both]], p.item_factors[i_safe[both]])
            raw[both] += dots
        return self._link(raw)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        """Predicted ratings of every item for each user index: ``[len(users), n_items]``."""
        p = self.params
        users = np.asarray(users, dtype=np.int64)
        known = p.user_known[users] if p.user_known.size else np.ones(users.shape, bool)
        raw = self._raw_all(
            np.where(known, p.user_bias[users], 0.0),
            p.user_factors[users] * known[:, None].astype(np.float32),
        )
        return self._link(raw)

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores for top-N lists (higher first): the normalised predicted rating, the popularity prior, and
        the "likely to watch" score."""
        users = np.asarray(users, dtype=np.int64)
        scores = self.to_rank_scores(self.score_items(users))
        p = self.params
        if p.has_watch and p.watch_weight:
            scores = scores + p.watch_weight * (p.watch_user[users] @ p.watch_item.T)
        return scores

    def watch_scores(self, watch: np.ndarray | None, items: np.ndarray | None = None) -> np.ndarray:
        """The "likely to watch" score of every item (or of ``items``) for one user's watch vector (zeros
        without one)."""
        p = self.params
        count = p.n_items if items is None else len(items)
        if watch is None or not p.has_watch:
            return np.zeros(count, np.float32)
        table = p.watch_item if items is None else p.watch_item[np.asarray(items, dtype=np.int64)]
        return table @ watch

    # ------------------------------------------------------------------------------------------ new users

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> UserVector:
        """A new user's bias and factors from a few ratings, by regularised least squares against the frozen
        item factors and biases (closed form, no retraining); see ``fold_in_system``."""
        p = self.params
        items, ratings = self.usable_ratings(items, ratings)
        watch = (
            fold_in_watch(p.watch_item, items, p.watch_reg, p.watch_unobserved, self._watch_gram)
            if p.has_watch
            else None
        )
        if items.size == 0:
            return UserVector(0.0, np.zeros(p.dim, np.float32), watch)
        system = self.fold_in_system(items, ratings)
        solution = np.linalg.solve(system.lhs, system.design.T @ system.target + system.prior_rhs)
        return UserVector(float(solution[0]), (solution[1:] + system.offset).astype(np.float32), watch)

    def fold_in_system(self, items: np.ndarray, ratings: np.ndarray) -> FoldInSystem:
        """The least-squares problem behind ``fold_in`` for usable (item, stars) pairs.

        With a population prior (``fold_in_mean`` and ``fold_in_precision``: the mean and inverse covariance
        of the trained users' [bias, factors]), it is the posterior mode under that Gaussian prior with noise
        variance ``fold_in_reg``: a user with few ratings starts from the typical user rather than from zero.
        Without one, a ridge penalty ``fold_in_reg`` (half on the bias) shrinks towards zero.
        """
        p = self.params
        dim = p.dim
        offset = self.implicit_offset(items)
        q = p.item_factors[items].astype(np.float64)
        target = self._inverse_link(ratings) - p.global_mean - p.item_bias[items] - q @ offset
        design = np.hstack([np.ones((items.size, 1)), q])
        if p.fold_in_precision.shape == (dim + 1, dim + 1) and p.fold_in_mean.shape == (dim + 1,):
            penalty = p.fold_in_reg * p.fold_in_precision
            prior_rhs = penalty @ p.fold_in_mean
        else:
            penalty = p.fold_in_reg * np.eye(dim + 1)
            penalty[0, 0] = p.fold_in_reg * 0.5  # the bias needs less shrinkage than the factors
            prior_rhs = np.zeros(dim + 1)
        return FoldInSystem(design, target, design.T @ design + penalty, prior_rhs, offset)

    def usable_ratings(self, items: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (item, stars) pairs fold-in can use: items in range that the model was trained on."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        ratings = np.asarray(ratings, dtype=np.float64)
        ok = (items >= 0) & (items < p.n_items)
        if p.item_known.size:
            ok &= p.item_known[np.where(ok, items, 0)]
        return items[ok], ratings[ok]

    def implicit_offset(self, items: np.ndarray) -> np.ndarray:
        """The SVD++ term ``|N(u)|^-1/2 * sum(implicit[j] for j in N(u))`` for the movies a user rated."""
        p = self.params
        if p.implicit is None or items.size == 0:
            return np.zeros(p.dim, np.float64)
        return p.implicit[items].sum(axis=0).astype(np.float64) / np.sqrt(items.size)

    def predict_for(self, user: UserVector, items: np.ndarray) -> np.ndarray:
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        raw = p.global_mean + user.bias + p.item_bias[items] + p.item_factors[items] @ user.factors
        return self._link(raw.astype(np.float64))

    def score_for(self, user: UserVector) -> np.ndarray:
        """Predicted ratings of every item for a folded-in user."""
        raw = self._raw_all(np.array([user.bias]), user.factors[None, :])[0]
        return self._link(raw)

    def rank_for(self, user: UserVector, predicted: np.ndarray | None = None) -> np.ndarray:
        """Rank scores of every item for a folded-in user (``predicted``: their ``score_for``, if at hand)."""
        predicted = self.score_for(user) if predicted is None else predicted
        scores = self.to_rank_scores(predicted[None, :])[0]
        if self.params.watch_weight:
            scores = scores + self.params.watch_weight * self.watch_scores(user.watch)
        return scores

    def restricted_to(self, items: np.ndarray) -> FactorModel:
        """This model over ``items`` only (item index ``j`` of the result is ``items[j]`` here), for scoring a
        shortlist of movies faster: a contiguous copy of their rows. Fold new users in with the full model."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)

        def rows(table: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(table[items]) if table.size and table.shape[0] == p.n_items else table

        return FactorModel(
            replace(
                p,
                item_bias=rows(p.item_bias),
                item_factors=rows(p.item_factors),
                item_known=rows(p.item_known),
                item_prior=rows(p.item_prior),
                implicit=None,
                watch_item=rows(p.watch_item),
            ),
            self.name,
        )

    # ------------------------------------------------------------------------------------------- helpers

    def to_rank_scores(self, predicted: np.ndarray) -> np.ndarray:
        p = self.params
        scores = (predicted - p.low) / (p.high - p.low)
        if p.rank_weight and p.item_prior.size:
            scores = scores + p.rank_weight * p.item_prior[None, :]
        return scores

    def with_rank_weight(self, weight: float, watch_weight: float | None = None) -> FactorModel:
        watch = self.params.watch_weight if watch_weight is None else float(watch_weight)
        return FactorModel(replace(self.params, rank_weight=float(weight), watch_weight=watch), self.name)

    def _item_known_row(self) -> np.ndarray:
        p = self.params
        return p.item_known if p.item_known.size else np.ones(p.n_items, bool)

    def _raw_all(self, user_bias: np.ndarray, user_factors: np.ndarray) -> np.ndarray:
        p = self.params
        raw = p.global_mean + user_bias[:, None] + self._known_item_bias[None, :]
        if p.dim:
            raw = raw + user_factors @ p.item_factors.T
        return raw

    @functools.cached_property
    def _watch_gram(self) -> np.ndarray:
        """Computed once per model: on a large catalog it is most of a fold-in's cost."""
        return watch_gram(self.params.watch_item)

    @functools.cached_property
    def _known_item_bias(self) -> np.ndarray:
        """Item biases with untrained items at zero (computed once: scoring a user reads it every time)."""
        return np.where(self._item_known_row(), self.params.item_bias, 0.0)

    def _link(self, raw: np.ndarray) -> np.ndarray:
        """Map raw scores to stars: clip for the linear models, a scaled sigmoid for ``sigmoid-mf``."""
        p = self.params
        if p.link == "sigmoid":
            out = p.low + (p.high - p.low) / (1.0 + np.exp(-raw))
        else:
            out = np.clip(raw, p.low, p.high)
        return np.asarray(out, dtype=np.float32)

    def _inverse_link(self, ratings: np.ndarray) -> np.ndarray:
        p = self.params
        if p.link != "sigmoid":
            return ratings
        share = np.clip((ratings - p.low) / (p.high - p.low), 0.02, 0.98)
        return np.log(share / (1.0 - share))


def population_prior(params: FactorParams, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, precision) of the trained users' [bias, factors]: the prior ``fold_in`` starts a new user from.

    ``weights`` (per user, e.g. their number of ratings) weigh users as the ratings to be predicted do: most
    ratings come from active users, so the typical rating's user is a better start than the typical user.
    """
    known = params.user_known if params.user_known.size else np.ones(params.n_users, bool)
    if weights is not None:
        known = known & (np.asarray(weights) > 0)
    if known.sum() <= params.dim + 2:
        return np.empty(0, np.float64), np.empty((0, 0), np.float64)
    users = np.hstack([params.user_bias[known, None], params.user_factors[known]]).astype(np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[known]
    covariance = np.atleast_2d(np.cov(users, rowvar=False, aweights=w))
    covariance += 1e-6 * max(float(np.trace(covariance)) / covariance.shape[0], 1e-6) * np.eye(covariance.shape[0])
    return np.average(users, axis=0, weights=w), np.linalg.inv(covariance)
