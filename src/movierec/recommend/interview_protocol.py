"""The interview protocol: which way of choosing questions teaches the model most about a new person?

Users are held out of training exactly as in the cold-start protocol (``data.split.holdout_users``); the run's
configuration is trained on the rest. Each strategy then interviews each held-out user, one question at a time:
the answer is the user's real rating if they rated the movie, else "not seen". After ``k`` questions the rated
answers are folded in (no retraining) and the user's other ratings are scored: RMSE of the predicted stars, and
NDCG@10 / recall@10 of the top 10 by rank score (relevant: a rating >= 4). So that every strategy is scored on
the same ratings and lists, every movie that any strategy asked this user about by question ``k`` is left out
of the scored ratings and of the lists.

The strategies, side by side in ``STRATEGIES``, ask among the same movies (known to the model, at least
``MIN_RATINGS`` training ratings): ``popular`` (most rated first), ``fixed`` (today's onboarding list,
``recommend.coldstart.choose_onboarding``), ``random`` (uniformly, seeded per user) and ``adaptive``
(``recommend.interview.Interviewer``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import holdout_users
from movierec.errors import MovieRecError
from movierec.evaluate.coldstart import top_allowed
from movierec.evaluate.metrics import ranking_metrics, rmse
from movierec.models.factors import FactorModel
from movierec.recommend.catalog import Catalog
from movierec.recommend.coldstart import choose_onboarding
from movierec.recommend.interview import Answer, Interviewer
from movierec.train.driver import fit

DEFAULT_QUESTIONS = (5, 10, 15)
MIN_RATINGS = 10
"""Movies with fewer training ratings are never asked about (by any strategy)."""


@dataclass(frozen=True)
class InterviewOptions:
    """How the protocol holds users out and how many questions it asks."""

    questions: tuple[int, ...] = DEFAULT_QUESTIONS
    holdout_fraction: float = 0.2
    seed: int = 0
    k: int = 10
    relevance_threshold: float = 4.0

    def __post_init__(self) -> None:
        if not self.questions or any(isinstance(q, bool) or not isinstance(q, int) or q < 1 for q in self.questions):
            raise MovieRecError(
                f"--questions {self.questions!r} is not valid; give positive whole numbers like 5,10,15."
            )
        object.__setattr__(self, "questions", tuple(sorted(set(self.questions))))
        if not 0 < self.holdout_fraction < 1:
            raise MovieRecError(
                f"The hold-out fraction {self.holdout_fraction} is out of range; use a value in (0, 1)."
            )


@dataclass(frozen=True)
class Setting:
    """What every strategy may look at: the model's interviewer and the askable movies in fixed orders."""

    interviewer: Interviewer
    askable: np.ndarray  # item indices, most rated first
    onboarding: np.ndarray  # today's onboarding list, as long as the longest interview


Strategy = Callable[[Setting, Sequence[Answer], np.random.Generator], int | None]
"""The next movie to ask about (None when every askable movie was asked)."""


def _first_unasked(order: np.ndarray, answers: Sequence[Answer]) -> int | None:
    asked = {item for item, _ in answers}
    return next((int(item) for item in order if int(item) not in asked), None)


def _random(setting: Setting, answers: Sequence[Answer], rng: np.random.Generator) -> int | None:
    left = np.setdiff1d(setting.askable, [item for item, _ in answers])
    return int(rng.choice(left)) if left.size else None


def _adaptive(setting: Setting, answers: Sequence[Answer], rng: np.random.Generator) -> int | None:
    picks = setting.interviewer.next_questions(answers, 1)
    return picks[0] if picks else None


STRATEGIES: dict[str, Strategy] = {
    "popular": lambda setting, answers, rng: _first_unasked(setting.askable, answers),
    "fixed": lambda setting, answers, rng: _first_unasked(setting.onboarding, answers),
    "random": _random,
    "adaptive": _adaptive,
}


@dataclass(frozen=True)
class InterviewReport:
    """One row per (strategy, questions): ``strategy``, ``questions``, ``answered`` (mean rated answers per
    user), ``rmse``, ``ndcg@10``, ``recall@10``; and how many held-out users took part."""

    rows: list[dict[str, Any]]
    n_users: int
    n_askable: int
    options: InterviewOptions = field(default_factory=InterviewOptions)


def interview_protocol(
    config: Any, dataset: Dataset, options: InterviewOptions, progress: bool = False
) -> InterviewReport:
    """Hold users out, train ``config`` on the rest, and interview every held-out user with every strategy."""
    split = holdout_users(dataset.ratings, fraction=options.holdout_fraction, seed=options.seed)
    model = fit(config, dataset, split.train, progress=progress).model
    return score_interviews(model, Catalog(dataset.movies, split.train), split.train, split.test, options)


