"""Why a movie is recommended, in numbers a person can check.

Every predicted rating splits into ``global mean + user bias + movie bias + interaction`` (before the link:
clipping to the scale, or the sigmoid of ``sigmoid-mf``), and every rank score into the part that comes from
the predicted rating, the part that comes from the popularity prior ("how likely anyone is to watch it") and
the part that comes from the "likely to watch" component (how likely *this* person is to watch it, learned
from which movies people chose to rate). ``FactorModel.rating_parts`` and ``FactorModel.rank_parts`` give them.

The interaction is then traced back to the user's own ratings (``FactorModel.interaction_shares``): one
additive share per rated movie. A rating pushes a recommendation up when the two movies sit close in factor
space (through the fold-in's ridge kernel) and the user rated it above what the biases expect ("liked"), or
when they sit far apart and the user rated it below ("disliked"). For a folded-in user the shares (and the
prior's part) add up to the interaction exactly; for a trained user they are the same view of their training
ratings and add up to the interaction of the fold-in from those ratings, which is close to, not equal to, the
trained one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from movierec.models.factors import FactorModel, UserVector
from movierec.recommend.catalog import Catalog

TOP_BECAUSE = 3
MIN_SHARE = 0.005  # stars: smaller pushes are not worth naming


@dataclass(frozen=True)
class Because:
    """One of the user's own ratings and how many stars it adds to a recommendation's interaction term."""

    movieId: int
    title: str
    rating: float
    contribution: float
    liked: bool  # rated above what the biases expect (else below: a dislike that pushes this movie up)


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
        values["because"] = [asdict(b) for b in self.because]
        return values


def explain_personal(
    model: FactorModel,
    catalog: Catalog,
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
    shares = model.interaction_shares(rated, ratings, items)
    rated_kept, ratings_kept = model.usable_ratings(rated, ratings)
    out = []
    for row in range(items.size):
        because = _because(model, catalog, rated_kept, ratings_kept, shares[row])
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


def _because(
    model: FactorModel, catalog: Catalog, rated: np.ndarray, ratings: np.ndarray, shares: np.ndarray
) -> tuple[Because, ...]:
    """The rated movies with the largest positive shares, most first."""
    if shares.size == 0:
        return ()
    residual = model.bias_residuals(rated, ratings)
    order = np.argsort(-shares, kind="stable")[:TOP_BECAUSE]
    return tuple(
        Because(
            int(catalog.movie_ids[rated[j]]),
            catalog.titles[rated[j]],
            float(ratings[j]),
            round(float(shares[j]), 4),
            bool(residual[j] >= 0),
        )
        for j in order
        if shares[j] >= MIN_SHARE
    )


def _terms(values: dict[str, float]) -> str:
    return (
        f"{values['global_mean']:.2f} avg {values['user_bias']:+.2f} you "
        f"{values['movie_bias']:+.2f} movie {values['interaction']:+.2f} taste"
    )


def _reasons(because: tuple[Because, ...]) -> str:
    liked = [f"{b.title} ({b.rating:g}★)" for b in because if b.liked]
    disliked = [f"{b.title} ({b.rating:g}★)" for b in because if not b.liked]
    reasons = [f"liked {', '.join(liked)}"] if liked else []
    reasons += [f"disliked {', '.join(disliked)}"] if disliked else []
    return "you " + "; ".join(reasons) if reasons else ""


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
