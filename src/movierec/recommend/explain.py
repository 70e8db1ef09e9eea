"""Why a movie is recommended, in numbers a person can check.

Every predicted rating splits into ``global mean + user bias + movie bias + interaction`` (before the link:
clipping to the scale, or the sigmoid of ``sigmoid-mf``), and every rank score into the part that comes from
the predicted rating, the part that comes from the popularity prior ("how likely anyone is to watch it") and
the part that comes from the "likely to watch" component (how likely *this* person is to watch it, learned
from which movies people chose to rate). ``FactorModel.rating_parts`` and ``FactorModel.rank_parts`` give them.

The interaction is then traced back to the user's own ratings (``FactorModel.interaction_shares``): one
additive share per rated movie. For a folded-in user the shares (and the prior's part) add up to the interaction
exactly; for a trained user they are the same view of their training ratings and add up to the interaction of
the fold-in from those ratings, which is close to, not equal to, the trained one.

A rating becomes a reason, "because you liked X" or "because you disliked Y", when all of these hold:

* the person liked or disliked it (``Sentiment``): liked means at least ``MARGIN`` of the scale above their own
  mean rating, shrunk towards everyone's mean by ``models.watch.MEAN_PRIOR`` pseudo-ratings, and in the upper
  half of the scale (3★ and up on 0.5-5★); disliked means at least ``MARGIN`` below that mean and under the top
  quarter of the scale (3.5★ and down). So a reason never says "you liked" a movie rated 2.5★ or less, nor "you
  disliked" one rated 4★ or more, and a rating near the person's own mean is never named;
* it pushes this movie up (its share is at least ``MIN_SHARE`` stars);
* it pushes the way the feeling says (``rating_influence``): rating a liked movie higher would raise this one
  (people who like X like this), rating a disliked one lower would raise it (people who dislike Y like this).

At most ``TOP_BECAUSE`` reasons are named, the strongest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from movierec.models.factors import FactorModel, UserVector
from movierec.models.watch import shrunk_means
from movierec.recommend.catalog import Catalog

TOP_BECAUSE = 3
MIN_SHARE = 0.005  # stars: smaller pushes are not worth naming
MARGIN = 0.05
"""Share of the rating scale (0.225★ on 0.5-5★) a rating must sit above or below the person's mean to count."""
LIKED_ABOVE = 0.5
"""A liked rating lies above this share of the scale (2.75★ on 0.5-5★)."""
DISLIKED_BELOW = 0.75
"""A disliked rating lies below this share of the scale (3.875★ on 0.5-5★): ratings lean high (everyone's mean
is about 3.5★), so a 3 or 3.5★ can be a dislike for a generous rater, a 4★ never is."""

Feeling = Literal["liked", "disliked"]


@dataclass(frozen=True)
class Sentiment:
    """Which of one person's ratings they liked and which they disliked (the rule in the module docstring)."""

    low: float  # the rating scale
    high: float
    mean_rating: float  # everyone's mean rating, in stars

    def reference(self, ratings: np.ndarray) -> float:
        """The person's own mean rating, shrunk towards everyone's (``models.watch.MEAN_PRIOR`` pseudo-ratings: a
        person with a few ratings, all 5★, still "liked" them)."""
        ratings = np.asarray(ratings, dtype=np.float64).ravel()
        return float(shrunk_means(np.zeros(ratings.size, np.int64), ratings, 1, self.mean_rating)[0])

    def of(self, ratings: np.ndarray) -> np.ndarray:
        """int8 per rating of one person: 1 liked, -1 disliked, 0 neither."""
        ratings = np.asarray(ratings, dtype=np.float64)
        span = self.high - self.low
        place = (ratings - self.low) / span
        reference = self.reference(ratings)
        liked = (ratings >= reference + MARGIN * span) & (place > LIKED_ABOVE)
        disliked = (ratings <= reference - MARGIN * span) & (place < DISLIKED_BELOW)
        return liked.astype(np.int8) - disliked.astype(np.int8)


@dataclass(frozen=True)
class Because:
    """One of the user's own ratings, how many stars it adds to a recommendation's interaction term, and whether
    it is there because they liked or because they disliked that movie."""

    movieId: int
    title: str
    rating: float
    contribution: float
    reason: Feeling

    @property
    def liked(self) -> bool:
        return self.reason == "liked"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "liked": self.liked}


@dataclass(frozen=True)
class Explanation:
    """The parts of one recommendation's predicted rating and rank score, and a one-line summary."""

    kind: Literal["personal", "popular"]
    global_mean: float
    user_bias: float
    movie_bias: float
    interaction: float
    predicted_rating: float
    rating_part: float
    popularity_part: float
    because: tuple[Because, ...]
    text: str  # every number above in one line
    summary: str  # the short reason a table shows
    watch_part: float = 0.0  # the "likely to watch" part of the rank score

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["because"] = [b.to_dict() for b in self.because]
        return values


def explain_personal(
    model: FactorModel,
    catalog: Catalog,
    sentiment: Sentiment,
    user: UserVector,
    items: np.ndarray,
    predicted: np.ndarray,
    rated: np.ndarray,
    ratings: np.ndarray,
) -> list[Explanation]:
    """Explanations of a personal list: ``items`` with their ``predicted`` stars, for a user who rated
    ``rated`` with ``ratings``."""
    items = np.asarray(items, dtype=np.int64)
    rating_parts = model.rating_parts(user, items)
    rank_parts = model.rank_parts(user, items, predicted)
    reasons = _candidates(model, sentiment, rated, ratings, items)
    out = []
    for row in range(items.size):
        because = _because(catalog, reasons, row)
        values = {key: float(part[row]) for key, part in rating_parts.items()}
        score_split = {key: float(part[row]) for key, part in rank_parts.items()}
        out.append(
            Explanation(
                kind="personal",
                **values,
                predicted_rating=float(predicted[row]),
                **score_split,
                because=because,
                text=_personal_text(model, values, float(predicted[row]), score_split, because),
                summary=_reasons(because) or _terms(values),
            )
        )
    return out


