"""Why a movie is recommended, in numbers a person can check.

Every predicted rating splits into ``global mean + user bias + movie bias + interaction`` (before the link:
clipping to the scale, or the sigmoid of ``sigmoid-mf``), and every rank score into the part that comes from
the predicted rating, the part that comes from the popularity prior ("how likely anyone is to watch it") and
the part that comes from the "likely to watch" component (how likely *this* person is to watch it, learned
from which movies people chose to rate).

The interaction is then traced back to the user's own ratings. Fold-in solves the user by ridge regression,
``s = (DᵀD + P)⁻¹ Dᵀ t`` with design rows ``d_j = [1, q_j]`` and targets ``t_j = r_j - mean - b_j``, so the
interaction with movie ``i``, ``q_i · s``, is exactly ``Σ_j ([0, q_i] (DᵀD + P)⁻¹ d_j) t_j``: one additive share
per rated movie. A rating pushes a recommendation up when the two movies sit close in factor space (through
the ridge kernel) and the user rated it above what the biases expect ("liked"), or when they sit far apart and
the user rated it below ("disliked"). For a folded-in user the shares add up
to the interaction exactly; for a trained user they are the same view of their training ratings and add up
to the interaction of the fold-in from those ratings, which is close to, not equal to, the trained one.
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


def rating_parts(model: FactorModel, user: UserVector, items: np.ndarray) -> dict[str, np.ndarray]:
    """``global_mean``, ``user_bias``, ``movie_bias``, ``interaction`` (raw, before the link) per item."""
    p = model.params
    items = np.asarray(items, dtype=np.int64)
    interaction = p.item_factors[items] @ user.factors if p.dim else np.zeros(items.size)
    return {
        "global_mean": np.full(items.size, p.global_mean, dtype=np.float64),
        "user_bias": np.full(items.size, user.bias, dtype=np.float64),
        "movie_bias": p.item_bias[items].astype(np.float64),
        "interaction": np.asarray(interaction, dtype=np.float64),
    }


def influence(model: FactorModel, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[len(items), len(rated)]: stars each rated movie adds to each item's interaction under fold-in.

    Rows sum to the interaction ``q_i · u`` of the user folded in from (``rated``, ``ratings``), implicit
    feedback term included (each rated movie's share of it is added to its column), less ``prior_part``:
    what the typical user the fold-in starts from contributes.
    """
    p = model.params
    items = np.asarray(items, dtype=np.int64)
    rated, ratings = model.usable_ratings(rated, ratings)
    if p.dim == 0 or rated.size == 0 or items.size == 0:
        return np.zeros((items.size, rated.size))
    system = model.fold_in_system(rated, ratings)
    q_items = p.item_factors[items].astype(np.float64)
    solved = np.linalg.solve(system.lhs, system.design.T)  # [(dim + 1), n_rated]
    shares = (q_items @ solved[1:]) * system.target[None, :]
    if p.implicit is not None:
        shares += q_items @ p.implicit[rated].T.astype(np.float64) / np.sqrt(rated.size)
    return np.asarray(shares)


def prior_part(model: FactorModel, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[len(items)]: the part of each item's interaction that the fold-in's prior gives, whatever was rated."""
    p = model.params
    items = np.asarray(items, dtype=np.int64)
    rated, ratings = model.usable_ratings(rated, ratings)
    if p.dim == 0 or rated.size == 0 or items.size == 0:
        return np.zeros(items.size)
    system = model.fold_in_system(rated, ratings)
    from_prior = np.linalg.solve(system.lhs, system.prior_rhs)
    return np.asarray(p.item_factors[items].astype(np.float64) @ from_prior[1:])


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
    p = model.params
    parts = rating_parts(model, user, items)
    shares = influence(model, rated, ratings, items)
    rated_kept, ratings_kept = model.usable_ratings(rated, ratings)
    watch_parts = p.watch_weight * model.watch_scores(user.watch, items)
    out = []
    for row, item in enumerate(np.asarray(items, dtype=np.int64)):
        because = _because(model, catalog, rated_kept, ratings_kept, shares[row])
        rating_part, popularity_part = score_parts(model, int(item), float(predicted[row]))
        watch_part = float(watch_parts[row])
        values = {key: float(parts[key][row]) for key in parts}
        out.append(
            Explanation(
                kind="personal",
                **values,
                predicted_rating=float(predicted[row]),
                rating_part=rating_part,
                popularity_part=popularity_part,
                watch_part=watch_part,
                because=because,
                text=_personal_text(
                    model, values, float(predicted[row]), (rating_part, popularity_part, watch_part), because
                ),
                summary=_reasons(because) or _terms(values),
            )
        )
    return out


def explain_popular(model: FactorModel, catalog: Catalog, item: int, predicted: float, score: float) -> Explanation:
    """Explanation of a fallback pick: no personal signal, only the movie's own ratings."""
    p = model.params
    info = catalog.info(item)
    mean = f"{info.mean_rating:.2f}★" if info.mean_rating is not None else "no"
    return Explanation(
        kind="popular",
        global_mean=float(p.global_mean),
        user_bias=0.0,
        movie_bias=float(p.item_bias[item]),
        interaction=0.0,
        predicted_rating=float(predicted),
        rating_part=float(score),
        popularity_part=0.0,
        because=(),
        text=f"popular and well rated: {mean} average from {info.n_ratings:,} ratings",
        summary=f"popular: {mean} from {info.n_ratings:,} ratings",
    )


def score_parts(model: FactorModel, item: int, predicted: float) -> tuple[float, float]:
    """(rating part, popularity part) of the rank score, as ``FactorModel.to_rank_scores`` adds them."""
    p = model.params
    rating_part = (predicted - p.low) / (p.high - p.low)
    prior = float(p.item_prior[item]) if p.item_prior.size else 0.0
    return float(rating_part), float(p.rank_weight * prior) if p.rank_weight else 0.0


def _because(
    model: FactorModel, catalog: Catalog, rated: np.ndarray, ratings: np.ndarray, shares: np.ndarray
) -> tuple[Because, ...]:
    """The rated movies with the largest positive shares, most first."""
    if shares.size == 0:
        return ()
    p = model.params
    residual = model._inverse_link(ratings) - p.global_mean - p.item_bias[rated]
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
    score_split: tuple[float, float, float],
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
    rating_part, popularity_part, watch_part = score_split
    score = rating_part + popularity_part + watch_part
    text = f"{rating} · score {score:.2f} = {rating_part:.2f} rating + {popularity_part:.2f} popularity"
    if watch_part:
        text += f" + {watch_part:.2f} likely to watch"
    reasons = _reasons(because)
    return f"{text} · {reasons}" if reasons else text
