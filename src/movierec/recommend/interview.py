"""The adaptive interview: which movie to ask a new person about next, given their answers so far.

A new person's ``x = [bias, factors]`` is folded in by least squares under the population prior
(``FactorModel.fold_in_system``), so after the rated answers its posterior covariance is ``σ² S`` with
``S = (P + Σ d_a d_aᵀ)⁻¹``, ``d_j = [1, q_j]`` and ``P`` the prior's precision (the fold-in's penalty). Stars
for movie ``j`` would remove ``½ log(1 + d_jᵀ S d_j)`` of the entropy of ``x`` (D-optimal design); "I haven't
seen it" removes none. A question's value is the expected information, ``P(seen j) · log(1 + d_jᵀ S d_j)``.
(The expected fall of the catalogue's rating variance, ``d_jᵀ S W S d_j / (1 + d_jᵀ S d_j)``, was tried too:
it chose less well on a validation split of training users; see ``benchmarks/interview.py``.)

``P(seen j)`` is the popularity base rate ``count_j / n_users``, moved by as much as the answers move the
person's "likely to watch" score (``models/watch.py``): their watch vector is folded in from every answer, a
rated movie with its taste target and an unseen one as an observed zero of weight ``NOT_SEEN_WEIGHT``, starting
from the trained users' mean vector, so "not seen" lowers the odds of the movies watched alike and changes the
next question. The same fold-in gives the list after an interview (``Recommender.recommend_after_interview``). Models
without a watch part use the base rate alone. The SVD++ term moves with the set of rated movies, not with the
stars, so it is left out of the information (it stays in the fold-in of the answers).

Several questions at once are chosen greedily, each counted as rated with the weight of its chance of being
seen, so a list does not ask the same thing twice. ``Interviewer`` precomputes what depends on the model alone;
a question costs one product over the candidate movies and one over their watch vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from movierec.models.factors import FactorModel, UserVector
from movierec.models.watch import fold_in_watch
from movierec.recommend.catalog import Catalog

Answer = tuple[int, float | None]
"""(item index, stars); stars None: "I haven't seen it"."""

WATCH_GAIN = 1.0
"""How far a change of the "likely to watch" score moves the chance of having seen a movie: the score's own
scale (targets 1 and 0). 0.5 and 2 chose no better on the validation split (benchmarks/interview.py)."""
NOT_SEEN_WEIGHT = 4.0
"""The weight of a "not seen" answer as an observed zero of the watch fold-in. The fit already counts every movie
a person did not rate as a zero of weight ``watch_unobserved`` (1 by default); an answer is surer than that. On
the validation split (benchmarks/interview.py) NDCG@10 at k = 10 rose with it up to 4 for every strategy (adaptive
0.3045 at 1, 0.3060 at 2, 0.3075 at 4, 0.3056 at 8, 0.3002 at 16), RMSE unchanged."""
SEEN_RANGE = (1e-4, 0.999)
"""The chance of having seen a movie is kept inside this range."""


class Interviewer:
    """Chooses questions for one model over the movies ``candidates`` (bool [n_items]) marks as askable."""

    def __init__(self, model: FactorModel, catalog: Catalog, candidates: np.ndarray) -> None:
        p = model.params
        self.model = model
        self.items = np.flatnonzero(candidates)
        self._position = np.full(p.n_items, -1, np.int64)
        self._position[self.items] = np.arange(self.items.size)
        self._design = _design(p.item_factors, self.items)
        precision = model.fold_in_system(np.empty(0, np.int64), np.empty(0)).lhs  # the prior's, over the noise's
        self._prior_covariance = np.linalg.inv(precision)
        spread = self._design @ self._prior_covariance.astype(np.float32)
        self._prior_variance = np.einsum("nd,nd->n", spread, self._design, dtype=np.float64)
        users = max(int(model.known_users().sum()), 1)
        self._base_rate = np.clip(catalog.counts[self.items] / users, *SEEN_RANGE)
        self._watch = _Watch(model, self.items) if p.has_watch else None

    def next_questions(self, answers: Sequence[Answer], n: int) -> list[int]:
        """Up to ``n`` item indices to ask next, the best first; never one already answered."""
        rated = [(item, stars) for item, stars in answers if stars is not None]
        usable, _ = self.model.usable_ratings(np.array([item for item, _ in rated], np.int64), np.zeros(len(rated)))
        observed = _design(self.model.params.item_factors, usable).astype(np.float64)
        uncertainty = _Uncertainty(self._design, self._prior_covariance, self._prior_variance, observed)
        seen = self.seen_probability(answers)
        free = np.ones(self.items.size, bool)
        asked = self._position[np.array([item for item, _ in answers], np.int64)]
        free[asked[asked >= 0]] = False
        picks: list[int] = []
        for _ in range(min(n, int(free.sum()))):
            best = int(np.argmax(np.where(free, seen * uncertainty.gain(), -np.inf)))
            picks.append(int(self.items[best]))
            free[best] = False
            uncertainty.observe(best, float(seen[best]))
        return picks

    def fold_in(self, answers: Sequence[Answer]) -> UserVector:
        """The person the answers describe: the model's fold-in of the rated answers, with the watch vector
        folded in from every answer (an unseen movie as an observed zero) from the typical person's."""
        rated = [(item, stars) for item, stars in answers if stars is not None]
        items = np.array([item for item, _ in rated], np.int64)
        user = self.model.fold_in(items, np.array([stars for _, stars in rated], np.float64))
        return user if self._watch is None else replace(user, watch=self._watch.vector(answers))

    def seen_probability(self, answers: Sequence[Answer]) -> np.ndarray:
        """The chance that the person has seen each candidate movie (in ``self.items`` order)."""
        if self._watch is None or not answers:
            return self._base_rate
        return np.clip(self._base_rate + WATCH_GAIN * self._watch.shift(answers), *SEEN_RANGE)


