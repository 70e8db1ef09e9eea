"""Recommendations on tiny hand-built models with known answers, the CLI on a saved run, and (slow) the real
embedded data: no obscure-movie trap, and opposite tastes give different lists."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.artifact.run import save_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.ratings import Ratings, Vocabulary
from movierec.errors import MovieRecError
from movierec.models.baselines import popularity_prior
from movierec.models.factors import FactorModel, FactorParams, UserVector
from movierec.recommend import Filters, Recommendation, Recommender, batch_top_n, parse_years
from movierec.recommend.explain import TOP_BECAUSE, Sentiment, rating_influence
from movierec.recommend.rated import RatedSets

# Eight movies in two taste directions: horror along factor 0, comedy along factor 1.
MOVIES = pd.DataFrame(
    {
        "movieId": [10, 20, 30, 40, 50, 60, 70, 80],
        "title": [
            "Night Terror (1980)", "Dark House (1990)", "Funny Bones (1995)", "Love Laughs (2000)",
            "Quiet River (2005)", "Grim Drama (1985)", "Funny Bones Again (2010)", "Lost Reel",
        ],
        "year": pd.array([1980, 1990, 1995, 2000, 2005, 1985, 2010, None], dtype="Int64"),
        "genres": [
            "Horror", "Horror|Thriller", "Comedy", "Comedy|Romance", "Drama", "Drama|Horror", "Comedy", "",
        ],
    }
)  # fmt: skip
ITEM_FACTORS = np.array(
    [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.3, 0.3], [0.7, 0.2], [0.0, 0.8], [0.5, 0.5]], np.float32
)
ITEM_BIAS = np.array([0.2, 0.1, 0.3, 0.0, 0.1, -0.1, 0.2, 0.4], np.float32)
# (user, movie, stars): users 1-2 like horror, 3-4 like comedy, 5 rated almost everything. Movie 80 has one rating.
ROWS = [
    (1, 10, 5), (1, 20, 4.5), (1, 30, 1), (2, 10, 4), (2, 60, 4), (2, 40, 2), (3, 30, 5), (3, 40, 4.5),
    (3, 10, 1.5), (4, 30, 4), (4, 70, 5), (4, 20, 1), (5, 10, 3), (5, 20, 3), (5, 30, 3), (5, 40, 3),
    (5, 50, 3), (5, 60, 3), (5, 70, 3), (5, 80, 5), (2, 50, 3), (3, 50, 3), (1, 70, 2),
]  # fmt: skip

STAR_STEPS = [0.5 * k for k in range(1, 11)]  # 0.5 to 5 stars


def tiny_train() -> Ratings:
    frame = pd.DataFrame(ROWS, columns=["userId", "movieId", "rating"])
    return Ratings.from_frame(frame, Vocabulary.from_ids(frame["userId"]), Vocabulary(MOVIES["movieId"].to_numpy()))


def tiny_model(train: Ratings, **changes: object) -> FactorModel:
    user_factors = np.array([[1.2, -0.5], [1.0, -0.2], [-0.6, 1.1], [-0.4, 1.0], [0.1, 0.1]], np.float32)
    params = FactorParams(
        global_mean=3.2,
        user_bias=np.array([0.1, -0.1, 0.2, 0.0, -0.2], np.float32),
        item_bias=ITEM_BIAS,
        user_factors=user_factors,
        item_factors=ITEM_FACTORS,
        low=0.5,
        high=5.0,
        user_known=train.user_counts() > 0,
        item_known=train.item_counts() > 0,
        item_prior=popularity_prior(train),
        rank_weight=0.3,
        fold_in_reg=1.0,
    )
    return FactorModel(replace(params, **changes), "tiny")  # type: ignore[arg-type]


@pytest.fixture
def rec() -> Recommender:
    train = tiny_train()
    return Recommender(tiny_model(train), MOVIES, train, min_ratings=1)


def ids(recs: list) -> list[int]:
    return [r.movieId for r in recs]


def brute_force(model: FactorModel, train: Ratings, user: int, allowed: np.ndarray, n: int) -> list[int]:
    scores = model.rank_scores(np.array([user]))[0].astype(np.float64)
    scores[train.items[train.users == user]] = -np.inf
    scores[~allowed] = -np.inf
    order = np.lexsort((np.arange(scores.size), -scores))
    return [int(i) for i in order[:n] if np.isfinite(scores[i])]


# ------------------------------------------------------------------------------------------- known users


def test_known_user_gets_unrated_movies_in_rank_score_order(rec: Recommender) -> None:
    train = rec.train
    for raw_user in (1, 2, 3, 4, 5):
        user = rec.user_index(raw_user)
        got = rec.recommend_user(raw_user, n=8)
        rated = set(train.item_vocab.raw(train.items[train.users == user]).tolist())
        assert not rated & set(ids(got))
        expected = brute_force(rec.model, train, user, train.item_counts() > 0, 8)
        assert ids(got) == [int(m) for m in train.item_vocab.raw(expected)]
        assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)


def test_horror_fan_gets_horror_first_and_comedy_fan_comedy_first(rec: Recommender) -> None:
    assert rec.recommend_user(2, n=1)[0].movieId == 20  # rated 10 and 60; 20 is the horror left
    assert rec.recommend_user(3, n=1)[0].movieId == 70


def test_n_limits_the_list_and_bad_n_is_an_error(rec: Recommender) -> None:
    assert len(rec.recommend_user(1, n=1)) == 1 and len(rec.recommend_user(1, n=8)) == 4
    assert rec.recommend_user(5, n=10) == []  # user 5 rated every movie
    for bad in (0, -1, 10_001):
        with pytest.raises(MovieRecError, match="list length"):
            rec.recommend_user(1, n=bad)


def test_unknown_user_is_an_error_suggesting_ratings(rec: Recommender) -> None:
    with pytest.raises(MovieRecError, match="--ratings"):
        rec.recommend_user(999)


# --------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (Filters(include_genres=("horror",)), {10, 20, 60}),
        (Filters(include_genres=("Comedy", "Drama")), {30, 40, 50, 60, 70}),
        (Filters(exclude_genres=("Comedy", "Horror")), {50, 80}),
        (Filters(year_from=1990, year_to=2000), {20, 30, 40}),
        (Filters(year_from=2001), {50, 70}),
        (Filters(min_ratings=4), {10, 30}),
    ],
)
def test_filters_restrict_the_candidates(rec: Recommender, filters: Filters, allowed: set[int]) -> None:
    result, ignored = rec.recommend_new_user([(10, 5.0)], n=8, filters=filters)
    assert ignored == []
    assert set(ids(result)) == allowed - {10}


def test_default_minimum_support_leaves_out_thinly_rated_movies() -> None:
    train = tiny_train()
    strict = Recommender(tiny_model(train), MOVIES, train, min_ratings=3)
    got = ids(strict.recommend_user(1, n=8))
    counts = dict(zip(train.item_vocab.ids.tolist(), train.item_counts().tolist(), strict=True))
    assert got and all(counts[m] >= 3 for m in got)
    assert 80 not in got  # the highest-bias movie, rated once
    assert 80 in ids(strict.recommend_user(1, n=8, filters=Filters(min_ratings=1)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1990-2000", (1990, 2000)), ("1990-", (1990, None)), ("-2000", (None, 2000)), ("1995", (1995, 1995))],
)
def test_parse_years(text: str, expected: tuple[int | None, int | None]) -> None:
    assert parse_years(text) == expected


@pytest.mark.parametrize("text", ["", "-", "19902000", "2000-1990", "nineties", "1990--2000"])
def test_bad_year_ranges_are_errors(text: str) -> None:
    with pytest.raises(MovieRecError, match="year range"):
        parse_years(text)


def test_bad_filters_are_errors(rec: Recommender) -> None:
    with pytest.raises(MovieRecError, match=r"Horor.*valid genres are: Comedy, Drama, Horror"):
        rec.recommend_user(1, filters=Filters(include_genres=("Horor",)))
    with pytest.raises(MovieRecError, match="both included and excluded"):
        Filters(include_genres=("Comedy",), exclude_genres=("comedy",))
    with pytest.raises(MovieRecError, match="min_ratings"):
        Filters(min_ratings=-1)


# ------------------------------------------------------------------------------------------- new users


def test_new_user_ignores_unknown_movies_and_never_gets_a_rated_one(rec: Recommender) -> None:
    result, ignored = rec.recommend_new_user([(10, 5), (20, 4.5), (999, 3), (30, 1)], n=8)
    assert ignored == [999]
    assert not {10, 20, 30} & set(ids(result))
    assert result[0].movieId == 60  # the horror-leaning movie left
    assert result[0].explanation.kind == "personal"


def test_new_user_ratings_outside_the_scale_are_errors(rec: Recommender) -> None:
    for bad in (5.5, 0.0, float("nan")):
        with pytest.raises(MovieRecError, match=r"outside the scale; use a value from 0.5 to 5"):
            rec.recommend_new_user([(10, 4), (20, bad)])


def test_fold_in_matches_the_model_and_a_later_duplicate_wins(rec: Recommender) -> None:
    folded = rec.fold_in([(10, 1.0), (30, 4.0), (10, 5.0)])
    direct = rec.model.fold_in(np.array([0, 2]), np.array([5.0, 4.0]))
    assert folded.ignored == []
    np.testing.assert_allclose(folded.vector.factors, direct.factors, rtol=1e-6)
    assert folded.vector.bias == pytest.approx(direct.bias)


def test_opposite_new_users_get_opposite_lists(rec: Recommender) -> None:
    horror = rec.recommend_new_user([(10, 5), (30, 1)], n=3).recommendations
    comedy = rec.recommend_new_user([(10, 1), (30, 5)], n=3).recommendations
    assert horror[0].movieId in {20, 60} and comedy[0].movieId in {40, 70}


def test_no_usable_rating_falls_back_to_popular_and_well_rated(rec: Recommender) -> None:
    result, ignored = rec.recommend_new_user([(999, 4.0)], n=3)
    assert ignored == [999]
    assert [r.explanation.kind for r in result] == ["popular"] * 3
    strength = 5.0  # prior_strength: at least 5, above every count here
    counts = rec.catalog.counts
    damped = (np.nan_to_num(rec.catalog.means) * counts + strength * rec.model.params.global_mean) / (counts + strength)
    best = np.argsort(-damped, kind="stable")[:3]
    assert ids(result) == [int(m) for m in rec.catalog.movie_ids[best]]
    horror_only = rec.recommend_new_user([], n=5, filters=Filters(include_genres=("Horror",))).recommendations
    assert set(ids(horror_only)) == {10, 20, 60}


# ---------------------------------------------------------------------------------------- explanations


def test_explanation_parts_add_up_to_the_prediction_and_the_score(rec: Recommender) -> None:
    for r in rec.recommend_user(1, n=5) + rec.recommend_new_user([(10, 5), (30, 2)], n=5).recommendations:
        why = r.explanation
        raw = why.global_mean + why.user_bias + why.movie_bias + why.interaction
        assert r.predicted_rating == pytest.approx(float(np.clip(raw, 0.5, 5.0)), abs=1e-4)
        assert why.rating_part + why.popularity_part == pytest.approx(r.score, abs=1e-4)
        assert why.rating_part == pytest.approx((r.predicted_rating - 0.5) / 4.5, abs=1e-4)
        assert "avg" in why.text and "popularity" in why.text


@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize("implicit", [False, True])
def test_influence_shares_add_up_to_the_fold_in_interaction(implicit: bool, with_prior: bool) -> None:
    train = tiny_train()
    rng = np.random.default_rng(0)
    extra: dict[str, Any] = {"implicit": rng.normal(0, 0.3, (8, 2)).astype(np.float32)} if implicit else {}
    if with_prior:
        extra.update(fold_in_mean=np.array([0.2, 0.5, -0.3]), fold_in_precision=np.diag([4.0, 2.0, 3.0]))
    model = tiny_model(train, **extra)
    rated, stars = np.array([0, 2, 4, 5]), np.array([5.0, 1.0, 3.5, 4.0])
    user = model.fold_in(rated, stars)
    items = np.array([1, 3, 6, 7])
    shares = model.interaction_shares(rated, stars, items)
    from_prior = model.interaction_prior(rated, stars, items)
    assert shares.shape == (4, 4)
    assert np.any(np.abs(from_prior) > 1e-3) == with_prior
    interaction = model.params.item_factors[items] @ user.factors
    np.testing.assert_allclose(shares.sum(axis=1) + from_prior, interaction, atol=1e-5)


def test_a_new_user_with_one_rating_starts_from_the_typical_user() -> None:
    """Under the population prior a single rating moves the user only a little away from the prior's mean."""
    train = tiny_train()
    mean = np.array([0.2, 0.5, -0.3])
    model = tiny_model(train, fold_in_mean=mean, fold_in_precision=np.diag([50.0, 50.0, 50.0]))
    user = model.fold_in(np.array([0]), np.array([5.0]))
    np.testing.assert_allclose([user.bias, *user.factors], mean, atol=0.1)
    ridge = tiny_model(train).fold_in(np.array([0]), np.array([5.0]))
    assert np.linalg.norm(ridge.factors - mean[1:]) > np.linalg.norm(user.factors - mean[1:])


