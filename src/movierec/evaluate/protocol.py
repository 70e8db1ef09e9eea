"""The evaluation protocol, written against plain callables so it depends on no model class.

* Rating accuracy: ``evaluate_ratings(predict, train, test)`` predicts every held-out rating (users or movies
  unknown to train included, left to the model's fallback) and reports RMSE and MAE.
* Top-k ranking: ``evaluate_ranking(score, train, test)`` ranks, for every test user with at least one
  relevant held-out movie (rating >= threshold), all movies that have a training rating and that the user did
  not rate in training, and reports precision, recall, NDCG, MAP and hit rate at k, and what people feel of the
  lists: catalogue coverage, personalization, popularity-stratified recall, genre miscalibration (given the
  movies' genres), novelty and average popularity of the recommended movies.
* Many scorers at once: ``evaluate_rankings`` (score matrices made together per chunk of users) and
  ``evaluate_ranked`` (any ``Ranker`` that makes the lists). A scorer that orders the movies the same way for
  every user (``item_order.ItemOrderedScore``: popularity, the baselines) is ranked without a score matrix.

Ties are broken by the lower movie index (``topk_items``), so the lists do not depend on how they are computed.
Train and test must share vocabularies (as every ``movierec.data.split`` function guarantees).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import DataError
from movierec.evaluate.candidates import Candidates, by_user, ranked_top
from movierec.evaluate.candidates import topk_items as topk_items
from movierec.evaluate.item_order import ItemOrderedScore, rank_in_item_order
from movierec.evaluate.item_order import popularity_scores as popularity_scores
from movierec.evaluate.metrics import (
    GenreProfiles,
    average_popularity,
    catalog_coverage,
    mae,
    novelty,
    personalization,
    popularity_stratified_recall,
    ranking_metrics,
    rmse,
)

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(user indices [n], item indices [n]) -> predicted ratings [n]."""

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""User indices [b] -> scores [b, n_items]; higher is better."""
ScoresFn = Callable[[np.ndarray], Iterable[np.ndarray]]
"""Several scorers at once: the score matrix of each for one chunk of users, in a fixed order, one at a time
(a generator), so that work they share is done once per chunk and only one matrix is alive at a time. Each
matrix is handed over: ranking may write into it (a writable float32 or float64 one is not copied), and asks
for the next one only once done with it, so a scorer may also rewrite one buffer for each."""


def _check_same_vocabularies(train: Ratings, test: Ratings) -> None:
    pairs = (("user", train.user_vocab, test.user_vocab), ("item", train.item_vocab, test.item_vocab))
    for side, a, b in pairs:
        if a is not b and not np.array_equal(a.ids, b.ids):
            raise ValueError(f"train and test have different {side} vocabularies; split one Ratings instead.")


def evaluate_ratings(predict: PredictFn, train: Ratings, test: Ratings) -> dict[str, float]:
    """RMSE and MAE of ``predict`` on every test rating.

    Returns ``rmse``, ``mae``, ``n_test`` and ``n_unknown``: the test rows whose user or movie has no training
    rating. Those rows are still predicted (the callable's fallback handles them) and count in the metrics.
    """
    _check_same_vocabularies(train, test)
    if len(test) == 0:
        raise DataError("The test set is empty; at least one held-out rating is needed to evaluate.")
    predicted = np.asarray(predict(test.users, test.items), dtype=np.float64)
    if predicted.shape != (len(test),):
        raise ValueError(f"predict returned shape {predicted.shape}; expected ({len(test)},).")
    if not np.isfinite(predicted).all():
        raise ValueError("predict returned NaN or infinite ratings.")
    user_known = train.user_counts() > 0
    item_known = train.item_counts() > 0
    unknown = ~user_known[test.users] | ~item_known[test.items]
    return {
        "rmse": rmse(predicted, test.ratings),
        "mae": mae(predicted, test.ratings),
        "n_test": len(test),
        "n_unknown": int(unknown.sum()),
    }


SCORE_BUDGET = 1 << 22
"""Most scores in one chunk's matrix (16 MB in float32): ranking over a large catalogue takes fewer users at once
(ML-25M's 59,047 movies: 71 users), so the memory ranking needs does not grow with the catalogue. Measured on the
ranking-weight grid (32 weight pairs, 2,000 users x 59,047 movies, dim 81, watch 128, one thread): 2^24 scores
12.2 s CPU and 0.87 GB peak, 2^22 9.3 s and 0.56 GB (smaller matrices stay in cache). Chunks change no list but
through the float rounding of a matrix product's blocking (1 of those 64,000 lists swapped two near-tied movies)."""
MIN_CHUNK = 16

Ranker = Callable[[np.ndarray, int], list[np.ndarray]]
"""(user indices, k) -> each scorer's top-k lists for those users, as ``rank_candidates`` makes them, in a fixed
order of the scorers."""


@dataclass(frozen=True)
class _Relevant:
    """The test users with at least one relevant movie (sorted), and the relevant movies of each, by user."""

    users: np.ndarray  # int64 [users]
    bounds: np.ndarray  # int64 [users + 1]: user j's movies are items[bounds[j] : bounds[j + 1]]
    items: np.ndarray  # int64

    @classmethod
    def of(cls, test: Ratings, threshold: float) -> _Relevant:
        mask = test.ratings >= threshold
        users = test.users[mask].astype(np.int64)
        items = test.items[mask].astype(np.int64)
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
        ranked, starts = np.unique(users, return_index=True)
        return cls(ranked, np.r_[starts, users.size], items)

    def lists(self, positions: np.ndarray) -> list[np.ndarray]:
        """The relevant movies of the users at ``positions``, one array each."""
        return [self.items[self.bounds[j] : self.bounds[j + 1]] for j in positions]


@dataclass(frozen=True)
class CandidateChunk:
    """Some of the users being ranked (``users``, from position ``start`` on), and their candidate movies."""

    start: int
    users: np.ndarray  # int64
    candidates: Candidates

    def exclude(self, scores: np.ndarray) -> None:
        """Set the chunk's ``scores`` [users, n_items] to ``-inf`` wherever the movie is no candidate."""
        self.candidates.exclude(scores, self.users)


def candidate_chunks(
    train: Ratings, users: np.ndarray, chunk_size: int, candidates: Candidates | None = None
) -> Iterator[CandidateChunk]:
    """``users`` in chunks of at most ``chunk_size`` users and ``SCORE_BUDGET`` scores (at least ``MIN_CHUNK``
    users), with their candidates (``candidates``, when given, must have been made for ``users``)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size is {chunk_size}; it must be at least 1.")
    user_index = np.asarray(users, dtype=np.int64).ravel()
    chunk_size = min(chunk_size, max(MIN_CHUNK, SCORE_BUDGET // max(1, train.n_items)))
    if candidates is None:
        candidates = Candidates(train, user_index, train.item_counts())
    for start in range(0, user_index.size, chunk_size):
        yield CandidateChunk(start, user_index[start : start + chunk_size], candidates)


def rank_candidates(score: ScoreFn, train: Ratings, users: np.ndarray, k: int, chunk_size: int = 1024) -> np.ndarray:
    """Each user's top-k candidate items [len(users), k] by ``score``, best first, ``-1`` padded.

    Candidates are the items with at least one training rating that the user did not rate in training; every
    other score is set to ``-inf``. ``score`` is called on at most ``chunk_size`` users at a time, and its
    arrays are copied, never written to. An ``ItemOrderedScore`` (``evaluate.item_order``) is ranked from its
    order of the movies instead, with the same lists.
    """
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size is {chunk_size}; it must be at least 1.")
    if isinstance(score, ItemOrderedScore):
        return rank_in_item_order(score, train, users, k)
    return rank_candidates_many(lambda chunk: [np.array(score(chunk))], 1, train, users, k, chunk_size)[0]


def rank_candidates_many(
    scores: ScoresFn,
    count: int,
    train: Ratings,
    users: np.ndarray,
    k: int,
    chunk_size: int = 1024,
    candidates: Candidates | None = None,
) -> list[np.ndarray]:
    """``rank_candidates`` for ``count`` scorers in one pass over the users: ``scores(chunk)`` yields each
    scorer's matrix for the chunk in turn (see ``ScoresFn``). Returns one top-k array per scorer. A chunk holds at
    most ``chunk_size`` users and ``SCORE_BUDGET`` scores. A NaN among a user's candidates is an error.
    ``candidates``: those of ``users``, when made already."""
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")
    n_users = np.asarray(users).size
    topks = [np.empty((n_users, k), dtype=np.int64) for _ in range(count)]
    for chunk in candidate_chunks(train, users, chunk_size, candidates):
        produced = 0
        for raw_scores in scores(chunk.users.astype(np.int32)):
            if produced == count:
                raise ValueError(f"scores gave more than {count} score matrices for a chunk.")
            matrix = _handed_over(raw_scores, (chunk.users.size, train.n_items))
            del raw_scores
            chunk.exclude(matrix)
            topks[produced][chunk.start : chunk.start + chunk.users.size] = ranked_top(matrix, k)
            produced += 1
        if produced != count:
            raise ValueError(f"scores gave {produced} score matrices for a chunk; expected {count}.")
    return topks


def _handed_over(raw_scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A ``ScoresFn`` matrix as ranking writes into it: itself when writable float32 or float64, else a copy."""
    raw = np.asarray(raw_scores)
    if raw.shape != shape:
        raise ValueError(f"score returned shape {raw.shape}; expected {shape}.")
    dtype = np.float64 if raw.dtype == np.float64 else np.float32
    return raw if raw.dtype == dtype and raw.flags.writeable else np.array(raw, dtype=dtype)


def evaluate_ranking(
    score: ScoreFn,
    train: Ratings,
    test: Ratings,
    k: int = 10,
    relevance_threshold: float = 4.0,
    chunk_size: int = 1024,
    max_users: int | None = None,
    genres: np.ndarray | None = None,
) -> dict[str, float]:
    """Top-k ranking quality of ``score`` on the held-out ratings, and what people feel of the lists.

    A movie is relevant to a user when its held-out rating is >= ``relevance_threshold``. Candidates are the
    movies with at least one training rating that the user did not rate in training; every other score is set
    to ``-inf`` before taking the top k. Metrics are averaged over the test users with at least one relevant
    movie, users unknown to train included (the callable must cope with them). Relevant movies that cannot be
    recommended (no training rating) still count in |relevant|. Users are scored ``chunk_size`` at a time so
    memory stays bounded.

    With more than ``max_users`` such users, a seeded sample of ``max_users`` of them is ranked (the same sample
    for every model scored on the same test set), so that ranking metrics on ML-25M take seconds, not minutes.

    Returns the ``ranking_metrics`` keys (``precision@k`` ...) plus, over the ranked users' lists:

    * ``coverage@k``: share of the candidate movies recommended to someone;
    * ``personalization@k``: 1 - the mean overlap of two different users' lists (left out with one user);
    * ``pop_recall@k``: popularity-stratified recall (Steck 2011), relevant movies weighted by 1 / N^0.5 with
      N their training rating count, so that it does not reward recommending what everyone rated;
    * ``miscalibration@k``, only given ``genres`` (the movies x genres matrix, ``evaluate.genres``): the KL
      divergence between the genre mix of the movies a user liked in training (rating >= the threshold) and
      that of their list (Steck 2018), averaged over the users with such a movie with genres (left out when
      none has); lower is better;
    * ``novelty@k`` and ``avg_popularity@k`` (training counts);
    * ``n_ranked_users`` and ``n_rankable_users`` (before sampling).
    """
    settings = RankingSettings(k, relevance_threshold, chunk_size, max_users, genres)

    def ranker(users: np.ndarray, top: int) -> list[np.ndarray]:
        return [rank_candidates(score, train, users, top, chunk_size)]

    return evaluate_ranked(ranker, train, test, settings)[0]


@dataclass(frozen=True)
class RankingSettings:
    """How ``evaluate_rankings`` ranks (the keyword arguments of ``evaluate_ranking``, which documents them)."""

    k: int = 10
    relevance_threshold: float = 4.0
    chunk_size: int = 1024
    max_users: int | None = None
    genres: np.ndarray | None = None


def evaluate_rankings(
    scores: ScoresFn, count: int, train: Ratings, test: Ratings, settings: RankingSettings = RankingSettings()
) -> list[dict[str, float]]:
    """``evaluate_ranking`` for ``count`` scorers in one pass over the users (see ``ScoresFn``): one result
    per scorer, each exactly what ``evaluate_ranking`` gives for that scorer alone."""

    def ranker(users: np.ndarray, k: int) -> list[np.ndarray]:
        return rank_candidates_many(scores, count, train, users, k, settings.chunk_size)

    return evaluate_ranked(ranker, train, test, settings)


def evaluate_ranked(
    rank: Ranker, train: Ratings, test: Ratings, settings: RankingSettings = RankingSettings()
) -> list[dict[str, float]]:
    """``evaluate_ranking``'s result for each scorer whose lists ``rank`` makes (see ``Ranker``), in its order."""
    k, relevance_threshold, genres = settings.k, settings.relevance_threshold, settings.genres
    _check_same_vocabularies(train, test)
    if k < 1:
        raise ValueError(f"k is {k}; it must be at least 1.")
    if genres is not None and np.shape(genres)[:1] != (train.n_items,):
        raise ValueError(f"genres has shape {np.shape(genres)}; expected one row per movie ({train.n_items}).")
    everyone = _Relevant.of(test, relevance_threshold)
    if everyone.users.size == 0:
        raise DataError(
            f"No test user has a held-out rating of at least {relevance_threshold:g}; "
            "lower the relevance threshold or use a larger test set."
        )
    rankable = int(everyone.users.size)
    keep = sample_positions(rankable, settings.max_users)
    ranked_users, relevant = everyone.users[keep], everyone.lists(keep)
    topks = rank(ranked_users, k)
    profiles = None
    if genres is not None:
        profiles = GenreProfiles.of(_liked_in_training(train, ranked_users, relevance_threshold), genres)
    counts = _TrainCounts(train.item_counts(), int(np.count_nonzero(train.user_counts())), rankable)
    return [_ranking_report(topk, relevant, counts, k, profiles) for topk in topks]


def sample_positions(count: int, max_users: int | None) -> np.ndarray:
    """Sorted positions of the seeded sample of ``max_users`` among ``count`` rankable users (all of them when
    there are no more): the same sample for every scorer ranked on the same test set."""
    if max_users is None or count <= max_users:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, max_users, replace=False))


