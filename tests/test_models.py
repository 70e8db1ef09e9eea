"""The model contract, checked on every model over a tiny low-rank matrix whose right answer is known."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from movierec.artifact.run import load_params, load_run, save_params, save_run, write_manifest
from movierec.config import TrainConfig
from movierec.data.split import random_split, validation_split
from movierec.models import registry
from movierec.models.factors import FactorModel, rank_scores_of
from movierec.train.driver import fit

from models_fixtures import low_rank_dataset, rmse

FAST = {"epochs": 60, "lr": 0.02, "batch_size": 256, "patience": 5, "dim": 8, "reg": 0.01, "init_std": 0.1}

# model -> (settings, how close to the noise floor it must get). The truth is linear and unbounded, so the
# sigmoid model needs more factors to bend to it and gets less close.
RECOVERY = {
    "biased-mf": ({"dim": 3, "reg": 0.0, "lr": 0.01}, 1.2),
    "sigmoid-mf": ({"dim": 8, "reg": 0.05}, 1.4),
}


@pytest.fixture(scope="module")
def data():
    dataset, truth = low_rank_dataset()
    return dataset, truth, random_split(dataset.ratings, 0.1, seed=0)


@pytest.mark.parametrize("model", sorted(RECOVERY))
def test_factor_models_recover_a_low_rank_matrix(data, model: str) -> None:
    dataset, truth, split = data
    settings, factor = RECOVERY[model]
    result = fit(TrainConfig(model=model, **{**FAST, "epochs": 100, **settings}), dataset, split.train, progress=False)
    predicted = result.model.predict(split.test.users, split.test.items)
    floor = truth.ideal_rmse(split.test)
    biases_only = fit(TrainConfig(model="biases"), dataset, split.train, progress=False).model
    assert rmse(predicted, split.test.ratings) < factor * floor
    assert rmse(predicted, split.test.ratings) < rmse(
        biases_only.predict(split.test.users, split.test.items), split.test.ratings
    )


CONTRACT = [(name, solver) for name in registry.names() for solver in registry.get(name).solvers]
"""Every registered model under every solver that can train it (a model fitted in closed form has one)."""


@pytest.mark.parametrize(("model", "solver"), CONTRACT)
def test_every_model_meets_the_contract(data, model: str, solver: str, tmp_path: Path) -> None:
    dataset, _, split = data
    config = TrainConfig(model=model, solver=solver, **{**FAST, "epochs": 3, "gibbs_burn_in": 1})
    fitted = fit(config, dataset, split.train, progress=False).model
    n_items = dataset.ratings.n_items
    users, items = split.test.users[:50], split.test.items[:50]
    predicted = fitted.predict(users, items)
    assert predicted.shape == (50,) and predicted.dtype == np.float32
    assert (predicted >= dataset.scale.low).all() and (predicted <= dataset.scale.high).all()
    scores = fitted.score_items(users[:5])
    assert scores.shape == (5, n_items)
    np.testing.assert_allclose(scores[np.arange(5), items[:5]], predicted[:5], rtol=1e-5, atol=1e-5)
    ranked = fitted.rank_scores(users[:5])
    assert ranked.shape == (5, n_items)
    vector = fitted.fold_in(items[:10], split.test.ratings[:10])
    assert vector.factors.shape == (fitted.params.dim,)
    assert fitted.score_for(vector).shape == (n_items,)
    # unknown ids fall back instead of failing
    fallback = fitted.predict(np.array([-1, users[0]]), np.array([items[0], -1]))
    assert np.isfinite(fallback).all()
    assert fitted.predict_for(vector, np.array([-1]))[0] == pytest.approx(fitted.unknown_movie_rating(vector))
    # a score's parts add up to it, and the batch form of the ranking score is the same score
    user = fitted.user_vector(int(users[0]))
    every = np.arange(n_items)
    parts = fitted.rating_parts(user, every)
    np.testing.assert_allclose(fitted.link(sum(parts.values())), fitted.score_items(users[:1])[0], atol=1e-5)
    split_score = fitted.rank_parts(user, every, fitted.score_items(users[:1])[0])
    np.testing.assert_allclose(sum(split_score.values()), ranked[0], atol=1e-5)
    tables = fitted.rank_tables(every).map(torch.from_numpy)
    user_rating, user_extra = fitted.rank_rows(users[:5])
    extra = None if user_extra is None else torch.from_numpy(user_extra)
    np.testing.assert_allclose(rank_scores_of(tables, torch.from_numpy(user_rating), extra).numpy(), ranked, atol=1e-5)
    # the weights file holds every part of the model
    save_params(tmp_path / "model.safetensors", fitted.params, fitted.name)
    loaded, name = load_params(tmp_path / "model.safetensors")
    assert name == model
    np.testing.assert_array_equal(FactorModel(loaded).rank_scores(users[:5]), ranked)
    np.testing.assert_array_equal(
        FactorModel(loaded).fold_in(items[:10], split.test.ratings[:10]).factors, vector.factors
    )


@pytest.mark.parametrize(
    ("model_name", "settings"), [("biased-mf", {}), ("hybrid", {"batch_size": 1024, "lr": 0.03})]
)  # the hybrid's fold-in adds the SVD++ term of the rated movies, as its training did
def test_fold_in_recovers_a_known_user(data, model_name: str, settings: dict[str, float]) -> None:
    dataset, _, split = data
    config = TrainConfig(model=model_name, **{**FAST, **settings})
    model = fit(config, dataset, split.train, progress=False).model
    assert (model.params.implicit is not None) == (model_name == "hybrid")
    user = int(np.bincount(split.train.users).argmax())
    mine = split.train.users == user
    folded = model.fold_in(split.train.items[mine], split.train.ratings[mine])
    all_items = np.arange(dataset.ratings.n_items)
    learned = model.predict(np.full(all_items.size, user), all_items)
    assert rmse(model.predict_for(folded, all_items), learned) < 0.25
    # a new user given nothing gets the movie biases only, never an error
    empty = model.fold_in(np.array([], np.int64), np.array([], np.float32))
    assert empty.bias == 0.0 and not empty.factors.any()


def test_early_stopping_restores_the_best_epoch(data) -> None:
    dataset, _, split = data
    config = TrainConfig(
        model="biased-mf", epochs=40, lr=0.08, batch_size=64, patience=2, dim=16, reg=0.0, init_std=0.3
    )
    result = fit(config, dataset, split.train, progress=False)
    val_curve = [row.val_rmse for row in result.history]
    assert len(val_curve) < config.epochs, "a model this overfit should stop early"
    assert result.best_epoch == int(np.argmin(val_curve)) + 1
    assert result.best_epoch < len(val_curve)
    valid = validation_split(split.train, fraction=config.val_fraction, seed=config.seed).test
    restored = rmse(result.model.predict(valid.users, valid.items), valid.ratings)
    assert restored == pytest.approx(min(val_curve), abs=1e-4)


def test_same_seed_same_model_and_other_seed_differs(data) -> None:
    dataset, _, split = data
    config = TrainConfig(model="biased-mf", **{**FAST, "epochs": 3})
    first = fit(config, dataset, split.train, progress=False).model.params
    second = fit(config, dataset, split.train, progress=False).model.params
    other = fit(config.replace(seed=1), dataset, split.train, progress=False).model.params
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_bias, second.user_bias)
    assert not np.array_equal(first.item_factors, other.item_factors)


def test_resume_continues_exactly(data, tmp_path: Path) -> None:
    dataset, _, split = data
    config = TrainConfig(model="biased-mf", **{**FAST, "epochs": 4, "patience": 10})
    straight = fit(config, dataset, split.train, progress=False)
    fit(config.replace(epochs=2), dataset, split.train, run_dir=tmp_path, progress=False)
    resumed = fit(config, dataset, split.train, run_dir=tmp_path, resume=True, progress=False)
    assert [round(h.val_rmse, 6) for h in resumed.history] == [round(h.val_rmse, 6) for h in straight.history]
    np.testing.assert_allclose(resumed.model.params.item_factors, straight.model.params.item_factors, atol=1e-6)


def test_save_load_round_trip_in_a_fresh_process(data, tmp_path: Path) -> None:
    dataset, _, split = data
    config = TrainConfig(model="biased-mf", **{**FAST, "epochs": 3})
    result = fit(config, dataset, split.train, progress=False)
    save_run(
        tmp_path, config=config, model=result.model, movies=dataset.movies, train=split.train,
        metrics={"rmse": 1.0}, history=[h.to_row() for h in result.history], data={},
    )  # fmt: skip
    users, items = split.test.users[:100], split.test.items[:100]
    expected = result.model.predict(users, items)
    np.save(tmp_path / "pairs.npy", np.stack([users, items]))
    code = (
        "import sys, numpy as np; from movierec.artifact.run import load_run; "
        "run = load_run(sys.argv[1]); pairs = np.load(sys.argv[2]); "
        "np.save(sys.argv[3], run.model.predict(pairs[0], pairs[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(tmp_path / "pairs.npy"), str(tmp_path / "out.npy")],
        check=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    loaded = load_run(tmp_path)
    assert loaded.config == config
    assert isinstance(loaded.model, FactorModel) and loaded.model.name == "biased-mf"
    assert (tmp_path / "plots" / "learning_curve.png").stat().st_size > 1000


# Weights files as earlier versions of movierec wrote them, key for key (a record of the format, kept by hand on
# purpose): tensors, then metadata. Since the fold-in prior, ``fold_in_mean`` and ``fold_in_precision`` joined the
# tensors when a model had one.
EARLIER_TENSORS = (
    "user_bias", "item_bias", "user_factors", "item_factors", "user_known", "item_known", "item_prior",
    "watch_user", "watch_item",
)  # fmt: skip
EARLIER_METADATA = (
    "global_mean", "low", "high", "rank_weight", "fold_in_reg", "watch_weight", "watch_reg", "watch_unobserved", "link",
)  # fmt: skip


@pytest.mark.parametrize("with_prior", [False, True], ids=["before-the-fold-in-prior", "with-the-fold-in-prior"])
def test_run_folders_written_by_earlier_versions_still_load(data, tmp_path: Path, with_prior: bool) -> None:
    dataset, _, split = data
    config = TrainConfig(model="biased-mf", **{**FAST, "epochs": 2})
    params = fit(config, dataset, split.train, progress=False).model.params
    assert params.fold_in_mean.size and params.has_watch
    if not with_prior:
        params = replace(params, fold_in_mean=np.empty(0), fold_in_precision=np.empty((0, 0)))
    model = FactorModel(params, "biased-mf")
    save_run(
        tmp_path, config=config, model=model, movies=dataset.movies, train=split.train, metrics={}, history=[], data={}
    )
    tensors = {key: getattr(params, key) for key in EARLIER_TENSORS}
    if with_prior:
        tensors.update(fold_in_mean=params.fold_in_mean, fold_in_precision=params.fold_in_precision)
    metadata = {key: str(getattr(params, key)) for key in EARLIER_METADATA} | {"format": "1", "model": "biased-mf"}
    tensors = {k: np.ascontiguousarray(v.astype(np.uint8) if v.dtype == bool else v) for k, v in tensors.items()}
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata=metadata)
    write_manifest(tmp_path)

    loaded = load_run(tmp_path).model
    assert loaded.params.fold_in_mean.size == (params.dim + 1 if with_prior else 0)
    users, items = split.test.users, split.test.items
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.rank_scores(users[:20]), model.rank_scores(users[:20]))
    rated = split.test.items[:8], split.test.ratings[:8]
    np.testing.assert_array_equal(loaded.fold_in(*rated).factors, model.fold_in(*rated).factors)