def test_because_names_the_ratings_that_push_a_recommendation_up(rec: Recommender) -> None:
    top = rec.recommend_new_user([(10, 5), (30, 1), (50, 3)], n=1).recommendations[0]
    assert top.movieId == 20
    because = top.explanation.because
    assert because and because[0].movieId in {10, 30}
    assert all(b.contribution > 0 for b in because)
    liked = {b.movieId: b.liked for b in because}
    assert liked.get(10, True) and not liked.get(30, False)
    assert "you liked Night Terror (1980) (5★)" in top.explanation.text


def test_because_names_what_you_liked_and_what_you_disliked(rec: Recommender) -> None:
    """A 5★ of a horror film and a 1★ of a comedy both lift a horror film; the 3★, near the person's own mean,
    is no reason either way."""
    top = rec.recommend_new_user([(10, 5), (30, 1), (50, 3)], n=1).recommendations[0]
    why = top.explanation
    assert [(b.movieId, b.reason, b.liked) for b in why.because] == [(10, "liked", True), (30, "disliked", False)]
    assert why.summary == "because you liked Night Terror (1980) (5★); because you disliked Funny Bones (1995) (1★)"
    assert why.summary in why.text
    assert why.to_dict()["because"][1] == {  # type: ignore[index]
        "movieId": 30, "title": "Funny Bones (1995)", "rating": 1.0, "contribution": why.because[1].contribution,
        "reason": "disliked", "liked": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stars", "expected"),
    [
        ([5, 5, 5], [1, 1, 1]),  # all 5★ are still liked: the mean is shrunk towards everyone's
        ([1, 1, 1], [-1, -1, -1]),
        ([5, 3.5, 1], [1, 0, -1]),  # 3.5★ sits on this person's mean: neither
        ([1] * 10 + [3], [-1] * 10 + [1]),  # a harsh rater's 3★ is a like ...
        ([1] * 10 + [2.5], [-1] * 10 + [0]),  # ... but a 2.5★ is never one, even above their mean
        ([5] * 10 + [4], [1] * 10 + [0]),  # a generous rater's 4★ is below their mean, but never a dislike
        ([5] * 10 + [3.5], [1] * 10 + [-1]),  # their 3.5★ is one
    ],
)
def test_which_ratings_count_as_liked_or_disliked(stars: list[float], expected: list[int]) -> None:
    assert Sentiment(0.5, 5.0, 3.5).of(np.array(stars)).tolist() == expected


