"""Sharded ALS (`movierec data shard` + `movierec train --shards`): the shard folder, and world size 2 training
the same model as world size 1, into a run folder that loads and recommends like any other."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.shard import MANIFEST, ShardSet, part_name, validation_mask, write_shards
from movierec.data.split import Split, random_split
from movierec.errors import DataError, MovieRecError
from movierec.evaluate import report
from movierec.evaluate.genres import movie_genres
from movierec.models.factors import FactorParams
from movierec.recommend import Recommender
from movierec.train import distributed, sharded_finish
from movierec.train.driver import finish_model, finish_params, held_out, train_sharded
from movierec.train.shard_exchange import Exchange
from movierec.train.sharded_watch import fit_sharded_watch, starting_items
from movierec.train.watch import configured_settings, configured_taste, fit_watch
from test_distributed import two_ranks
from test_fast_hybrid import COLD, genre_dataset

from models_fixtures import low_rank_dataset

TRAIN_ARGS = ["--model", "biased-mf", "--solver", "als", "--dim", "8", "--epochs", "8", "--watch-dim", "6"]


def pairs(ratings) -> set[tuple[int, int, float]]:
    return set(zip(ratings.users.tolist(), ratings.items.tolist(), ratings.ratings.tolist(), strict=True))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ratings CSV of the low-rank fixture, stars clipped to the MovieLens scale."""
    frame = low_rank_dataset()[0].ratings.to_frame()
    frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
    path = tmp_path_factory.mktemp("source") / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


def test_shards_hold_each_training_rating_once_by_user_owner(tmp_path: Path) -> None:
    dataset, _ = low_rank_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    manifest = write_shards(dataset, split, 4, tmp_path / "shards", {"data": "low-rank"})
    shards = ShardSet.open(tmp_path / "shards")
    assert manifest["part_ratings"] == [len(shards.read_owned(part, 4)) for part in range(4)]
    assert sum(manifest["part_ratings"]) == manifest["n_train"] == len(split.train)
    for world in (1, 2, 4):
        owned = [shards.read_owned(rank, world) for rank in range(world)]
        for rank, part in enumerate(owned):
            assert (part.users % world == rank).all()  # a rank reads exactly its users' ratings
        assert sum(len(part) for part in owned) == len(split.train)
        assert set().union(*(pairs(part) for part in owned)) == pairs(split.train)
    whole, test = shards.split()
    assert pairs(whole) == pairs(split.train) and pairs(test) == pairs(split.test)
    assert np.array_equal(whole.user_vocab.ids, split.train.user_vocab.ids)
    assert np.array_equal(whole.item_vocab.ids, split.train.item_vocab.ids)
    assert shards.data == {"data": "low-rank"} and shards.scale == dataset.scale
    with pytest.raises(MovieRecError, match="4 parts, which 3 processes cannot share evenly"):
        shards.read_owned(0, 3)
    (tmp_path / "shards" / part_name(1)).write_bytes(b"damaged")
    with pytest.raises(DataError, match="missing or damaged"):
        ShardSet.open(tmp_path / "shards").read_owned(1, 4)


def test_the_validation_ratings_do_not_depend_on_who_holds_them() -> None:
    ratings = low_rank_dataset()[0].ratings
    whole = validation_mask(ratings, 0.2, seed=3)
    halves = [np.flatnonzero(ratings.users % 2 == rank) for rank in range(2)]
    for rows in halves:
        assert np.array_equal(validation_mask(ratings.take(rows), 0.2, seed=3), whole[rows])
    assert abs(whole.mean() - 0.2) < 0.02
    assert not np.array_equal(validation_mask(ratings, 0.2, seed=4), whole)