def ranked_sample(test: Ratings, max_users: int | None, relevance_threshold: float = 4.0) -> np.ndarray:
    """The user indices ``evaluate_ranking(..., max_users=max_users)`` ranks on ``test``, sorted."""
    users = np.unique(test.users[test.ratings >= relevance_threshold]).astype(np.int64)
    return users[sample_positions(users.size, max_users)]


@dataclass(frozen=True)
class _TrainCounts:
    """What every scorer's report reads of the training ratings, counted once."""

    item_counts: np.ndarray  # ratings per movie
    n_train_users: int  # users with a training rating
    rankable: int  # test users with a relevant movie, before sampling


def _ranking_report(
    topk: np.ndarray,
    relevant: list[np.ndarray],
    counts: _TrainCounts,
    k: int,
    profiles: GenreProfiles | None,
) -> dict[str, float]:
    """The ranking metrics of one scorer's lists (``evaluate_ranking``'s result)."""
    item_counts = counts.item_counts
    result = ranking_metrics(topk, relevant, k)
    result[f"coverage@{k}"] = catalog_coverage(topk, int(np.count_nonzero(item_counts)))
    result[f"pop_recall@{k}"] = popularity_stratified_recall(topk, relevant, item_counts, k)
    beyond = {f"personalization@{k}": personalization(topk, k)}
    if profiles is not None:  # the movies each user liked in training, by genre
        beyond[f"miscalibration@{k}"] = profiles.miscalibration(topk, k)
    result.update({key: value for key, value in beyond.items() if value is not None})
    result[f"novelty@{k}"] = novelty(topk, item_counts, counts.n_train_users)
    result[f"avg_popularity@{k}"] = average_popularity(topk, item_counts)
    result["n_ranked_users"] = int(topk.shape[0])
    result["n_rankable_users"] = counts.rankable
    return result


def _liked_in_training(train: Ratings, users: np.ndarray, threshold: float) -> list[np.ndarray]:
    """The movies each of ``users`` rated >= ``threshold`` in training."""
    wanted = np.zeros(train.n_users, dtype=bool)
    wanted[users] = True  # only their ratings are sorted: a few per cent of ML-25M's
    indptr, liked = by_user(train, wanted[train.users] & (train.ratings >= threshold))
    return [liked[indptr[user] : indptr[user + 1]] for user in users]