def test_rating_influence_is_how_far_a_rating_moves_each_share() -> None:
    """On the linear link a rating one star higher moves its fold-in target by one star, so its shares by exactly
    its influence (the SVD++ part does not depend on the stars)."""
    train = tiny_train()
    model = tiny_model(train, implicit=np.random.default_rng(0).normal(0, 0.3, (8, 2)).astype(np.float32))
    rated, stars, items = np.array([0, 2, 4, 5]), np.array([4.0, 1.0, 3.5, 2.0]), np.array([1, 3, 6, 7])
    moved = model.interaction_shares(rated, stars + 1, items) - model.interaction_shares(rated, stars, items)
    np.testing.assert_allclose(rating_influence(model, rated, stars, items), moved, atol=1e-9)


def stars_of(rec: Recommender, user: int) -> dict[int, float]:
    """A trained user's training ratings, by movieId."""
    index = rec.user_index(user)
    items, ratings = rec.rated.items_of(index), rec.rated.ratings_of(index)
    return dict(zip(rec.catalog.movie_ids[items].tolist(), ratings.tolist(), strict=True))


def assert_reasons_follow_the_stars(recs: list[Recommendation], stars: dict[int, float], sentiment: Sentiment) -> None:
    """Never "liked" a movie rated 2.5★ or less or below the person's own mean; never "disliked" one rated 4★ or
    more or above it; every reason pushes the movie up, at most three, the strongest first."""
    mean = sentiment.reference(np.array(list(stars.values())))
    for rec in recs:
        because = rec.explanation.because
        assert len(because) <= TOP_BECAUSE
        assert [b.contribution for b in because] == sorted((b.contribution for b in because), reverse=True)
        for b in because:
            assert b.rating == stars[b.movieId] and b.contribution > 0
            if b.liked:
                assert b.rating >= 3 and b.rating > mean, (b, mean)
            else:
                assert b.rating <= 3.5 and b.rating < mean, (b, mean)
            assert f"you {b.reason}" in rec.explanation.summary


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from([10, 20, 30, 40, 50, 60, 70]), st.sampled_from(STAR_STEPS), min_size=1))
def test_reasons_never_contradict_the_stars_of_a_new_user(stars: dict[int, float]) -> None:
    train = tiny_train()
    rec = Recommender(tiny_model(train), MOVIES, train, min_ratings=1)
    recs = rec.recommend_new_user(stars.items(), n=8).recommendations
    assert_reasons_follow_the_stars(recs, stars, rec.sentiment)


