"""The hybrid model: features, the implicit term, export, cold movies, and the cold-items protocol."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from movierec.artifact.run import load_run, save_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.data.split import random_split
from movierec.models.factors import FactorModel
from movierec.models.features import build_item_features
from movierec.models.hybrid import FixedSparse, bag_positions, build_hybrid, rated_sets
from movierec.train.cold_items import evaluate_cold_items, genre_average_params, genre_lists
from movierec.train.driver import fit

from models_fixtures import low_rank_dataset, rmse, write_csv_files

FAST = {"epochs": 60, "lr": 0.02, "batch_size": 256, "patience": 5, "dim": 8, "reg": 0.01, "init_std": 0.1}
COMEDY_COLD, HORROR_COLD = 40, 41  # movie ids nobody rates in the taste data


def taste_dataset(seed: int = 0, tags: bool = True) -> Dataset:
    """60 users who love comedies and hate horror films, or the other way round; 42 movies alternating
    Comedy / Horror (with a second genre and a year); the last two are never rated."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(60):
        fan = user % 2  # 0: comedy fan, 1: horror fan
        for movie in rng.choice(40, size=15, replace=False):
            liked = movie % 2 == fan
            rows.append((user, int(movie), float(np.clip(rng.normal(4.5 if liked else 1.5, 0.3), 0.5, 5.0))))
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    movie_ids = np.arange(42)
    items = Vocabulary.from_ids(frame["movieId"].to_numpy(), movie_ids)
    ratings = Ratings.from_frame(frame, Vocabulary.from_ids(frame["userId"].to_numpy()), items)
    genres = ["Comedy|Romance" if m % 2 == 0 else "Horror|Thriller" for m in movie_ids]
    movies = pd.DataFrame(
        {"movieId": movie_ids, "title": [f"M{m}" for m in movie_ids], "genres": genres,
         "year": pd.array([1990 + m % 20 for m in movie_ids], dtype="Int64")}
    )  # fmt: skip
    tag_frame = None
    if tags:
        tag_frame = pd.DataFrame(
            {"userId": 1, "movieId": [0, 2, 1, 3, 40], "tag": ["Funny", "funny ", "scary", "Scary", "funny"],
             "timestamp": 0}
        )  # fmt: skip
    return Dataset("taste", ratings, align_movies(movies, items), tag_frame, RatingScale(0.5, 5.0, 0.5))


@pytest.fixture(scope="module")
def taste() -> Dataset:
    return taste_dataset()


@pytest.fixture(scope="module")
def low_rank():
    dataset, truth = low_rank_dataset()
    return dataset, truth, random_split(dataset.ratings, 0.1, seed=0)


@pytest.fixture(scope="module")
def low_rank_hybrid(low_rank) -> FactorModel:
    """The hybrid fitted on the low-rank data: no movies file, no tags, so only the implicit term is added."""
    dataset, _, split = low_rank
    return fit(
        TrainConfig(model="hybrid", **{**FAST, "batch_size": 1024, "lr": 0.03}), dataset, split.train, progress=False
    ).model


# ------------------------------------------------------------------------------------------------ features


def test_features_from_genres_years_and_tags(taste: Dataset) -> None:
    features = build_item_features(taste, taste.ratings.n_items)
    names = features.names
    assert features.group("genre") == ["genre:Comedy", "genre:Horror", "genre:Romance", "genre:Thriller"]
    assert features.group("year") == ["year:1990-1999", "year:2000-2009"]
    assert features.group("tag") == ["tag:funny", "tag:scary"]  # lower-cased, stripped, on two movies each
    dense = features.dense()
    assert dense.shape == (42, len(names))
    comedy = taste.item_vocab.index_one(0)
    row = dict(zip(names, dense[comedy], strict=True))
    assert row["genre:Comedy"] == pytest.approx(1 / np.sqrt(2)) and row["genre:Romance"] == pytest.approx(
        1 / np.sqrt(2)
    )
    assert row["genre:Horror"] == 0 and row["year:1990-1999"] == 1 and row["tag:funny"] == pytest.approx(1.0)
    assert features.has_features().all()


