"""The ranking score's weights, chosen on validation data carved out of the training ratings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from movierec.data.ratings import Ratings
from movierec.evaluate.candidates import ranked_top
from movierec.evaluate.protocol import RankingSettings, candidate_chunks, evaluate_ranked
from movierec.models.factors import FactorModel

RANK_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 1000.0)
"""Popularity weights tried for a model without the "likely to watch" part."""
WATCH_RANK_WEIGHTS = (-0.1, 0.0, 0.25, 1.0)
"""Popularity weights tried beside the "likely to watch" part, which already knows what is watched: a negative
one is a popularity penalty (it lets less-watched movies that fit the person into the list). A stronger one is
a trap for new users: their few ratings make a weak "likely to watch" vector, the penalty outweighs it, and
the list fills with barely rated movies (-0.25 did that on ml-latest-small: median 16 ratings a movie)."""
WATCH_WEIGHTS = (1.0, 2.0, 3.0, 4.0, 6.0, 1000.0)
"""Weights of the "likely to watch" part tried (1000: that part alone, the rating breaking ties)."""


ROW_BLOCK = 1 << 18
"""Most scores in one block of rows (1 MB in float32): every pair's matrix of a block is made and ranked while the
block's parts stay in the core's cache. At ML-25M size (71 users x 59,047 movies a chunk, 32 pairs, one thread):
0.21 s CPU a chunk for whole-chunk matrices, 0.14 s in blocks of 4 users."""
NDCG_TOLERANCE = 0.02
"""Weights whose validation NDCG@10 is within this share of the best count as accurate; among them the one whose
lists are the most personal (personalization@10: different people get different lists) wins."""


def choose_rank_weight(
    model: FactorModel, train: Ratings, valid: Ratings, genres: np.ndarray | None = None, max_users: int = 2000
) -> FactorModel:
    """Pick the weights of the ranking score's popularity prior and "likely to watch" part on validation data
    (never the test set), for people and not only for a hold-out: among the weights whose NDCG@10 is within
    ``NDCG_TOLERANCE`` of the best, the one whose lists are the most personal (highest personalization@10, which
    goes with catalog coverage). ``genres`` (movies x genres) adds genre miscalibration to what is measured; it
    breaks exact ties in personalization (lower wins)."""
    users = weight_users(valid, max_users)
    if users.size == 0:
        return model
    subset = valid.take(np.isin(valid.users, users))
    grid = [(w, 0.0) for w in RANK_WEIGHTS]
    if model.params.has_watch:
        grid += [(w, v) for w in WATCH_RANK_WEIGHTS for v in WATCH_WEIGHTS]
    settings = RankingSettings(genres=genres)
    ranked = _Grid(model, grid)
    results = evaluate_ranked(
        lambda users, k: ranked.rank(train, users, k, settings.chunk_size), train, subset, settings
    )
    scored = [(weights, r["ndcg@10"], _personal_first(r)) for weights, r in zip(grid, results, strict=True)]
    best_ndcg = max(ndcg for _, ndcg, _ in scored)
    accurate = [(rank, weights) for weights, ndcg, rank in scored if ndcg >= (1 - NDCG_TOLERANCE) * best_ndcg]
    chosen = min(accurate, key=lambda pair: pair[0])[1]  # min keeps the first of equals: grid order breaks ties
    return model.with_rank_weight(*chosen)


def weight_users(valid: Ratings, max_users: int = 2000) -> np.ndarray:
    """The validation users ``choose_rank_weight`` scores the weights on: those with a movie rated 4 or more, a
    seeded sample of ``max_users`` of them when there are more."""
    users = np.unique(valid.users[valid.ratings >= 4.0])
    if users.size > max_users:
        users = np.random.default_rng(0).choice(users, max_users, replace=False)
    return users.astype(np.int64)


class _Grid:
    """The rank scores of ``model`` under every weights pair of ``grid`` (``FactorModel.rank_scores`` with those
    weights, to the last bit), from one product per part and chunk of users: the normalised predicted rating,
    then the popularity prior and the "likely to watch" score added with each pair's weights."""

    def __init__(self, model: FactorModel, grid: list[tuple[float, float]]) -> None:
        self.params = model.params
        self.plain = model.with_rank_weight(0.0, 0.0)
        self.grid = grid
        prior = self.params.item_prior[None, :] if self.params.item_prior.size else None
        self.prior_terms = {weight: weight * prior for weight, _ in grid if weight and prior is not None}

    def parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The rank score without the weighted terms, and the "likely to watch" score (None without one)."""
        p = self.params
        return self.plain.rank_scores(users), p.watch_user[users] @ p.watch_item.T if p.has_watch else None

    def scores(self, rating: np.ndarray, watch: np.ndarray | None) -> Iterator[np.ndarray]:
        """Each pair's rank scores from the ``parts`` of some users, in grid order, each valid until the next is
        asked for: the popularity term added once per run of pairs with the same weight, and the "likely to
        watch" score scaled once per watch weight."""
        with_prior, summed, scaled = np.empty_like(rating), np.empty_like(rating), {}
        base, current = rating, None
        for weight, watch_weight in self.grid:
            if weight != current:
                prior = self.prior_terms.get(weight)
                base = rating if prior is None else np.add(rating, prior, out=with_prior)
                current = weight
            if watch_weight and watch is not None:
                if watch_weight not in scaled:
                    scaled[watch_weight] = np.multiply(watch, watch_weight)
                yield np.add(base, scaled[watch_weight], out=summed)
            else:
                yield base

    def rank(self, train: Ratings, users: np.ndarray, k: int, chunk_size: int) -> list[np.ndarray]:
        """Each pair's top-k lists of ``users`` (``rank_candidates``'s): the parts of a chunk once, with the
        non-candidates at ``-inf`` (which no weighted term undoes), then every pair's lists block by block."""
        topks = [np.empty((len(users), k), dtype=np.int64) for _ in self.grid]
        for chunk in candidate_chunks(train, users, chunk_size):
            rating, watch = self.parts(chunk.users)
            chunk.exclude(rating)
            step = max(1, ROW_BLOCK // max(1, rating.shape[1]))
            for first in range(0, chunk.users.size, step):
                rows = slice(first, first + step)
                block = self.scores(rating[rows], None if watch is None else watch[rows])
                at = slice(chunk.start + first, chunk.start + min(first + step, chunk.users.size))
                for topk, scores in zip(topks, block, strict=True):
                    topk[at] = ranked_top(scores, k)
        return topks


def _personal_first(result: dict[str, float]) -> tuple[float, float]:
    """Sort key of an accurate enough set of weights: most personal lists first, then the best calibrated."""
    return -result.get("personalization@10", 0.0), result.get("miscalibration@10", 0.0)