class _Watch:
    """The person's "likely to watch" vector, folded in from the answers starting at the trained users' mean:
    the ridge of ``fold_in_watch`` pulls towards that mean instead of zero."""

    def __init__(self, model: FactorModel, items: np.ndarray) -> None:
        p = model.params
        self.model = model
        self.rows = np.ascontiguousarray(p.watch_item[items], dtype=np.float32)
        users = p.watch_user[model.known_users()] if p.watch_user.shape[0] == p.n_users else p.watch_user
        self.mean = users.mean(axis=0, dtype=np.float64) if users.size else np.zeros(p.watch_item.shape[1])
        self.start = self.rows @ self.vector([])

    def shift(self, answers: Sequence[Answer]) -> np.ndarray:
        """How the answers move each candidate's watch score from the typical person's."""
        return np.asarray(self.rows @ self.vector(answers) - self.start, np.float64)

    def vector(self, answers: Sequence[Answer]) -> np.ndarray:
        """float32 [watch dim]: the watch vector the answers give (a "not seen" weighs ``NOT_SEEN_WEIGHT``)."""
        p = self.model.params
        rated = np.array([item for item, stars in answers if stars is not None], np.int64)
        stars = np.array([stars for _, stars in answers if stars is not None], np.float64)
        unseen = np.array([item for item, stars in answers if stars is None], np.int64)
        return fold_in_watch(
            p.watch_item, rated, stars, self.model.taste, p.watch_reg, p.watch_unobserved, self.model.watch_gram,
            mean=self.mean, unseen=unseen, unseen_weight=NOT_SEEN_WEIGHT,
        )  # fmt: skip


class _Uncertainty:
    """The posterior covariance ``C`` of a person's vector (over the noise variance) after some observed rows,
    and ``x_j C x_j`` for each candidate row ``x_j``.

    From the prior's (computed once per model) by the Woodbury identity: with the observed rows ``D``,
    ``C = C₀ - C₀Dᵀ (I + D C₀ Dᵀ)⁻¹ D C₀``, so a question costs products over the candidates as wide as the
    answers so far rather than as the vector."""

    def __init__(
        self, rows: np.ndarray, prior_covariance: np.ndarray, prior_variance: np.ndarray, observed: np.ndarray
    ) -> None:
        self.rows = rows
        self.covariance = prior_covariance.copy()
        self.variance = prior_variance.copy()
        if observed.shape[0]:
            reach = prior_covariance @ observed.T  # [dim, answers]
            inner = np.linalg.inv(np.eye(observed.shape[0]) + observed @ reach)
            across = rows @ reach.astype(np.float32)  # [candidates, answers]
            fall = np.einsum("na,na->n", across @ inner.astype(np.float32), across, dtype=np.float64)
            self.variance = np.maximum(self.variance - fall, 0.0)
            self.covariance -= reach @ inner @ reach.T

    def gain(self) -> np.ndarray:
        """Twice the information (nats) that observing each row once would bring: ``log(1 + x_j C x_j)``."""
        return np.log1p(self.variance)

    def observe(self, index: int, weight: float) -> None:
        """Count row ``index`` as observed with ``weight`` (a rank-one update: one product over the rows)."""
        u = self.covariance @ self.rows[index].astype(np.float64)
        along = (self.rows @ u.astype(np.float32)).astype(np.float64)
        alpha = weight / (1.0 + weight * self.variance[index])
        self.variance = np.maximum(self.variance - alpha * along**2, 0.0)
        self.covariance -= alpha * np.outer(u, u)


def next_questions(
    model: FactorModel, catalog: Catalog, answers: Sequence[Answer], n: int, candidates: np.ndarray
) -> list[int]:
    """One-off form of ``Interviewer(model, catalog, candidates).next_questions(answers, n)`` (build an
    ``Interviewer`` once to ask many questions of one model)."""
    return Interviewer(model, catalog, candidates).next_questions(answers, n)


def _design(item_factors: np.ndarray, items: np.ndarray) -> np.ndarray:
    """float32 [len(items), dim + 1]: a column of ones, then the movies' factors."""
    rows = np.ones((items.size, item_factors.shape[1] + 1), np.float32)
    rows[:, 1:] = item_factors[items]
    return rows