def test_features_without_a_movies_file_or_tags_are_empty(low_rank) -> None:
    dataset, _, _ = low_rank
    features = build_item_features(dataset, dataset.ratings.n_items)
    assert features.n_features == 0 and not features.has_features().any()


def test_rare_tags_and_no_genre_marker_are_left_out() -> None:
    items = Vocabulary.from_ids(np.array([1, 2, 3]))
    movies = pd.DataFrame(
        {"movieId": [1, 2, 3], "title": ["a", "b", "c"], "genres": ["(no genres listed)", "", "X"], "year": None}
    )
    ratings = Ratings.from_frame(pd.DataFrame({"userId": [1], "movieId": [1], "rating": [3.0]}), None, items)
    tags = pd.DataFrame({"userId": 1, "movieId": [1, 2, 99], "tag": ["once", "twice", "twice"], "timestamp": 0})
    dataset = Dataset("t", ratings, align_movies(movies, items), tags)
    features = build_item_features(dataset, 3)
    assert features.names == ["genre:X"]  # "twice" is on one known movie only; movie 99 is not in the data
    assert features.has_features().tolist() == [False, False, True]


# ------------------------------------------------------------------------------------------ sparse helpers


def test_bag_positions_lists_each_rows_entries() -> None:
    indptr = torch.tensor([0, 2, 2, 5])
    positions, offsets, owner = bag_positions(indptr, torch.tensor([2, 0, 1]))
    assert positions.tolist() == [2, 3, 4, 0, 1]
    assert offsets.tolist() == [0, 3, 5]
    assert owner.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("rows", [[3, 0], [0, 1, 2, 3, 4, 5]])  # few rows: embedding_bag; most: whole matrix
def test_fixed_sparse_matches_dense_values_and_gradients(rows: list[int]) -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((6, 5)) < 0.5) * rng.normal(size=(6, 5))
    indptr = np.concatenate([[0], np.cumsum((dense != 0).sum(1))])
    indices = np.nonzero(dense)[1]
    matrix = FixedSparse(indptr, indices, dense[dense != 0].astype(np.float32), 5)
    table = torch.randn(5, 3, requires_grad=True)
    index = torch.tensor(rows)
    out = matrix.rows_times(index, table)
    out.pow(2).sum().backward()
    assert table.grad is not None
    got = table.grad.clone()
    table.grad = None
    expected = torch.from_numpy(dense.astype(np.float32))[index] @ table
    expected.pow(2).sum().backward()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, table.grad, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------------------------- the module


def randomised(config: TrainConfig, dataset: Dataset, train: Ratings):
    torch.manual_seed(0)
    module = build_hybrid(config, dataset, train)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(std=0.3)
    module.init_from_mean(3.0)
    return module


def test_export_scores_exactly_what_the_module_predicts(taste: Dataset) -> None:
    train = taste.ratings
    module = randomised(TrainConfig(model="hybrid", dim=4), taste, train)
    module.eval()
    with torch.no_grad():
        raw = module(torch.from_numpy(train.users.astype(np.int64)), torch.from_numpy(train.items.astype(np.int64)))
    params = module.export()
    model = FactorModel(replace(params, user_known=train.user_counts() > 0))
    expected = raw.clamp(module.low, module.high).numpy()
    np.testing.assert_allclose(model.predict(train.users, train.items), expected, atol=1e-5)
    # each known user's exported vector is their own embedding plus the same implicit term fold-in adds
    user = 7
    rated = train.items[train.users == user]
    own = module.user_factors.weight[user].detach().numpy()
    np.testing.assert_allclose(params.user_factors[user], own + model.implicit_offset(rated), atol=1e-5)


def test_penalty_is_the_sum_of_touched_row_norms(low_rank) -> None:
    dataset, _, split = low_rank
    config = TrainConfig(model="hybrid", dim=4, use_implicit=False)
    module = randomised(config, dataset, split.train)
    users, items = torch.tensor([0, 3, 3]), torch.tensor([5, 5, 9])
    module(users, items)
    cached = module.penalty(users, items)
    fresh = module.penalty(users.clone(), items.clone())
    p, q = module.user_factors.weight[users], module.item_factors.weight[items]
    b = module.user_bias.weight[users, 0].pow(2) + module.item_bias.weight[items, 0].pow(2)
    expected = p.pow(2).sum(-1) + q.pow(2).sum(-1) + module.bias_reg_scale * b
    torch.testing.assert_close(cached, expected)
    torch.testing.assert_close(fresh, expected)


