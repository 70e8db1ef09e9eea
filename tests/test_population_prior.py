"""The fold-in prior summed in chunks equals NumPy's weighted covariance of the whole user table."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models import factors
from movierec.models.factors import FactorParams, population_prior


def params_of(n_users: int, dim: int, seed: int = 0) -> FactorParams:
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    return FactorParams(3.5, f32(n_users), f32(20), f32(n_users, dim), f32(20, dim), 0.5, 5.0)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_chunked_prior_is_numpys_covariance(monkeypatch: pytest.MonkeyPatch, weighted: bool) -> None:
    params = params_of(3_000, 6)
    weights = np.random.default_rng(1).integers(0, 40, 3_000) if weighted else None
    monkeypatch.setattr(factors, "PREDICT_BUDGET", 7 * 50)  # chunks of 50 users
    mean, precision = population_prior(params, weights)
    known = np.ones(3_000, bool) if weights is None else weights > 0
    users = np.hstack([params.user_bias[known, None], params.user_factors[known]]).astype(np.float64)
    w = None if weights is None else weights[known].astype(np.float64)
    covariance = np.cov(users, rowvar=False, aweights=w)
    covariance += 1e-6 * max(float(np.trace(covariance)) / 7, 1e-6) * np.eye(7)
    np.testing.assert_allclose(mean, np.average(users, axis=0, weights=w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(precision, np.linalg.inv(covariance), rtol=1e-10, atol=1e-10)
