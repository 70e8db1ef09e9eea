"""The exported form of every model: biases and factor tables in NumPy, and the one scoring contract.

Training produces a PyTorch ``nn.Module``; what recommending, evaluating and serving need is this snapshot:
``rating(u, i) = link(global_mean + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i])``.
Baselines are snapshots with zero-width factors, the hybrid folds its feature embeddings into
``item_factors`` and keeps its SVD++ table (``implicit``) for fold-in.

Two named scores, kept apart on purpose:
- ``predict`` / ``score_items``: the predicted star rating, for RMSE and for "what would I rate this?";
- ``rank_scores``: what top-N lists are sorted by. A model trained on squared error alone ranks rarely seen
  movies first, so the ranking score adds a popularity prior (how likely a person is to watch the movie at all)
  and the "likely to watch" score (how likely *this* person is to watch it), with weights chosen on validation
  data: ``unit_rating(predicted) + rank_weight * item_prior[i] + watch_weight * watch_user[u] . watch_item[i]``.

``FactorModel`` is the only place these formulas are written: the split of a score into its parts
(``rating_parts``, ``rank_parts``), the fallback for users and movies it does not know, the link functions,
and the same ranking score as matrix products for scoring many users at once (``rank_tables``), all derive
from it. Adding a score term is a change to this module alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import numpy as np

from movierec.models.time_effects import dated_shift
from movierec.models.watch import Taste, fold_in_watch, watch_gram

if TYPE_CHECKING:
    import torch

Link = Literal["linear", "sigmoid"]
Table = TypeVar("Table")
Moved = TypeVar("Moved")


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
class RankTables(Generic[Table]):
    """The movies' side of the ranking score as matrix products, for scoring many users at once:

    ``rank_scores = squash(user_rating @ rating) + offset + user_extra @ extra``

    with the users' side from ``FactorModel.rank_rows`` and the whole formula in ``rank_scores_of``.
    ``user_rating @ rating`` is the raw predicted rating on the [0, 1] scale of the rank score: the global mean,
    the biases and the rating scale are folded into two extra columns, ``[p_u, b_u + mean - low, 1]`` times
    ``[q_i, 1, b_i]``, over ``high - low`` (the sigmoid link needs no rescaling). ``squash`` is the link on that
    scale: clip to [0, 1], or the sigmoid. ``offset`` holds the terms that depend on the movie alone (the
    popularity prior), ``user_extra @ extra`` the terms added after the link that depend on both (the "likely to
    watch" score). The tables are NumPy as built; ``map`` moves them, e.g. to torch tensors on a device.
    """

    rating: Table  # float32 [dim + 2, n_movies]
    offset: Table | None  # float32 [n_movies]
    extra: Table | None  # float32 [watch dim, n_movies]
    link: Link

    def map(self, move: Callable[[Table], Moved]) -> RankTables[Moved]:
        """The same tables, each passed through ``move``."""
        offset = None if self.offset is None else move(self.offset)
        extra = None if self.extra is None else move(self.extra)
        return RankTables(move(self.rating), offset, extra, self.link)


def rank_scores_of(
    tables: RankTables[torch.Tensor], user_rating: torch.Tensor, user_extra: torch.Tensor | None
) -> torch.Tensor:
    """Rank scores ``[users, movies]`` from torch tables (see ``RankTables``): one matrix product, the link
    and the additive terms in place, so memory is one score matrix. Equal to ``FactorModel.rank_scores`` up to
    float32 rounding."""
    scores = user_rating @ tables.rating
    if tables.link == "sigmoid":
        scores.sigmoid_()
    else:
        scores.clamp_(0.0, 1.0)
    if tables.offset is not None:
        scores += tables.offset
    if tables.extra is not None and user_extra is not None:
        scores += user_extra @ tables.extra
    return scores


@dataclass(frozen=True)
class FactorParams:
    """Everything needed to score users against movies.

    The run folder stores every field (``movierec.artifact.run``): arrays as tensors, the rest as metadata.
    A field added later needs a default, which older run folders then load with.
    """

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
    watch_dislike: float = 1.0  # target of a disliked movie in a watch vector; 1 (runs before it existed): none
    watch_margin: float = 1.0  # stars below a person's shrunk mean at which a rating counts as disliked
    fold_in_mean: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # [dim + 1]: bias, factors
    fold_in_precision: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float64))  # [dim+1, dim+1]
    # time effects (``time_effects``; empty: none): the biases above hold them at the latest training date
    time_span: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # [2]: first, last date (s)
    item_time_bias: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [n_items, bins]
    user_drift: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # [n_users]
    user_days: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float64))  # [n_users, 3]

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


PREDICT_BUDGET = 1 << 22
"""Most factor values gathered at once per side when predicting pairs (16 MB in float32): the pairs are taken in
chunks of ``PREDICT_BUDGET // dim``, so scoring millions of test ratings holds no rows-per-pair copy of the tables."""
PREDICT_PAIRS = 1 << 18
"""Most pairs ``FactorModel.predict`` works on at once: its per-pair temporaries (indices, masks, partial sums, about
100 bytes a pair) stay near 25 MB however many pairs are asked for (2M test ratings at once held 0.15 GB)."""


class FactorModel:
    """The one contract every fitted model meets: predict, score, rank, fold in, explain."""

    def __init__(self, params: FactorParams, name: str = "model") -> None:
        self.params = params
        self.name = name

    # ------------------------------------------------------------------------------------------- ratings

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        """Predicted ratings for (user index, item index) pairs; unknown users or items (index -1 or never
        seen in training) fall back to the biases, then to the global mean. A model with time effects predicts
        each pair at its date in ``timestamps`` (seconds; 0 or none: the latest training date). Pairs are
        predicted ``PREDICT_PAIRS`` at a time."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.ndim != 1 or users.size <= PREDICT_PAIRS:
            return self._predict_pairs(users, items, timestamps)
        dated = timestamps is not None and np.ndim(timestamps) > 0
        chunks = []
        for start in range(0, users.size, PREDICT_PAIRS):
            pairs = slice(start, start + PREDICT_PAIRS)
            dates = timestamps[pairs] if dated else timestamps  # type: ignore[index]
            chunks.append(self._predict_pairs(users[pairs], items[pairs], dates))
        return np.concatenate(chunks)

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
        p = self.params
        u_ok = (users >= 0) & (users < p.n_users)
        i_ok = (items >= 0) & (items < p.n_items)
        u_safe = np.where(u_ok, users, 0)
        i_safe = np.where(i_ok, items, 0)
        u_ok &= p.user_known[u_safe] if p.user_known.size else u_ok
        i_ok &= p.item_known[i_safe] if p.item_known.size else i_ok
        raw = np.full(users.shape, p.global_mean, dtype=np.float64)
        raw += np.where(u_ok, p.user_bias[u_safe], 0.0)
        raw += np.where(i_ok, p.item_bias[i_safe], 0.0)
        both = np.flatnonzero(u_ok & i_ok)
        step = max(1, PREDICT_BUDGET // max(1, p.dim))
        for start in range(0, both.size if p.dim else 0, step):
            rows = both[start : start + step]
            raw[rows] += np.einsum("nd,nd->n", p.user_factors[u_safe[rows]], p.item_factors[i_safe[rows]])
        if timestamps is not None and (p.item_time_bias.size or p.user_drift.size):
            raw += dated_shift(
                p.time_span, p.item_time_bias, p.user_drift, p.user_days, np.where(u_ok, u_safe, -1),
                np.where(i_ok, i_safe, -1), timestamps,
            )  # fmt: skip
        return self.link(raw)

    def score_items(self, users: np.ndarray) -> np.ndarray:
        """Predicted ratings of every item for each user index: ``[len(users), n_items]``."""
        p = self.params
        users = np.asarray(users, dtype=np.int64)
        known = self.known_users()[users]
        raw = self._raw_all(
            np.where(known, p.user_bias[users], 0.0),
            p.user_factors[users] * known[:, None].astype(np.float32),
        )
        return self._link_in_place(raw)

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores for top-N lists (higher first): the normalised predicted rating, the popularity prior, and
        the "likely to watch" score."""
        users = np.asarray(users, dtype=np.int64)
        return self._rank_scores_in_place(users, self.score_items(users))

    def rank_scores_from(self, users: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """``rank_scores`` of user indices ``users`` given their predicted ratings ``score_items(users)``."""
        return self._rank_scores_in_place(np.asarray(users, dtype=np.int64), _float_copy(predicted))

    def movie_order_key(self) -> np.ndarray | None:
        """float32 [n_items]: one key that orders every user's ``rank_scores`` and ``score_items`` alike (each
        a non-decreasing function of it, equal keys giving equal scores), when both depend on the movie's bias
        alone: no factors, no "likely to watch" term, no popularity prior in the rank score, and a clipped link
        (every step of which is monotone to the last bit). None otherwise."""
        p = self.params
        if p.dim or p.link != "linear" or self._ranks_watch or (p.rank_weight and p.item_prior.size):
            return None
        return self._known_item_bias

    def watch_scores(self, watch: np.ndarray | None, items: np.ndarray | None = None) -> np.ndarray:
        """The "likely to watch" score of every item (or of ``items``) for one user's watch vector (zeros
        without one)."""
        p = self.params
        count = p.n_items if items is None else len(items)
        if watch is None or not p.has_watch:
            return np.zeros(count, np.float32)
        table = p.watch_item if items is None else p.watch_item[np.asarray(items, dtype=np.int64)]
        return table @ watch

    # -------------------------------------------------------------------------------- many users at once

    def rank_tables(self, items: np.ndarray) -> RankTables[np.ndarray]:
        """The movies' side of ``rank_scores`` for ``items`` (item indices), as products (see ``RankTables``)."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        scale, _ = self._unit_link()
        rating = np.empty((items.size, p.dim + 2), dtype=np.float32)
        rating[:, : p.dim] = p.item_factors[items]
        rating[:, p.dim] = 1.0
        rating[:, p.dim + 1] = np.where(self.known_items()[items], p.item_bias[items], np.float32(0.0)) * scale
        offset = None
        if p.rank_weight and p.item_prior.size:
            offset = (p.rank_weight * p.item_prior[items]).astype(np.float32)
        extra = (p.watch_weight * p.watch_item[items]).T.copy() if self._ranks_watch else None
        return RankTables(np.ascontiguousarray(rating.T), offset, extra, p.link)

    def rank_rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The users' side of ``rank_tables`` for ``users`` (user indices): ``user_rating`` [len(users), dim + 2]
        and ``user_extra`` [len(users), watch dim] (None when the ranking score has no such term). Users the
        model does not know get the unknown user's row."""
        p = self.params
        users = np.asarray(users, dtype=np.int64)
        scale, offset = self._unit_link()
        known = self.known_users()[users]
        rating = np.empty((users.size, p.dim + 2), dtype=np.float32)
        rating[:, : p.dim] = p.user_factors[users] * (scale * known[:, None])
        rating[:, p.dim] = np.where(known, p.user_bias[users], 0.0) * scale + offset
        rating[:, p.dim + 1] = 1.0
        return rating, p.watch_user[users] if self._ranks_watch else None

    # ------------------------------------------------------------------------------------------ new users

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> UserVector:
        """A new user's bias and factors from a few ratings, by regularised least squares against the frozen
        item factors and biases (closed form, no retraining); see ``fold_in_system``."""
        p = self.params
        items, ratings = self.usable_ratings(items, ratings)
        watch = (
            fold_in_watch(p.watch_item, items, ratings, self.taste, p.watch_reg, p.watch_unobserved, self.watch_gram)
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
        target = self.bias_residuals(items, ratings) - q @ offset
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

    def bias_residuals(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """What the global mean and the movie biases leave of each rating, before the link: above zero, the
        user liked the movie more than the biases expect."""
        p = self.params
        return self.inverse_link(ratings) - p.global_mean - p.item_bias[items]

    def implicit_offset(self, items: np.ndarray) -> np.ndarray:
        """The SVD++ term ``|N(u)|^-1/2 * sum(implicit[j] for j in N(u))`` for the movies a user rated."""
        p = self.params
        if p.implicit is None or items.size == 0:
            return np.zeros(p.dim, np.float64)
        return p.implicit[items].sum(axis=0).astype(np.float64) / np.sqrt(items.size)

    def known_users(self) -> np.ndarray:
        """bool [n_users]: the users the model has learned; ``predict`` treats the others as unknown."""
        p = self.params
        return p.user_known if p.user_known.size else np.ones(p.n_users, bool)

    def known_items(self) -> np.ndarray:
        """bool [n_items]: the movies the model can score from their own rows; the others fall back to the
        biases of the user and the global mean."""
        p = self.params
        return p.item_known if p.item_known.size else np.ones(p.n_items, bool)

    def user_vector(self, user: int) -> UserVector:
        """A trained user (by index) as the model sees them."""
        p = self.params
        watch = p.watch_user[user] if p.has_watch else None
        return UserVector(float(p.user_bias[user]), p.user_factors[user], watch)

    @property
    def unknown_user(self) -> UserVector:
        """A user the model knows nothing about: no bias, no taste (how ``predict`` scores user index -1)."""
        return UserVector(0.0, np.zeros(self.params.dim, np.float32))

    def predict_for(self, user: UserVector, items: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        """Predicted ratings of ``items`` for a folded-in user. Items out of range (index -1) and, when ``known``
        (bool [n_items]) is given, the items outside it get ``unknown_movie_rating(user)``."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        scored = (items >= 0) & (items < p.n_items)
        if known is not None:
            scored[scored] = known[items[scored]]
        if scored.all():
            return self._predict_known(user, items)
        out = np.full(items.shape, self.unknown_movie_rating(user), dtype=np.float32)
        if scored.any():
            out[scored] = self._predict_known(user, items[scored])
        return out

    def unknown_movie_rating(self, user: UserVector) -> float:
        """The predicted rating of a movie the model cannot score: the global mean plus the user's bias."""
        return float(self.link(np.array([self.params.global_mean + user.bias]))[0])

    def score_for(self, user: UserVector) -> np.ndarray:
        """Predicted ratings of every item for a folded-in user."""
        raw = self._raw_all(np.array([user.bias]), user.factors[None, :])[0]
        return self.link(raw)

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

    # ------------------------------------------------------------------------------ a score in its parts

    def rating_parts(self, user: UserVector, items: np.ndarray) -> dict[str, np.ndarray]:
        """Each item's predicted rating before the link, in its terms (float64 each): ``global_mean``,
        ``user_bias``, ``movie_bias`` and ``interaction`` (the dot product of the user's and movie's factors)."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        interaction = p.item_factors[items] @ user.factors if p.dim else np.zeros(items.size)
        return {
            "global_mean": np.full(items.size, p.global_mean, dtype=np.float64),
            "user_bias": np.full(items.size, user.bias, dtype=np.float64),
            "movie_bias": p.item_bias[items].astype(np.float64),
            "interaction": np.asarray(interaction, dtype=np.float64),
        }

    def rank_parts(self, user: UserVector, items: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
        """Each item's rank score in its terms, given its ``predicted`` rating: ``rating_part`` (the rating on
        [0, 1]), ``popularity_part`` (the popularity prior's share) and ``watch_part`` (the "likely to watch"
        score's share)."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        popularity = np.zeros(items.size)
        if p.rank_weight and p.item_prior.size:
            popularity = p.rank_weight * p.item_prior[items].astype(np.float64)
        return {
            "rating_part": self.unit_rating(np.asarray(predicted, dtype=np.float64)),
            "popularity_part": popularity,
            "watch_part": p.watch_weight * self.watch_scores(user.watch, items),
        }

    def interaction_shares(self, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[len(items), len(usable rated)]: the stars each rated movie adds to each item's interaction, for the
        user folded in from (``rated``, ``ratings``).

        Fold-in solves the user by ``s = (DᵀD + P)⁻¹ (Dᵀt + Pm)`` with design rows ``d_j = [1, q_j]`` and targets
        ``t_j = r_j - mean - b_j`` (``fold_in_system``), so the interaction with movie ``i``, ``q_i · s``, is
        ``Σ_j ([0, q_i] (DᵀD + P)⁻¹ d_j) t_j`` plus ``interaction_prior``: one additive share per rated movie. The
        SVD++ term ``q_i · implicit[j] / sqrt(n)`` of each rated movie is added to its share. Rows plus
        ``interaction_prior`` sum to the interaction of ``fold_in(rated, ratings)`` exactly.
        """
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        rated, ratings = self.usable_ratings(rated, ratings)
        if p.dim == 0 or rated.size == 0 or items.size == 0:
            return np.zeros((items.size, rated.size))
        system = self.fold_in_system(rated, ratings)
        q_items = p.item_factors[items].astype(np.float64)
        solved = np.linalg.solve(system.lhs, system.design.T)  # [(dim + 1), n_rated]
        shares = (q_items @ solved[1:]) * system.target[None, :]
        if p.implicit is not None:
            shares += q_items @ p.implicit[rated].T.astype(np.float64) / np.sqrt(rated.size)
        return np.asarray(shares)

    def interaction_prior(self, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[len(items)]: the part of each item's interaction that the fold-in's prior gives (the typical user
        it starts from), whatever was rated; zero under the ridge penalty."""
        p = self.params
        items = np.asarray(items, dtype=np.int64)
        rated, ratings = self.usable_ratings(rated, ratings)
        if p.dim == 0 or rated.size == 0 or items.size == 0:
            return np.zeros(items.size)
        system = self.fold_in_system(rated, ratings)
        from_prior = np.linalg.solve(system.lhs, system.prior_rhs)
        return np.asarray(p.item_factors[items].astype(np.float64) @ from_prior[1:])

    # ---------------------------------------------------------------------------------------- the scales

    def link(self, raw: np.ndarray) -> np.ndarray:
        """Map raw scores to stars (float32): clip to the scale for the linear models, a sigmoid scaled to it
        for ``sigmoid-mf``."""
        return self._link_in_place(_float_copy(raw))

    def inverse_link(self, ratings: np.ndarray) -> np.ndarray:
        """Map stars back to raw scores (the sigmoid's inverse keeps 2% away from either end of the scale)."""
        p = self.params
        if p.link != "sigmoid":
            return ratings
        share = np.clip((ratings - p.low) / (p.high - p.low), 0.02, 0.98)
        return np.log(share / (1.0 - share))

    def unit_rating(self, stars: np.ndarray) -> np.ndarray:
        """Stars on the rank score's [0, 1] scale: ``(stars - low) / (high - low)``."""
        p = self.params
        return (stars - p.low) / (p.high - p.low)

    def to_rank_scores(self, predicted: np.ndarray) -> np.ndarray:
        """Rank scores from predicted ratings ``[users, n_items]``, without the "likely to watch" term."""
        return self._to_rank_scores_in_place(_float_copy(predicted))

    def with_rank_weight(self, weight: float, watch_weight: float | None = None) -> FactorModel:
        watch = self.params.watch_weight if watch_weight is None else float(watch_weight)
        return FactorModel(replace(self.params, rank_weight=float(weight), watch_weight=watch), self.name)

    # ------------------------------------------------------------------------------------------- helpers

    @property
    def _ranks_watch(self) -> bool:
        """Whether the ranking score has a "likely to watch" term."""
        return self.params.has_watch and bool(self.params.watch_weight)

    def _unit_link(self) -> tuple[float, float]:
        """(scale, offset) that take ``raw - global_mean`` to the scale the link is applied on in ``RankTables``:
        ``(raw - low) / (high - low)`` for the clip, the raw score itself for the sigmoid."""
        p = self.params
        if p.link == "sigmoid":
            return 1.0, p.global_mean
        span = p.high - p.low
        return 1.0 / span, (p.global_mean - p.low) / span

    def _predict_known(self, user: UserVector, items: np.ndarray) -> np.ndarray:
        p = self.params
        raw = p.global_mean + user.bias + p.item_bias[items] + p.item_factors[items] @ user.factors
        return self.link(raw.astype(np.float64))

    def _raw_all(self, user_bias: np.ndarray, user_factors: np.ndarray) -> np.ndarray:
        """``global_mean + user_bias[:, None] + known item bias[None, :] + user_factors @ item_factors.T``
        [users, n_items], summed in that order, in one matrix: the product, to which the biases are added a
        cache-sized block of rows at a time (float addition commutes, so the bits are those of the sum)."""
        p = self.params
        base = p.global_mean + user_bias  # [users]: the same rounding as the [users, 1] column
        biases = self._known_item_bias
        if not p.dim:
            return base[:, None] + biases[None, :]
        product = user_factors @ p.item_factors.T
        dtype = np.result_type(base, biases, product)
        raw = product if product.dtype == dtype else product.astype(dtype)
        rows = max(1, ROW_BLOCK_BYTES // max(1, raw.shape[1] * raw.itemsize))
        block = np.empty((min(rows, raw.shape[0]), raw.shape[1]), raw.dtype)
        for start in range(0, raw.shape[0], rows):
            part = block[: raw.shape[0] - start]
            np.add(base[start : start + rows, None], biases[None, :], out=part)
            raw[start : start + rows] += part
        return raw

    def _link_in_place(self, raw: np.ndarray) -> np.ndarray:
        """``link`` of a float array that may be overwritten: the same operations, written into ``raw``."""
        p = self.params
        if p.link == "sigmoid":
            np.negative(raw, out=raw)
            np.exp(raw, out=raw)
            raw += 1.0
            np.divide(p.high - p.low, raw, out=raw)
            raw += p.low
        else:
            np.clip(raw, p.low, p.high, out=raw)
        return np.asarray(raw, dtype=np.float32)

    def _to_rank_scores_in_place(self, predicted: np.ndarray) -> np.ndarray:
        """``to_rank_scores`` of float ``predicted`` ratings that may be overwritten, written into them."""
        p = self.params
        predicted -= p.low
        predicted /= p.high - p.low
        if p.rank_weight and p.item_prior.size:
            predicted = _add_in_place(predicted, p.rank_weight * p.item_prior[None, :])
        return predicted

    def _rank_scores_in_place(self, users: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """``rank_scores_from`` of float ``predicted`` ratings that may be overwritten, written into them."""
        p = self.params
        scores = self._to_rank_scores_in_place(predicted)
        if self._ranks_watch:
            watch = p.watch_user[users] @ p.watch_item.T
            watch *= p.watch_weight
            scores = _add_in_place(scores, watch)
        return scores

    @property
    def taste(self) -> Taste:
        """How this model turns a person's stars into the targets of their "likely to watch" vector."""
        p = self.params
        return Taste(p.global_mean, p.watch_margin, p.watch_dislike)

    @functools.cached_property
    def watch_gram(self) -> np.ndarray:
        """``watch_gram`` of the movies' watch vectors, computed once per model: on a large catalog it is most of a
        fold-in's cost."""
        return watch_gram(self.params.watch_item)

    @functools.cached_property
    def _known_item_bias(self) -> np.ndarray:
        """Item biases with untrained items at zero (computed once: scoring a user reads it every time)."""
        return np.where(self.known_items(), self.params.item_bias, 0.0)


ROW_BLOCK_BYTES = 1 << 18
"""Size of the scratch block in which ``_raw_all`` sums the biases before adding them to the product (256 KB:
it stays in cache)."""


def _float_copy(values: np.ndarray) -> np.ndarray:
    """A copy of ``values`` in the float type arithmetic with float32 gives them (float32 stays float32, float64
    and integers become float64): what an operation that returns a new array would compute in."""
    values = np.asarray(values)
    return values.astype(np.promote_types(values.dtype, np.float32))


def _add_in_place(total: np.ndarray, term: np.ndarray) -> np.ndarray:
    """``total + term``, written into ``total`` unless the sum needs a wider type."""
    if np.result_type(total, term) != total.dtype:
        return total + term
    total += term
    return total


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
    rows = np.flatnonzero(known)
    w = np.ones(rows.size) if weights is None else np.asarray(weights, dtype=np.float64)[rows]
    step = max(1, PREDICT_BUDGET // (params.dim + 1))
    starts = range(0, rows.size, step)  # in chunks: no float64 copy of the whole user table

    def user_rows(start: int) -> np.ndarray:
        chunk = rows[start : start + step]
        return np.hstack([params.user_bias[chunk, None], params.user_factors[chunk]]).astype(np.float64)

    mean = np.zeros(params.dim + 1)
    for start in starts:
        mean += w[start : start + step] @ user_rows(start)
    mean /= w.sum()
    scatter = np.zeros((params.dim + 1, params.dim + 1))
    for start in starts:
        centred = user_rows(start) - mean
        scatter += (w[start : start + step, None] * centred).T @ centred
    covariance = scatter / (w.sum() - (w @ w) / w.sum())  # np.cov's unbiased weighted estimate
    covariance += 1e-6 * max(float(np.trace(covariance)) / covariance.shape[0], 1e-6) * np.eye(covariance.shape[0])
    return mean, np.linalg.inv(covariance)