def test_penalty_grows_with_feature_and_implicit_rows(taste: Dataset) -> None:
    users, items = torch.tensor([0, 1]), torch.tensor([2, 3])
    plain = randomised(TrainConfig(model="hybrid", dim=4, use_genres=False, use_tags=False, use_implicit=False), taste,
                       taste.ratings).penalty(users, items)  # fmt: skip
    full = randomised(TrainConfig(model="hybrid", dim=4), taste, taste.ratings).penalty(users, items)
    assert (full > plain).all()


def test_checkpoints_hold_weights_not_data(taste: Dataset) -> None:
    module = build_hybrid(TrainConfig(model="hybrid", dim=4), taste, taste.ratings)
    assert set(module.state_dict()) == {
        "global_mean", "user_factors.weight", "item_factors.weight", "user_bias.weight", "item_bias.weight",
        "feature_factors.weight", "feature_bias.weight", "implicit.weight",
    }  # fmt: skip


# ------------------------------------------------------------------------------------------- fitted models


def test_hybrid_meets_the_contract_without_movies_file_or_tags(low_rank, low_rank_hybrid: FactorModel) -> None:
    dataset, truth, split = low_rank
    fitted = low_rank_hybrid
    users, items = split.test.users[:50], split.test.items[:50]
    predicted = fitted.predict(users, items)
    assert predicted.shape == (50,) and predicted.dtype == np.float32
    assert (predicted >= dataset.scale.low).all() and (predicted <= dataset.scale.high).all()
    scores = fitted.score_items(users[:5])
    np.testing.assert_allclose(scores[np.arange(5), items[:5]], predicted[:5], rtol=1e-5, atol=1e-5)
    assert fitted.rank_scores(users[:5]).shape == (5, dataset.ratings.n_items)
    assert fitted.params.implicit is not None and fitted.params.implicit.shape == (dataset.ratings.n_items, 8)
    vector = fitted.fold_in(items[:10], split.test.ratings[:10])
    assert fitted.score_for(vector).shape == (dataset.ratings.n_items,)
    assert np.isfinite(fitted.predict(np.array([-1, users[0]]), np.array([items[0], -1]))).all()
    # it learns the low-rank structure: well under the biases-only baseline
    biases = fit(TrainConfig(model="biases"), dataset, split.train, progress=False).model
    test_rmse = rmse(fitted.predict(split.test.users, split.test.items), split.test.ratings)
    assert test_rmse < 0.8 * rmse(biases.predict(split.test.users, split.test.items), split.test.ratings)
    assert test_rmse < 1.5 * truth.ideal_rmse(split.test)


def test_unseen_movies_are_scored_from_their_genres(taste: Dataset) -> None:
    config = TrainConfig(model="hybrid", **FAST)
    model = fit(config, taste, taste.ratings, progress=False).model
    comedy, horror = taste.item_vocab.index(np.array([COMEDY_COLD, HORROR_COLD]))
    assert taste.ratings.item_counts()[[comedy, horror]].sum() == 0
    assert model.params.item_known[[comedy, horror]].all()
    comedy_fans = taste.user_vocab.index(np.arange(0, 60, 2))
    horror_fans = taste.user_vocab.index(np.arange(1, 60, 2))
    gap_comedy_fans = model.predict(comedy_fans, np.full(30, comedy)) - model.predict(comedy_fans, np.full(30, horror))
    gap_horror_fans = model.predict(horror_fans, np.full(30, comedy)) - model.predict(horror_fans, np.full(30, horror))
    assert (gap_comedy_fans > 1.0).all() and (gap_horror_fans < -1.0).all()
    # without features the same movies are unknown, and every user gets the same score for both
    blind = fit(config.replace(use_genres=False, use_tags=False), taste, taste.ratings, progress=False).model
    assert not blind.params.item_known[[comedy, horror]].any()
    np.testing.assert_array_equal(
        blind.predict(comedy_fans, np.full(30, comedy)), blind.predict(comedy_fans, np.full(30, horror))
    )


