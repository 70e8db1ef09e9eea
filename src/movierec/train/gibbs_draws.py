"""The Gibbs sampler's draws: rows from their Gaussian conditionals, hyperparameters from conjugate posteriors.

Each row ``x`` (a user's or movie's ``[factors, bias]``, or a feature row) given everything else is Gaussian with
precision ``P = alpha A'A + diag(lambda)`` and mean ``P^-1 (alpha A'y + lambda * mu)``, for the design ``A`` and
targets ``y`` of its ratings (``als.row_systems``), the noise precision ``alpha`` and its block's prior
``N(mu, diag(1/lambda))``. With ``P = L L'`` (Cholesky), ``x = mean + L'^-1 z`` for ``z ~ N(0, I)`` has covariance
``L'^-1 L^-1 = P^-1`` (``gibbs_cholesky``, vectorised across the rows).

The hyperparameters follow Rendle's libFM MCMC and myFM: every column of a block (each factor dimension and the
bias) has its own mean and precision with a Normal-Gamma hyperprior (``mu | lambda ~ N(0, 1/(GAMMA_0 lambda))``,
``lambda ~ Gamma(ALPHA_0, BETA_0)``), drawn jointly from its posterior given the block's rows; the noise precision
has a Gamma hyperprior and is drawn given the training residuals. These draws are a few numbers per block: they
run in float64 on NumPy's generator, the rows on torch's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from movierec.train.gibbs_cholesky import gaussian_draws

ALPHA_0 = 0.5
"""Shape of the Gamma hyperprior on every precision: libFM and myFM write it ``Gamma(alpha_0 / 2, beta_0 / 2)``
with ``alpha_0 = beta_0 = 1``, so 0.5 here. On the validation holdout of ``benchmarks/bayes.py`` (hybrid, dim 20,
200 sweeps, burn-in 50) 0.8165 against 0.8171 at shape and rate 1 (split seeds 0 and 1: 0.8254 and 0.8076
against 0.8258 and 0.8083)."""
BETA_0 = 0.5
"""Rate of the Gamma hyperprior on every precision (see ``ALPHA_0``)."""
GAMMA_0 = 1.0
"""Pseudo-count of the Normal hyperprior on every mean (centred on 0)."""


def draw_rows(
    gram: torch.Tensor | Sequence[torch.Tensor],
    rhs: torch.Tensor,
    noise_precision: float,
    prior_mean: torch.Tensor,
    prior_precision: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """One draw per row ``b`` of ``N(P_b^-1 c_b, P_b^-1)``, ``P_b = alpha gram_b + diag(lambda)`` and ``c_b = alpha
    rhs_b + lambda * mu``: ``gram`` is ``(B, k, k)`` (or consecutive parts of it), ``rhs`` ``(B, k)``, the prior
    ``(k,)`` or ``(B, k)``."""
    shift = noise_precision * rhs + prior_precision * prior_mean
    noise = torch.randn(rhs.shape, generator=generator, device=rhs.device, dtype=rhs.dtype)
    return gaussian_draws(gram, noise_precision, prior_precision, shift, noise)


def draw_normal_gamma(rows: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    """``(2, k)``: per column of ``rows`` (``(n, k)``, i.i.d. ``N(mu, 1/lambda)``), ``mu`` and ``lambda`` drawn
    jointly from their Normal-Gamma posterior (``lambda`` from its marginal, then ``mu`` given it)."""
    values = rows.detach().to(torch.float64)
    n = values.shape[0]
    centre = values.mean(0) if n else values.new_zeros(values.shape[1])
    means, spread = centre.cpu().numpy(), (values - centre).square().sum(0).cpu().numpy()
    return draw_normal_gamma_given(n, means, spread, rng)


def draw_normal_gamma_given(n: float, means: np.ndarray, spread: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(2, k)``: each column's mean and precision drawn from the Normal-Gamma posterior of ``n`` rows whose column
    means are ``means`` and sums of squared deviations ``spread`` (``lambda`` from its marginal, then ``mu``)."""
    pseudo = GAMMA_0 + n
    rate = BETA_0 + spread / 2 + GAMMA_0 * n * np.square(means) / (2 * pseudo)
    precision = rng.gamma(ALPHA_0 + n / 2, 1.0 / rate)
    mean = rng.normal(n * means / pseudo, 1.0 / np.sqrt(pseudo * precision))
    return np.stack([mean, precision])


def draw_noise_precision(squared_error: float, n_ratings: int, rng: np.random.Generator) -> float:
    """The noise precision drawn from its Gamma posterior given the residuals' sum of squares."""
    return float(rng.gamma(ALPHA_0 + n_ratings / 2, 1.0 / (BETA_0 + squared_error / 2)))