def test_the_summary_finishes_and_scores_the_model_as_every_rating_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 0 finishes and scores a sharded run from a summary (counts, the sampled users' ratings), never from
    every rating: the ranking weights, the scoring extras and every metric match those of the whole training set."""
    monkeypatch.setattr(report, "RANKED_USERS", 60)  # sample the test users, as on a large set
    monkeypatch.setattr(sharded_finish, "RANKED_USERS", 60)
    dataset, _ = low_rank_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    write_shards(dataset, split, 2, tmp_path / "shards", {"data": "low-rank"})
    shards = ShardSet.open(tmp_path / "shards")
    config = TrainConfig(model="biased-mf", solver="als", dim=8, epochs=3, watch_dim=0, shards=str(shards.folder))
    with distributed.group(config.device, False) as ranks:
        trained = train_sharded(config, shards, progress=False)
        params = trained.solver.gather(trained.state.best_state)
        own = shards.read_owned(ranks.rank, ranks.world)
        summary = sharded_finish.gather_summary(own, shards, config.val_fraction, config.seed, Exchange(ranks))
    assert params is not None and summary is not None
    train = shards.train
    genres = movie_genres(shards.movies, train.n_items)
    whole = finish_model(params, held_out(train, config), train, config, genres)
    summed = finish_model(params, Split(summary.fit, summary.valid), summary.train, config, genres)
    assert summed.params.rank_weight == whole.params.rank_weight
    for name in ("item_prior", "user_known", "item_known", "user_factors", "fold_in_mean", "fold_in_precision"):
        assert np.allclose(getattr(summed.params, name), getattr(whole.params, name)), name
    assert len(summary.train) < len(train) and summary.n_train == len(train)
    expected = report.compare_with_baselines(whole, train, summary.test, shards.scale, genres=genres)
    got = sharded_finish.sharded_metrics(summed, summary, shards.scale, genres)
    assert "EASE left out" in got["baselines"].pop("ease")["note"]
    expected["baselines"].pop("ease")
    for name, row in [("model", got), *got["baselines"].items()]:
        want = expected if name == "model" else expected["baselines"][name]
        numbers = {key for key, value in want.items() if isinstance(value, float | int)}
        assert numbers == {key for key, value in row.items() if isinstance(value, float | int)}, name
        for key in numbers:
            assert row[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (name, key)


def test_the_sharded_watch_fit_in_one_process_is_the_single_process_fit_exactly() -> None:
    """World size 1 runs the sharded "likely to watch" fit (fetched rows, all-reduced Y'Y) to the very bits of
    ``fit_watch`` from the same starting vectors: the fit on the fit part, then the warm refit on every rating."""
    ratings = low_rank_dataset()[0].ratings
    config = TrainConfig(model="biased-mf", solver="als", watch_dim=6, watch_iterations=3, shards="-")
    mean = float(np.float32(ratings.ratings.mean()))
    with distributed.group(config.device, False) as ranks:
        exchange = Exchange(ranks)
        fits = fit_sharded_watch(ratings, config, mean, exchange)
        gathered = fits.fit_gathered(np.arange(ratings.n_users), exchange), fits.refit_gathered(exchange)
    taste = configured_taste(config, mean)
    start = starting_items(np.arange(ratings.n_items), config.watch_dim, config.seed)
    fit = fit_watch(held_out(ratings, config).train, configured_settings(config), taste, start=start)
    refit = fit_watch(ratings, configured_settings(config, refit=True), taste, start=fit.item)
    for got, want in zip(gathered, (fit, refit), strict=True):
        assert got is not None
        np.testing.assert_array_equal(got.user, want.user)
        np.testing.assert_array_equal(got.item, want.item)
    assert np.abs(refit.user).sum() > 0 and not np.array_equal(refit.item, fit.item)


def test_bad_shard_requests_are_one_sentence(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "shard", str(source), "--parts", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--parts 0 is not a number of parts" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["data", "shard", str(source), "--parts", "2", "--out", str(tmp_path / "file")]) == 2
    assert "is a file; give a folder" in " ".join(capsys.readouterr().err.split())
    assert main(["data", "shard", str(source), "--parts", "100000", "--out", str(tmp_path / "s")]) == 2
    assert "is more than the 200 users" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--shards", str(tmp_path / "none"), *TRAIN_ARGS, "--out", str(tmp_path / "r")]) == 2
    assert "is not a shard folder" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(MovieRecError, match="--shards trains --model biased-mf or hybrid with --solver als"):
        TrainConfig(model="hybrid", solver="loop", shards="s")
    with pytest.raises(MovieRecError, match="not 'sigmoid-mf' with 'als'"):
        TrainConfig(model="sigmoid-mf", solver="als", shards="s")


def same_tables(one: Path, two: Path) -> None:
    single, sharded = load_run(one).model.params, load_run(two).model.params
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "watch_user", "watch_item"):
        assert np.allclose(getattr(sharded, name), getattr(single, name), atol=1e-4), name
    assert sharded.global_mean == pytest.approx(single.global_mean)
    assert (sharded.rank_weight, sharded.watch_weight) == (single.rank_weight, single.watch_weight)
    assert np.array_equal(sharded.item_known, single.item_known)


@pytest.mark.slow  # one in-process run and two torchrun processes: about 15 s on 2 cores
def test_two_ranks_train_the_model_one_rank_trains(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = tmp_path / "shards"
    assert main(["data", "shard", str(source), "--parts", "2", "--out", str(shards), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert manifest["parts"] == 2 and manifest["n_train"] + manifest["n_test"] == 8_000
    assert (shards / MANIFEST).is_file()
    args = ["train", "--shards", str(shards), *TRAIN_ARGS, "--json", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    two = two_ranks([*args, "--out", str(tmp_path / "two")], tmp_path, timeout=240, collective_timeout=60)

    assert two["n_test"] == one["n_test"] == manifest["n_test"]
    assert two["rmse"] == pytest.approx(one["rmse"], abs=0.002)
    assert two["rmse"] < 0.9 * two["baselines"]["biases"]["rmse"]  # it learned the interaction, not just biases
    assert two["best_epoch"] == one["best_epoch"]
    for key in ("ndcg@10", "coverage@10", "personalization@10"):
        assert two[key] == pytest.approx(one[key], abs=0.01), key
    same_tables(tmp_path / "one", tmp_path / "two")
    assert load_run(tmp_path / "two").model.params.has_watch  # the "likely to watch" part, fitted sharded
    streamed = load_run(tmp_path / "two").train  # train.parquet written part by part, in the parts' order
    assert pairs(streamed) == pairs(ShardSet.open(shards).train) and len(streamed) == manifest["n_train"]
    assert np.array_equal(streamed.users, load_run(tmp_path / "one").train.users)

    run = load_run(tmp_path / "two")
    assert run.config.shards == str(shards) and run.data["data"] == str(source)
    recommender = Recommender.load(tmp_path / "two", min_ratings=1)
    user = int(run.train.user_vocab.ids[0])
    picks = recommender.recommend_user(user, n=5)
    rated = set(run.train.item_vocab.ids[run.train.items[run.train.users == 0]].tolist())
    assert len(picks) == 5 and not rated & {pick.movieId for pick in picks}


@pytest.mark.slow  # one in-process run and two torchrun processes: about 15 s on 2 cores
def test_two_ranks_train_the_hybrid_one_rank_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = genre_dataset()
    tagged = ["funny" if movie % 2 == 0 else "scary" for movie in range(80)]
    tags = pd.DataFrame({"userId": 0, "movieId": np.arange(80), "tag": tagged, "timestamp": 0})
    dataset = replace(dataset, tags=tags)
    write_shards(dataset, random_split(dataset.ratings, 0.1, seed=0), 2, tmp_path / "shards", {"data": "genres"})
    args = ["train", "--shards", str(tmp_path / "shards"), "--model", "hybrid", "--solver", "als", "--dim", "4"]
    args += ["--reg", "0.3", "--epochs", "12", "--watch-dim", "0", "--json", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    two = two_ranks([*args, "--out", str(tmp_path / "two")], tmp_path, timeout=240, collective_timeout=60)

    assert two["rmse"] == pytest.approx(one["rmse"], abs=0.002) and two["best_epoch"] == one["best_epoch"]
    assert two["rmse"] < 0.5 * two["baselines"]["biases"]["rmse"]  # the genres carry the taste
    same_tables(tmp_path / "one", tmp_path / "two")
    params = load_run(tmp_path / "two").model.params
    cold = load_run(tmp_path / "two").train.item_vocab.index_many(np.array(COLD))
    assert params.item_known[cold].all() and np.abs(params.item_factors[cold]).sum() > 0  # from features alone
    assert len(Recommender.load(tmp_path / "two", min_ratings=1).recommend_user(0, n=5)) == 5


def test_finishing_owned_tables_in_place_gives_the_copies_values() -> None:
    """``finish_params(owned=True)`` (sharded rank 0, which lets go of the gathered tables) zeroes the untrained
    rows in the tables themselves: the same finished values as the copies, and no copy of the factor tables."""
    ratings = low_rank_dataset()[0].ratings
    config = TrainConfig(model="biased-mf", solver="als", watch_dim=0)
    fit = held_out(ratings, config).train
    fit = fit.take(np.flatnonzero(fit.users != 3))  # user 3 untrained: a row to zero
    rng = np.random.default_rng(0)
    params = FactorParams(
        global_mean=3.5,
        user_bias=rng.normal(size=ratings.n_users).astype(np.float32),
        item_bias=rng.normal(size=ratings.n_items).astype(np.float32),
        user_factors=rng.normal(size=(ratings.n_users, 4)).astype(np.float32),
        item_factors=rng.normal(size=(ratings.n_items, 4)).astype(np.float32),
        low=0.5,
        high=5.0,
    )
    copied = finish_params(params, fit, config)
    owned = replace(params, user_factors=params.user_factors.copy(), user_bias=params.user_bias.copy())
    in_place = finish_params(owned, fit, config, owned=True)
    assert in_place.user_factors is owned.user_factors and not np.any(in_place.user_factors[3])
    for name in ("user_bias", "item_bias", "user_factors", "item_factors", "fold_in_mean", "fold_in_precision"):
        np.testing.assert_array_equal(getattr(in_place, name), getattr(copied, name), err_msg=name)
    assert np.any(params.user_factors[3])  # the copies left the caller's tables alone