def test_dataset_without_tags_trains(taste: Dataset) -> None:
    dataset = taste_dataset(tags=False)
    model = fit(TrainConfig(model="hybrid", **{**FAST, "epochs": 3}), dataset, dataset.ratings, progress=False).model
    assert np.isfinite(model.params.item_factors).all() and model.params.item_known.all()


def test_save_load_round_trip(taste: Dataset, tmp_path: Path) -> None:
    split = random_split(taste.ratings, 0.1, seed=0)
    config = TrainConfig(model="hybrid", **{**FAST, "epochs": 3})
    result = fit(config, taste, split.train, progress=False)
    save_run(
        tmp_path, config=config, model=result.model, movies=taste.movies, train=split.train,
        metrics={"rmse": 1.0}, history=[h.to_row() for h in result.history], data={},
    )  # fmt: skip
    run = load_run(tmp_path)
    loaded, original = run.model.params, result.model.params
    assert run.config == config and run.model.name == "hybrid"
    assert loaded.implicit is not None and original.implicit is not None
    np.testing.assert_array_equal(loaded.implicit, original.implicit)
    np.testing.assert_array_equal(loaded.item_known, original.item_known)
    users, items = split.test.users, split.test.items
    np.testing.assert_array_equal(run.model.predict(users, items), result.model.predict(users, items))
    rated = split.train.items[:5], split.train.ratings[:5]
    np.testing.assert_array_equal(run.model.fold_in(*rated).factors, result.model.fold_in(*rated).factors)


def test_rated_sets_are_each_users_movies(low_rank) -> None:
    _, _, split = low_rank
    indptr, items = rated_sets(split.train)
    user = 11
    assert sorted(items[indptr[user] : indptr[user + 1]].tolist()) == sorted(
        split.train.items[split.train.users == user].tolist()
    )


# ------------------------------------------------------------------------------------ cold-items protocol


def test_genre_average_by_hand() -> None:
    items = Vocabulary.from_ids(np.array([1, 2, 3, 4]))
    frame = pd.DataFrame({"userId": [1, 1, 2], "movieId": [1, 2, 2], "rating": [5.0, 2.0, 2.0]})
    train = Ratings.from_frame(frame, None, items)
    genres = [["A"], ["B"], ["A", "B"], []]
    params = genre_average_params(train, genres, RatingScale(0.5, 5.0, 0.5), reg=1.0)
    mean = 3.0
    a, b = (5.0 - mean) / (1 + 1), (2 * (2.0 - mean)) / (2 + 1)  # shrunk by one pseudo-rating at the mean
    model = FactorModel(params)
    np.testing.assert_allclose(model.predict(np.array([0, 0, 0, 0]), np.arange(4)),
                               [mean + a, mean + b, mean + (a + b) / 2, mean], atol=1e-6)  # fmt: skip


def test_cold_items_protocol_hybrid_beats_the_genre_average() -> None:
    dataset = taste_dataset(seed=1)
    report = evaluate_cold_items(TrainConfig(model="hybrid", **FAST), dataset, dataset.ratings, fraction=0.2)
    results = report["results"]
    assert set(results) == {"hybrid", "global-mean", "genre-average", "biases+genre-average"}
    assert report["n_movies_held_out"] == 8 and report["n_held_out_with_genres"] == 8
    assert results["hybrid"]["rmse"] < 0.7 * results["genre-average"]["rmse"]
    assert genre_lists(dataset.movies)[0] == ["Comedy", "Romance"]


def test_cold_items_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = taste_dataset(seed=2)
    split = random_split(dataset.ratings, 0.1, seed=0)
    run = tmp_path / "run"
    files = write_csv_files(dataset, split.train, split.test, tmp_path)
    assert main(["train", *files, "--model", "hybrid", "--epochs", "20", "--dim", "8", "--lr", "0.02",
                 "--out", str(run), "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "cold-items", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["protocol"] == "cold-items" and report["model"] == "hybrid"
    assert report["results"]["hybrid"]["rmse"] < report["results"]["genre-average"]["rmse"]
    assert main(["evaluate", str(run), "--protocol", "cold-items"]) == 0
    assert "genre-average" in capsys.readouterr().out