def score_interviews(
    model: FactorModel, catalog: Catalog, train: Ratings, held: Ratings, options: InterviewOptions
) -> InterviewReport:
    """The protocol for a fitted model (``held``: every rating of the held-out users)."""
    askable_mask = (catalog.counts >= MIN_RATINGS) & model.known_items()
    if not askable_mask.any():
        raise MovieRecError(f"No movie has {MIN_RATINGS} training ratings to ask about; use more data.")
    longest = max(options.questions)
    askable = np.flatnonzero(askable_mask)
    setting = Setting(
        Interviewer(model, catalog, askable_mask),
        askable[np.argsort(-catalog.counts[askable], kind="stable")],
        np.array(choose_onboarding(catalog, model.params.item_factors, longest, askable_mask), np.int64),
    )
    listable = train.item_counts() > 0
    tallies = {(name, k): _Tally() for name in STRATEGIES for k in options.questions}
    order = np.argsort(held.users, kind="stable")
    users, starts = np.unique(held.users[order], return_index=True)
    for user, own in zip(users, np.split(order, starts[1:]), strict=True):
        stars = dict(zip(held.items[own].tolist(), held.ratings[own].tolist(), strict=True))
        interviews = {
            name: _interview(strategy, setting, stars, longest, np.random.default_rng([options.seed, int(user)]))
            for name, strategy in STRATEGIES.items()
        }
        for k in options.questions:
            asked = {item for answers in interviews.values() for item, _ in answers[:k]}
            rest = np.array([item for item in stars if item not in asked], np.int64)
            if rest.size == 0:
                continue
            allowed = listable.copy()
            allowed[list(asked)] = False
            remaining = _Remaining(rest, np.array([stars[item] for item in rest]), allowed)
            for name, answers in interviews.items():
                tallies[name, k].add(setting.interviewer, answers[:k], remaining, options)
    rows = [tally.row(name, k, options.k) for (name, k), tally in tallies.items()]
    rows.sort(key=lambda row: (row["questions"], list(STRATEGIES).index(row["strategy"])))
    return InterviewReport(rows, int(users.size), int(askable.size), options)


def _interview(
    strategy: Strategy, setting: Setting, stars: dict[int, float], length: int, rng: np.random.Generator
) -> list[Answer]:
    """``length`` questions, each answered with the user's rating of the movie, or "not seen"."""
    answers: list[Answer] = []
    for _ in range(length):
        item = strategy(setting, answers, rng)
        if item is None:
            break
        answers.append((item, stars.get(item)))
    return answers


@dataclass(frozen=True)
class _Remaining:
    """A user's ratings that no strategy asked about by question k, and the movies their lists may hold."""

    items: np.ndarray
    stars: np.ndarray
    allowed: np.ndarray  # bool [n_items]: movies with training ratings that no strategy asked about


@dataclass
class _Tally:
    """One strategy's scores at one number of questions, gathered user by user."""

    answered: list[int] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    predicted: list[np.ndarray] = field(default_factory=list)
    top: list[np.ndarray] = field(default_factory=list)
    relevant: list[np.ndarray] = field(default_factory=list)

    def add(
        self, interviewer: Interviewer, answers: Sequence[Answer], remaining: _Remaining, options: InterviewOptions
    ) -> None:
        """Fold the answers in and score the user's remaining ratings and top list."""
        model, user = interviewer.model, interviewer.fold_in(answers)
        self.answered.append(sum(stars is not None for _, stars in answers))
        self.truth.append(remaining.stars)
        # movies without training ratings get the mean plus the user's bias (the others are all allowed)
        self.predicted.append(model.predict_for(user, remaining.items, known=remaining.allowed))
        hits = remaining.items[remaining.stars >= options.relevance_threshold]
        if hits.size:
            self.relevant.append(hits)
            self.top.append(top_allowed(model.rank_for(user), remaining.allowed, options.k))

    def row(self, strategy: str, questions: int, k: int) -> dict[str, Any]:
        at = f"@{k}"
        ranked = ranking_metrics(np.array(self.top), self.relevant, k) if self.relevant else {}
        return {
            "strategy": strategy,
            "questions": questions,
            "answered": float(np.mean(self.answered)) if self.answered else 0.0,
            "rmse": rmse(np.concatenate(self.predicted), np.concatenate(self.truth)) if self.truth else None,
            f"ndcg{at}": ranked.get(f"ndcg{at}"),
            f"recall{at}": ranked.get(f"recall{at}"),
        }