def rating_influence(model: FactorModel, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[len(items), len(usable rated)]: how far each item's interaction moves per unit of each rated movie's
    fold-in target (``FactorModel.interaction_shares`` without the target): above zero, rating that movie higher
    raises this one; below zero, rating it lower does."""
    system = model.fold_in_system(*model.usable_ratings(rated, ratings))
    q_items = model.params.item_factors[np.asarray(items, dtype=np.int64)].astype(np.float64)
    return np.asarray(q_items @ np.linalg.solve(system.lhs, system.design.T)[1:])


def explain_popular(model: FactorModel, catalog: Catalog, item: int, predicted: float, score: float) -> Explanation:
    """Explanation of a fallback pick: no personal signal, only the movie's own ratings."""
    info = catalog.info(item)
    mean = f"{info.mean_rating:.2f}★" if info.mean_rating is not None else "no"
    values = {key: float(part[0]) for key, part in model.rating_parts(model.unknown_user, np.array([item])).items()}
    return Explanation(
        kind="popular",
        **values,
        predicted_rating=float(predicted),
        rating_part=float(score),
        popularity_part=0.0,
        because=(),
        text=f"popular and well rated: {mean} average from {info.n_ratings:,} ratings",
        summary=f"popular: {mean} from {info.n_ratings:,} ratings",
    )


@dataclass(frozen=True)
class _Candidates:
    """A list's candidate reasons: the usable ratings, the person's feeling about each, and the stars each adds to
    each listed movie where that feeling and the direction of its push agree (0 elsewhere)."""

    rated: np.ndarray
    ratings: np.ndarray
    feelings: np.ndarray  # 1 liked, -1 disliked, 0 neither
    strength: np.ndarray  # [len(items), len(rated)]


def _candidates(
    model: FactorModel, sentiment: Sentiment, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray
) -> _Candidates:
    rated, ratings = model.usable_ratings(rated, ratings)
    feelings = sentiment.of(ratings)
    shares = model.interaction_shares(rated, ratings, items)
    agrees = (feelings != 0) & (np.sign(rating_influence(model, rated, ratings, items)) == feelings)
    return _Candidates(rated, ratings, feelings, np.where(agrees & (shares >= MIN_SHARE), shares, 0.0))


def _because(catalog: Catalog, reasons: _Candidates, row: int) -> tuple[Because, ...]:
    """The named reasons of the ``row``-th listed movie: the strongest liked and the strongest disliked one where
    both apply, then the next strongest, up to ``TOP_BECAUSE``; listed strongest first."""
    strength = reasons.strength[row]
    order = [j for j in np.argsort(-strength, kind="stable").tolist() if strength[j] > 0]
    strongest_of_each = {int(reasons.feelings[j]): j for j in reversed(order)}.values()
    others = [j for j in order if j not in strongest_of_each]
    chosen = set([*strongest_of_each, *others][:TOP_BECAUSE])
    return tuple(
        Because(
            int(catalog.movie_ids[reasons.rated[j]]),
            catalog.titles[reasons.rated[j]],
            float(reasons.ratings[j]),
            round(float(strength[j]), 4),
            "liked" if reasons.feelings[j] > 0 else "disliked",
        )
        for j in order
        if j in chosen
    )


def _terms(values: dict[str, float]) -> str:
    return (
        f"{values['global_mean']:.2f} avg {values['user_bias']:+.2f} you "
        f"{values['movie_bias']:+.2f} movie {values['interaction']:+.2f} taste"
    )


def reason_lines(because: tuple[Because, ...]) -> list[str]:
    """["because you liked A (5★), B (4★)", "because you disliked C (1★)"]: one line per feeling, the feeling of
    the strongest reason first."""
    titles: dict[Feeling, list[str]] = {}
    for b in because:
        titles.setdefault(b.reason, []).append(f"{b.title} ({b.rating:g}★)")
    return [f"because you {reason} {', '.join(named)}" for reason, named in titles.items()]


def _reasons(because: tuple[Because, ...]) -> str:
    return "; ".join(reason_lines(because))


def _personal_text(
    model: FactorModel,
    values: dict[str, float],
    predicted: float,
    score_split: dict[str, float],
    because: tuple[Because, ...],
) -> str:
    p = model.params
    terms = _terms(values)
    if p.link == "sigmoid":
        rating = f"{predicted:.1f}★ from sigmoid({terms})"
    else:
        raw = sum(values.values())
        capped = f", capped at {p.high:g}" if raw > p.high else (f", raised to {p.low:g}" if raw < p.low else "")
        rating = f"{predicted:.1f}★ = {terms}{capped}"
    rating_part, popularity_part = score_split["rating_part"], score_split["popularity_part"]
    score = sum(score_split.values())
    text = f"{rating} · score {score:.2f} = {rating_part:.2f} rating + {popularity_part:.2f} popularity"
    if score_split["watch_part"]:
        text += f" + {score_split['watch_part']:.2f} likely to watch"
    reasons = _reasons(because)
    return f"{text} · {reasons}" if reasons else text
