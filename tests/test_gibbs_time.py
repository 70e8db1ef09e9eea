"""Time effects in the Gibbs sampler (``train/gibbs_time.py``, ``models/time_effects.py``): recovery of a known
drift and movie-bin biases from data drawn from the model, dated against undated predictions, resume, and run
folders written before the time fields existed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from movierec.artifact.run import load_params, save_params
from movierec.config import TrainConfig
from movierec.data.ratings import Dataset
from movierec.data.split import random_split
from movierec.models import registry
from movierec.models.factors import FactorModel
from movierec.models.time_effects import DAY, TimeAxis, deviation
from movierec.train.driver import fit
from test_gibbs import killed_and_resumed

from models_fixtures import low_rank_dataset, rmse

GIBBS = {"solver": "gibbs", "dim": 3, "epochs": 60, "gibbs_burn_in": 20, "device": "cpu", "watch_dim": 0}
TIME_FIELDS = ("time_span", "item_time_bias", "user_drift", "user_days")


def timed(config: TrainConfig) -> TrainConfig:
    """``config`` with the time effects on."""
    return config.replace(use_time=True)


def drifting_dataset() -> tuple[Dataset, np.ndarray, np.ndarray]:
    """The low-rank ratings dated over each user's own window of days, plus a drift ``a_u dev_u(t)`` and a movie
    bias per time bin; returns the dataset, the true drifts and the true bin biases (``[n_items, bins]``)."""
    dataset, _ = low_rank_dataset(noise=0.3)
    ratings = dataset.ratings
    rng = np.random.default_rng(5)
    start, length = rng.uniform(0, 3000, ratings.n_users), rng.uniform(0, 600, ratings.n_users)
    days = start[ratings.users] + rng.uniform(0, 1, len(ratings)) * length[ratings.users]
    stamps = (1e9 + days * DAY).astype(np.int64)
    axis = TimeAxis.of(ratings.users, stamps, ratings.n_users)
    drift = rng.normal(0, 0.08, ratings.n_users)
    bins = rng.normal(0, 0.3, (ratings.n_items, axis.n_bins))
    moved = drift[ratings.users] * axis.drift(ratings.users, stamps) + bins[ratings.items, axis.bins(stamps)]
    dated = replace(ratings, ratings=(ratings.ratings + moved).astype(np.float32), timestamps=stamps)
    return Dataset("drifting", dated, dataset.movies, None, dataset.scale), drift, bins


def test_the_time_blocks_recover_a_known_drift_and_movie_bin_biases() -> None:
    dataset, drift, bins = drifting_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    model = fit(timed(registry.config_for("biased-mf", **GIBBS)), dataset, split.train, progress=False).model
    params, test = model.params, split.test
    assert np.corrcoef(params.user_drift, drift)[0, 1] > 0.9
    assert params.user_drift.std() == pytest.approx(drift.std(), rel=0.25)
    train = split.train
    axis = TimeAxis.of(train.users, train.timestamps, train.n_users)
    seen = np.zeros(bins.shape, bool)
    seen[train.items, axis.bins(train.timestamps)] = True  # pairs with ratings (the others stay at the prior)
    truth, fitted = (np.where(seen, table, 0.0) for table in (bins, params.item_time_bias))
    within = [
        table - table.sum(1, keepdims=True) / np.maximum(seen.sum(1, keepdims=True), 1) for table in (truth, fitted)
    ]
    assert np.corrcoef(within[0][seen], within[1][seen])[0, 1] > 0.7  # each movie's bins about their mean
    dated = rmse(model.predict(test.users, test.items, test.timestamps), test.ratings)
    untimed = fit(registry.config_for("biased-mf", **GIBBS), dataset, split.train, progress=False).model
    assert dated < 0.75 * rmse(untimed.predict(test.users, test.items), test.ratings)


def test_a_prediction_dated_at_the_latest_training_date_is_the_undated_one() -> None:
    dataset, _, _ = drifting_dataset()
    config = timed(registry.config_for("biased-mf", **{**GIBBS, "epochs": 8, "gibbs_burn_in": 4}))
    model = fit(config, dataset, dataset.ratings, progress=False).model
    users, items = dataset.ratings.users, dataset.ratings.items
    latest = np.full(users.shape, model.params.time_span[1])
    np.testing.assert_allclose(model.predict(users, items, latest), model.predict(users, items), atol=1e-5)
    np.testing.assert_allclose(model.predict(users, items, np.zeros_like(latest)), model.predict(users, items))
    assert not np.allclose(model.predict(users, items, dataset.ratings.timestamps), model.predict(users, items))


def test_a_users_drift_is_held_at_the_ends_of_their_dates() -> None:
    days = np.array([[10.0, 0.0, 30.0]])  # mean, first, last
    inside, after, before = (deviation(days, np.array([d * DAY])) for d in (26.0, 400.0, -50.0))
    assert inside == pytest.approx(16.0**0.4)
    assert after == pytest.approx(20.0**0.4) and before == pytest.approx(-(10.0**0.4))


def test_resume_continues_a_timed_chain(tmp_path: Path) -> None:
    dataset, _, _ = drifting_dataset()
    config = timed(registry.config_for("biased-mf", **{**GIBBS, "epochs": 10, "gibbs_burn_in": 4}))
    straight = fit(config, dataset, dataset.ratings, progress=False)
    resumed = killed_and_resumed(config, dataset, dataset.ratings, tmp_path)
    assert [h.val_rmse for h in resumed.history] == [h.val_rmse for h in straight.history]
    for name in ("user_bias", "item_bias", *TIME_FIELDS):
        np.testing.assert_array_equal(getattr(resumed.model.params, name), getattr(straight.model.params, name))


def test_a_model_file_written_before_the_time_fields_loads_without_them(tmp_path: Path) -> None:
    dataset, _ = low_rank_dataset()
    model = fit(registry.config_for("biased-mf", **{**GIBBS, "epochs": 4, "gibbs_burn_in": 2}), dataset,
                dataset.ratings, progress=False).model  # fmt: skip
    path = tmp_path / "model.safetensors"
    save_params(path, model.params, "biased-mf")
    with safe_open(str(path), "np") as stored:
        metadata = stored.metadata()
    arrays = {name: value for name, value in load_file(path).items() if name not in TIME_FIELDS}
    save_file(arrays, str(path), metadata=metadata)  # as a run from before the time effects wrote it
    params, _ = load_params(path)
    assert params.item_time_bias.size == 0 and params.user_drift.size == 0
    loaded, ratings = FactorModel(params), dataset.ratings
    np.testing.assert_array_equal(
        loaded.predict(ratings.users, ratings.items, ratings.timestamps), model.predict(ratings.users, ratings.items)
    )