def test_reasons_never_contradict_the_stars_of_a_known_user(rec: Recommender) -> None:
    for user in (1, 2, 3, 4, 5):
        assert_reasons_follow_the_stars(rec.recommend_user(user, n=8), stars_of(rec, user), rec.sentiment)


def test_results_convert_to_json_ready_dicts(rec: Recommender) -> None:
    doc = [r.to_dict() for r in rec.recommend_user(1, n=3)]
    doc += [s.to_dict() for s in rec.similar(10, n=2)] + [o.to_dict() for o in rec.onboarding(2)]
    doc += [p.to_dict() for p in rec.predict_pairs([1, 999], [10, 999])]
    text = json.dumps(doc)
    first = json.loads(text)[0]
    assert {"movieId", "title", "score", "explanation", "year", "genres", "predicted_rating"} <= set(first)
    assert isinstance(first["explanation"], str) and "because" in first["why"]


# -------------------------------------------------------------------------------- similar and onboarding


def test_similar_movies_by_cosine_without_the_movie_itself(rec: Recommender) -> None:
    got = rec.similar(10, n=3)
    assert got[0].movieId == 20 and 10 not in ids(got)
    cosine = float(ITEM_FACTORS[0] @ ITEM_FACTORS[1] / np.linalg.norm(ITEM_FACTORS[1]))
    assert got[0].similarity == pytest.approx(cosine, abs=1e-4)
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    assert rec.similar("night terror", n=1)[0].movieId == 20


