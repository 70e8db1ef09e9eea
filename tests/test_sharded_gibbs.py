"""Sharded Gibbs (`movierec train --shards DIR --solver gibbs`): the shared draws from all-reduced sums are the
single-process draws, world size 1 samples what the single-process sampler samples, world size 2 what world size 1
does (into a run folder that loads and recommends like any gibbs run), ``--resume`` continues the very chain, and
what is not sharded is refused in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.shard import ShardSet, write_shards
from movierec.data.source import DataOptions
from movierec.data.split import random_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.recommend import Recommender
from movierec.train import distributed
from movierec.train.driver import EpochStats, fit
from movierec.train.gibbs_draws import draw_normal_gamma
from movierec.train.gibbs_features import draw_features
from movierec.train.session import train_run
from movierec.train.shard_checkpoint import FOLDER
from movierec.train.shard_exchange import Exchange
from movierec.train.sharded_features import SummedFeatureMatrix
from movierec.train.sharded_gibbs import chain_file, column_stats, draw_normal_gamma_from, draw_summed_features
from test_distributed import two_ranks
from test_fast_hybrid import genre_dataset
from test_gibbs import feature_draw_case

from models_fixtures import low_rank_dataset, rmse

GIBBS = {"solver": "gibbs", "dim": 4, "epochs": 40, "gibbs_burn_in": 10, "device": "cpu", "watch_dim": 0}


def shard_folder(root: Path, dataset, parts: int = 2) -> Path:
    folder = root / "shards"
    write_shards(dataset, random_split(dataset.ratings, 0.1, seed=0), parts, folder, {"data": "synthetic"})
    return folder


def test_the_normal_gamma_draw_from_summed_statistics_is_the_draw_from_the_rows() -> None:
    rows = torch.from_numpy(np.random.default_rng(0).normal([0.5, -1.0], [0.5, 2.0], size=(300, 2)))
    halves = column_stats(rows[:120]) + column_stats(rows[120:])  # what two ranks' all-reduce sums
    from_rows = draw_normal_gamma(rows, np.random.default_rng(7))
    np.testing.assert_allclose(draw_normal_gamma_from(halves.numpy(), np.random.default_rng(7)), from_rows)
    empty = draw_normal_gamma_from(column_stats(rows[:0]).numpy(), np.random.default_rng(7))
    np.testing.assert_allclose(empty, draw_normal_gamma(rows[:0], np.random.default_rng(7)))


def test_the_summed_feature_draw_is_the_single_process_draw_in_a_group_of_one() -> None:
    n_items, n_features, k = 12, 5, 3
    case = feature_draw_case(n_items, n_features, per_movie=2, length=6, k=k, seed=1)
    indptr, indices, weights, gram, prior, classes = (
        case.indptr, case.indices, case.weights, case.gram, case.prior, case.classes,
    )  # fmt: skip
    table, gradient = torch.randn(n_features, k), torch.randn(n_items + 1, k)
    gradient[-1] = 0
    single, single_gradient = table.clone(), gradient.clone()
    with distributed.group("cpu", False) as ranks:
        matrix = SummedFeatureMatrix.own_rows(indptr, indices, weights, n_features, Exchange(ranks))
        feature_gram = matrix.transposed_times(gram.view(-1, k * k), squared=True).view(-1, k, k)
        draw_features(
            single, classes, gram, feature_gram, single_gradient, 2.0, prior, torch.Generator().manual_seed(3)
        )
        colours = [colour.features for colour in classes]
        generator = torch.Generator().manual_seed(3)
        draw_summed_features(table, colours, matrix, feature_gram, gram, gradient, prior, 2.0, generator)
    torch.testing.assert_close(table, single)
    torch.testing.assert_close(gradient, single_gradient)


def test_world_one_samples_what_the_single_process_sampler_samples(tmp_path: Path) -> None:
    dataset = low_rank_dataset()[0]
    shards = ShardSet.open(shard_folder(tmp_path, dataset))
    config = registry.config_for("biased-mf", **GIBBS, shards=str(shards.folder))
    train_run(config, DataOptions(), tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    whole, test = shards.split()
    single = fit(config.replace(shards=None), dataset, whole, progress=False).model
    sharded_rmse = rmse(run.model.predict(test.users, test.items), test.ratings)
    single_rmse = rmse(single.predict(test.users, test.items), test.ratings)
    assert sharded_rmse == pytest.approx(single_rmse, abs=0.01)
    assert sharded_rmse == pytest.approx(run.metrics["rmse"], abs=1e-4)  # the run folder serves what it reports
    assert run.config.solver == "gibbs" and run.model.params.dim == 4 and len(run.history) == 40
    assert not (tmp_path / "run" / FOLDER).exists()


@pytest.mark.parametrize("model", ["biased-mf", "hybrid"])
def test_resume_continues_the_chain(model: str, tmp_path: Path) -> None:
    dataset = genre_dataset() if model == "hybrid" else low_rank_dataset()[0]
    shards = shard_folder(tmp_path, dataset)
    config = registry.config_for(
        model, **{**GIBBS, "epochs": 12, "gibbs_burn_in": 4}, gibbs_stored=3, shards=str(shards)
    )
    train_run(config, DataOptions(), tmp_path / "straight", progress=False)

    def killed(stats: EpochStats) -> None:
        if stats.epoch == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, DataOptions(), tmp_path / "resumed", progress=False, on_epoch=killed)
    assert (tmp_path / "resumed" / FOLDER / chain_file(0, 6)).is_file()
    train_run(config, DataOptions(), tmp_path / "resumed", progress=False, resume=True)
    straight, resumed = (load_run(tmp_path / name) for name in ("straight", "resumed"))
    assert [row["val_rmse"] for row in resumed.history] == [row["val_rmse"] for row in straight.history]
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(resumed.model.params, name), getattr(straight.model.params, name))
    assert straight.model.params.dim == 3 * 4  # three stored samples side by side, as a single-process run stores


def test_what_is_not_sharded_is_refused_in_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MovieRecError, match="does not sample --use-time"):
        TrainConfig(model="biased-mf", solver="gibbs", use_time=True, shards="s")
    TrainConfig(model="biased-mf", solver="gibbs", shards="s")
    # the hybrid's implicit block (myFM's flipped block under gibbs) is left out when sharded, as sharded ALS
    # leaves out the SVD++ term: accepted, not refused
    TrainConfig(model="hybrid", solver="gibbs", use_implicit=True, shards="s")
    shards = shard_folder(tmp_path, low_rank_dataset()[0])
    args = ["train", "--shards", str(shards), "--model", "biased-mf", "--solver", "gibbs", "--use-time"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert "--shards with --solver gibbs does not sample --use-time" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow  # one in-process run and two torchrun processes: about 30 s on 2 cores
def test_two_ranks_sample_what_one_rank_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = shard_folder(tmp_path, low_rank_dataset()[0])
    args = ["train", "--shards", str(shards), "--model", "biased-mf", "--solver", "gibbs", "--dim", "4"]
    args += ["--epochs", "40", "--gibbs-burn-in", "10", "--watch-dim", "0", "--device", "cpu", "--json", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    two = two_ranks([*args, "--out", str(tmp_path / "two")], tmp_path, timeout=300, collective_timeout=60)

    assert two["n_test"] == one["n_test"]
    assert two["rmse"] == pytest.approx(one["rmse"], abs=0.01)  # two chains of one posterior
    assert two["rmse"] < 0.5 * two["baselines"]["biases"]["rmse"]
    run = load_run(tmp_path / "two")
    assert run.config.solver == "gibbs" and run.model.params.dim == 4
    _, test = ShardSet.open(shards).split()
    assert rmse(run.model.predict(test.users, test.items), test.ratings) == pytest.approx(two["rmse"], abs=1e-4)
    recommender = Recommender.load(tmp_path / "two", min_ratings=1)
    assert len(recommender.recommend_user(int(run.train.user_vocab.ids[0]), n=5)) == 5
