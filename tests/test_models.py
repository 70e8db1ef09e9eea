"""The model contract, checked on every model over a tiny low-rank matrix whose right answer is known."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from movierec.artifact.run import load_run, save_run
from movierec.config import TrainConfig
from movierec.data.split import random_split, validation_split
from movierec.models.factors import FactorModel
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


@pytest.mark.parametrize("model", ["global-mean", "biases", "biased-mf", "sigmoid-mf"])
def test_every_model_meets_the_contract(data, model: str) -> None:
    dataset, _, split = data
    fitted = fit(TrainConfig(model=model, **{**FAST, "epochs": 3}), dataset, split.train, progress=False).model
    users, items = split.test.users[:50], split.test.items[:50]
    predicted = fitted.predict(users, items)
    assert predicted.shape == (50,) and predicted.dtype == np.float32
    assert (predicted >= dataset.scale.low).all() and (predicted <= dataset.scale.high).all()
    scores = fitted.score_items(users[:5])
    assert scores.shape == (5, dataset.ratings.n_items)
    np.testing.assert_allclose(scores[np.arange(5), items[:5]], predicted[:5], rtol=1e-5, atol=1e-5)
    assert fitted.rank_scores(users[:5]).shape == (5, dataset.ratings.n_items)
    vector = fitted.fold_in(items[:10], split.test.ratings[:10])
    assert vector.factors.shape == (fitted.params.dim,)
    assert fitted.score_for(vector).shape == (dataset.ratings.n_items,)
    # unknown ids fall back instead of failing
    fallback = fitted.predict(np.array([-1, users[0]]), np.array([items[0], -1]))
    assert np.isfinite(fallback).all()


def test_fold_in_recovers_a_known_user(data) -> None:
    dataset, _, split = data
    model = fit(TrainConfig(model="biased-mf", **FAST), dataset, split.train, progress=False).model
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