def test_similar_respects_minimum_support(rec: Recommender) -> None:
    assert 80 in ids(rec.similar(50, n=7, min_ratings=1))
    assert 80 not in ids(rec.similar(50, n=7, min_ratings=2))


def test_title_lookup_errors_list_candidates_or_suggest(rec: Recommender) -> None:
    with pytest.raises(MovieRecError, match=r"matches 2 movies: .*Funny Bones \(1995\) \[30\]"):
        rec.similar("funny")
    with pytest.raises(MovieRecError, match=r"closest titles: Dark House \(1990\)"):
        rec.similar("Dark Hose")
    with pytest.raises(MovieRecError, match="movie id 12345"):
        rec.similar(12345)


def test_similar_needs_factors() -> None:
    train = tiny_train()
    flat = tiny_model(train, user_factors=np.zeros((5, 0), np.float32), item_factors=np.zeros((8, 0), np.float32))
    with pytest.raises(MovieRecError, match="no movie factors"):
        Recommender(flat, MOVIES, train, min_ratings=1).similar(10)


def test_a_model_without_factors_names_no_reason() -> None:
    """Biases alone carry no taste: no rating is a reason, and the summary gives the prediction's terms."""
    train = tiny_train()
    flat = tiny_model(train, user_factors=np.zeros((5, 0), np.float32), item_factors=np.zeros((8, 0), np.float32))
    recs = Recommender(flat, MOVIES, train, min_ratings=1).recommend_new_user([(10, 5), (30, 1)], n=3).recommendations
    assert recs and all(not r.explanation.because and r.explanation.summary.endswith("taste") for r in recs)


