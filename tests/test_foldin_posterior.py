"""Fold-in of a new user is the posterior mean of their [bias, factors] under the trained users' Gaussian prior
(``FactorModel.fold_in_system``), and on users drawn from that prior it predicts their other ratings better than a
user bias alone folded in from the same ratings (the cold-start protocol's baseline)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from movierec.config import TrainConfig
from movierec.evaluate.coldstart import BASELINE_USER_REG
from movierec.models.factors import FactorModel, FactorParams, population_prior

N_ITEMS, DIM, NOISE = 400, 4, 0.5


def world(seed: int = 0) -> tuple[FactorModel, np.ndarray, np.ndarray, np.random.Generator]:
    """A model whose movie side is exact, with a population prior N(mean, covariance) and noise variance NOISE
    (an unclipped scale, so the linear model is exactly Gaussian), the prior's mean and covariance."""
    rng = np.random.default_rng(seed)
    mean = np.array([0.3, 0.5, -0.2, 0.0, 0.4])
    root = rng.normal(0, 0.4, (DIM + 1, DIM + 1))
    covariance = root @ root.T + 0.05 * np.eye(DIM + 1)
    params = FactorParams(
        global_mean=3.5,
        user_bias=np.zeros(1, np.float32),
        item_bias=rng.normal(0, 0.4, N_ITEMS).astype(np.float32),
        user_factors=np.zeros((1, DIM), np.float32),
        item_factors=rng.normal(0, 0.8, (N_ITEMS, DIM)).astype(np.float32),
        low=-100.0,
        high=100.0,
        fold_in_reg=NOISE,
        fold_in_mean=mean,
        fold_in_precision=np.linalg.inv(covariance),
    )
    return FactorModel(params), mean, covariance, rng


def test_fold_in_is_the_gaussian_posterior_mean() -> None:
    model, mean, covariance, rng = world()
    p = model.params
    items = rng.choice(N_ITEMS, 7, replace=False)
    stars = rng.uniform(1, 5, 7)
    design = np.hstack([np.ones((7, 1)), p.item_factors[items].astype(np.float64)])
    target = stars - p.global_mean - p.item_bias[items]
    precision = np.linalg.inv(covariance)
    expected = np.linalg.solve(precision + design.T @ design / NOISE, precision @ mean + design.T @ target / NOISE)
    user = model.fold_in(items, stars)
    assert np.allclose([user.bias, *user.factors], expected, atol=1e-5)
    # no ratings: the prior's mean
    empty = model.fold_in_system(np.empty(0, np.int64), np.empty(0))
    assert np.allclose(np.linalg.solve(empty.lhs, empty.prior_rhs), mean)


def test_fold_in_beats_a_folded_in_user_bias_on_users_drawn_from_the_prior() -> None:
    """... and the true noise variance beats a noise variance four times too small or too large."""
    model, mean, covariance, rng = world(1)
    p = model.params
    baseline = FactorModel(
        replace(p, item_factors=np.zeros((N_ITEMS, 0), np.float32), user_factors=np.zeros((1, 0), np.float32),
                fold_in_mean=np.empty(0), fold_in_precision=np.empty((0, 0)), fold_in_reg=2 * BASELINE_USER_REG)
    )  # fmt: skip
    mis_set = [FactorModel(replace(p, fold_in_reg=NOISE * scale)) for scale in (0.25, 4.0)]
    for given in (5, 10, 20):
        errors: dict[str, list[np.ndarray]] = {"posterior": [], "biases": [], "too small": [], "too large": []}
        for _ in range(300):
            user = rng.multivariate_normal(mean, covariance)
            items = rng.choice(N_ITEMS, 60, replace=False)
            raw = p.global_mean + p.item_bias[items] + user[0] + p.item_factors[items] @ user[1:]
            stars = raw + rng.normal(0, np.sqrt(NOISE), items.size)
            shown, rest = slice(None, given), slice(given, None)
            for name, fitted in zip(errors, (model, baseline, *mis_set), strict=True):
                folded = fitted.fold_in(items[shown], stars[shown])
                errors[name].append(fitted.predict_for(folded, items[rest]) - stars[rest])
        rmse = {name: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for name, e in errors.items()}
        assert rmse["posterior"] < rmse["biases"] - 0.05, (given, rmse)
        assert rmse["posterior"] < min(rmse["too small"], rmse["too large"]), (given, rmse)


def test_the_population_prior_is_the_rating_weighted_mean_and_covariance_of_the_trained_users() -> None:
    rng = np.random.default_rng(2)
    users = rng.normal(0, 1, (50, DIM + 1))
    weights = rng.integers(1, 30, 50).astype(np.float64)
    params = FactorParams(
        global_mean=3.5, user_bias=users[:, 0].astype(np.float32), item_bias=np.zeros(3, np.float32),
        user_factors=users[:, 1:].astype(np.float32), item_factors=np.zeros((3, DIM), np.float32), low=0.5,
        high=5.0, fold_in_reg=TrainConfig().fold_in_reg,
    )  # fmt: skip
    mean, precision = population_prior(params, weights=weights)
    assert np.allclose(mean, np.average(users.astype(np.float32), axis=0, weights=weights), atol=1e-5)
    covariance = np.cov(users.astype(np.float32), rowvar=False, aweights=weights)
    assert np.allclose(np.linalg.inv(precision), covariance, rtol=1e-3, atol=1e-5)