def test_onboarding_picks_distinct_known_varied_movies(rec: Recommender) -> None:
    picks = rec.onboarding(4)
    assert len({p.movieId for p in picks}) == 4
    assert all(p.n_ratings >= 1 for p in picks)
    genres = {g for p in picks for g in p.genres}
    assert {"Horror", "Comedy"} <= genres
    assert all("ratings" in p.reason for p in picks)


# ------------------------------------------------------------------------------------- predict and batch


def test_predict_pairs_with_fallbacks(rec: Recommender) -> None:
    known, new_user, new_movie = rec.predict_pairs([1, 999, 1], [20, 20, 999])
    assert known.predicted_rating == pytest.approx(float(rec.model.predict(np.array([0]), np.array([1]))[0]), abs=1e-4)
    assert (known.known_user, known.known_movie) == (True, True)
    assert not new_user.known_user and new_user.predicted_rating == pytest.approx(3.2 + 0.1, abs=1e-4)
    assert not new_movie.known_movie and new_movie.predicted_rating == pytest.approx(3.2 + 0.1, abs=1e-4)
    with pytest.raises(MovieRecError, match="one of each per pair"):
        rec.predict_pairs([1], [10, 20])


@pytest.mark.parametrize("link", ["linear", "sigmoid"])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_batch_top_n_matches_one_user_at_a_time(link: str, chunk_size: int) -> None:
    rng = np.random.default_rng(1)
    n_users, n_items, dim = 40, 60, 5
    frame = pd.DataFrame({"userId": rng.integers(0, n_users, 600), "movieId": rng.integers(0, n_items, 600)})
    frame = frame.drop_duplicates().assign(rating=lambda f: rng.choice(np.arange(1, 11) / 2, len(f)))
    train = Ratings.from_frame(frame, Vocabulary(np.arange(n_users)), Vocabulary(np.arange(n_items)))
    params = FactorParams(
        3.5, rng.normal(0, 0.3, n_users).astype(np.float32), rng.normal(0, 0.3, n_items).astype(np.float32),
        rng.normal(0, 0.6, (n_users, dim)).astype(np.float32), rng.normal(0, 0.6, (n_items, dim)).astype(np.float32),
        0.5, 5.0, link=link, user_known=train.user_counts() > 0, item_known=train.item_counts() > 0,
        item_prior=popularity_prior(train), rank_weight=0.4,
    )  # fmt: skip
    model = FactorModel(params)
    candidates = train.item_counts() > 0
    top = batch_top_n(model, RatedSets.from_ratings(train), 6, candidates=candidates, chunk_size=chunk_size)
    assert top.items.shape == (np.count_nonzero(train.user_counts()), 6)
    every = model.rank_scores(top.users)
    for row, user in enumerate(top.users):
        expected = brute_force(model, train, int(user), candidates, 6)
        # the same scores in the same order (equal scores may list their movies in another order)
        np.testing.assert_allclose(top.scores[row], every[row, expected], rtol=1e-5)
        np.testing.assert_allclose(top.scores[row], every[row, top.items[row]], rtol=1e-5)
        assert not set(top.items[row]) & set(train.items[train.users == user].tolist())
        assert candidates[top.items[row]].all() and len(set(top.items[row])) == 6


def test_recommend_all_agrees_with_recommend_user_and_pads_short_lists(rec: Recommender) -> None:
    top = rec.recommend_all(n=8)
    assert top.users.tolist() == [1, 2, 3, 4, 5]
    for row, user in enumerate(top.users):
        listed = [int(m) for m in top.items[row] if m >= 0]
        assert listed == ids(rec.recommend_user(int(user), n=8))
    assert (top.items[4] == -1).all() and np.isneginf(top.scores[4]).all()  # user 5 rated everything


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    train = tiny_train()
    out = tmp_path / "run"
    model = FactorModel(tiny_model(train).params, "biased-mf")  # the configured model's name, as train writes it
    save_run(out, config=TrainConfig(dim=2), model=model, movies=MOVIES, train=train, metrics={}, history=[], data={})
    return out


def test_cli_recommend_for_a_known_user_as_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(run_dir), "--user", "2", "-n", "2", "--min-ratings", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["movieId"] for r in doc["recommendations"]] == [20, 30]
    assert all({"movieId", "title", "score", "explanation"} <= set(r) for r in doc["recommendations"])


def test_cli_recommend_for_new_ratings_warns_about_unknown_ids(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["recommend", str(run_dir), "--ratings", "10:5, 30=1,999:4", "--genre", "Horror", "--min-ratings", "1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "999" in captured.err and "ignored" in captured.err
    assert "Dark House (1990)" in captured.out and "Grim Drama" in captured.out
    assert "Funny Bones Again" not in captured.out and "Love Laughs" not in captured.out


def test_cli_says_what_you_liked_and_disliked_in_the_table_and_the_json(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["recommend", str(run_dir), "--ratings", "10:5,30:1,50:3", "-n", "1", "--min-ratings", "1"]
    assert main(args) == 0
    table = capsys.readouterr().out  # one line per feeling in the "why" column
    assert "because you liked Night Terror (1980) (5★)" in table
    assert "because you disliked Funny Bones (1995) (1★)" in table
    assert main([*args, "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["recommendations"][0]
    assert top["summary"].startswith("because you liked Night Terror")
    assert [(b["movieId"], b["reason"], b["liked"]) for b in top["because"]] == [
        (10, "liked", True),
        (30, "disliked", False),
    ]


def test_cli_ratings_file(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("movieId,rating,timestamp\n10,5,0\n30,1,0\n")
    assert main(["recommend", str(run_dir), "--ratings-file", str(path), "--min-ratings", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommendations"][0]["movieId"] == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ratings", "10:7"], "outside the scale"),
        (["--ratings", "ten:5"], "MOVIE_ID:STARS"),
        (["--user", "999"], "--ratings"),
        ([], "exactly one of"),
        (["--user", "1", "--ratings", "10:5"], "exactly one of"),
        (["--user", "1", "--years", "2000-1990"], "year range"),
        (["--user", "1", "--genre", "Nope"], "valid genres"),
        (["--ratings-file", "/no/such/file.csv"], "does not exist"),
    ],
)
def test_cli_bad_input_exits_2_with_one_sentence(
    run_dir: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_similar_and_onboard(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", str(run_dir), "Night Terror", "-n", "2", "--min-ratings", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["movie"]["movieId"] == 10 and doc["similar"][0]["movieId"] == 20
    assert main(["similar", str(run_dir), "Funny"]) == 2
    assert "matches 2 movies" in capsys.readouterr().err
    assert main(["onboard", str(run_dir), "-n", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["movies"]) <= 3
    assert main(["onboard", str(run_dir), "-n", "2"]) == 0
    assert "Rate these" in capsys.readouterr().out


def test_recommending_from_a_run_never_imports_torch(run_dir: Path) -> None:
    """What ``movierec recommend``, ``similar``, ``onboard`` and ``serve`` run starts fast: torch stays out."""
    code = (
        "import sys; from movierec.recommend import Recommender; "
        "rec = Recommender.load(sys.argv[1], min_ratings=1); rec.recommend_user(1); "
        "rec.recommend_new_user([(10, 5.0), (999, 1.0)]); rec.recommend_new_user([]); rec.similar(10); "
        "rec.onboarding(3); rec.predict_pairs([1], [10]); rec.predict_new_user([(10, 5.0)], [20, 999]); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(run_dir)], check=True)


# --------------------------------------------------------------------------------- real data (slow)


@pytest.fixture(scope="module")
def real() -> Recommender:
    from movierec.data.loader import load_dataset
    from movierec.data.split import random_split
    from movierec.train.driver import fit

    dataset = load_dataset("ml-latest-small")
    train = random_split(dataset.ratings, 0.1, seed=0).train
    model = fit(TrainConfig(epochs=4, device="cpu"), dataset, train, progress=False).model
    return Recommender(model, dataset.movies, train)


HORROR = [1214, 1387, 1258, 1997, 2710, 1350, 1982, 2167]  # Alien, Jaws, The Shining, The Exorcist, ...
COMEDY = [2, 1, 2355, 1265, 344, 231, 2706, 1784]  # Jumanji, Toy Story, A Bug's Life, Groundhog Day, ...


@pytest.mark.slow
def test_no_obscure_movie_trap_on_real_data(real: Recommender) -> None:
    users = np.random.default_rng(0).choice(real.user_vocab.ids, 60, replace=False)
    known = [r.n_ratings for u in users for r in real.recommend_user(int(u), n=10)]
    new = [r.n_ratings for r in real.recommend_new_user([(m, 5.0) for m in HORROR[:5]], n=10).recommendations]
    new += [r.n_ratings for r in real.recommend_new_user([(m, 4.5) for m in COMEDY[:5]], n=10).recommendations]
    assert np.median(known) >= 20 and np.median(new) >= 20
    assert min(known + new) >= 10  # the default minimum support


@pytest.mark.slow
def test_opposite_tastes_get_clearly_different_lists_on_real_data(real: Recommender) -> None:
    horror_fan = [(m, 5.0) for m in HORROR] + [(m, 1.0) for m in COMEDY]
    comedy_fan = [(m, 1.0) for m in HORROR] + [(m, 5.0) for m in COMEDY]
    a = real.recommend_new_user(horror_fan, n=10).recommendations
    b = real.recommend_new_user(comedy_fan, n=10).recommendations
    assert len(set(ids(a)) & set(ids(b))) <= 3

    def share(recs: list, genres: set[str]) -> int:
        return sum(bool(genres & set(r.genres)) for r in recs)

    dark, light = {"Horror", "Thriller"}, {"Comedy", "Children", "Animation"}
    assert share(a, dark) > share(b, dark)
    assert share(b, light) > share(a, light)


@pytest.mark.slow
def test_reasons_on_real_data_name_likes_and_dislikes_truthfully(real: Recommender) -> None:
    """A horror fan who panned comedies hears both "because you liked" a horror film and "because you disliked"
    a comedy; no reason, for them or for trained users, contradicts the stars."""
    for fan in (
        {m: 5.0 for m in HORROR} | {m: 1.0 for m in COMEDY},
        {m: 1.0 for m in HORROR} | {m: 5.0 for m in COMEDY},
    ):
        recs = real.recommend_new_user(fan.items(), n=10).recommendations
        assert {b.reason for r in recs for b in r.explanation.because} == {"liked", "disliked"}
        assert_reasons_follow_the_stars(recs, fan, real.sentiment)
    for user in np.random.default_rng(1).choice(real.user_vocab.ids, 30, replace=False).tolist():
        assert_reasons_follow_the_stars(real.recommend_user(user, n=10), stars_of(real, user), real.sentiment)


@pytest.mark.parametrize("filters", [Filters(), Filters(include_genres=("Horror",)), Filters(min_ratings=1)])
def test_scoring_the_well_supported_pool_gives_the_list_of_scoring_everything(filters: Filters) -> None:
    """Lists are scored over the movies with the default support only when every candidate is among them."""
    train = tiny_train()
    strict = Recommender(tiny_model(train), MOVIES, train, min_ratings=2)
    assert strict._pool.size < int(strict.item_known.sum())
    user = UserVector(0.1, np.array([1.0, -0.5], np.float32))
    everything = strict.model.rank_for(user)
    mask = strict._mask(filters)
    order = [i for i in np.argsort(-everything, kind="stable") if mask[i]]
    got = strict._personal(user, np.empty(0, np.int64), np.empty(0), 8, filters)
    assert [r.movieId for r in got] == [int(strict.catalog.movie_ids[i]) for i in order] and got
    if filters.min_ratings == 1:
        assert any(r.n_ratings < 2 for r in got), "a filter below the default support reaches outside the pool"
