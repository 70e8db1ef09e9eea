"""The hybrid's SVD++ term in the Gibbs sampler: the implicit rows drawn exactly, all at once.

A user's whole row is ``[p_u, b_u] = [x_u, b'_u] + s_u sum_{j in N(u)} [y_j, c_j]`` (``s_u = |N(u)|^-1/2``, ``N(u)``
the movies they rated; the implicit rows carry a bias column, as myFM's implicit features carry a linear weight).
The sampler tracks the whole rows ``P`` and the implicit rows ``Y``: ``(x, Y) -> (P, Y)`` is linear with unit
Jacobian, so it samples the same posterior. Given ``Y``, a user's row is drawn as before with its prior mean
shifted by its implicit part ``(W Y)_u`` (``W = S A``: the rated-movie indicator ``A`` scaled by ``s_u``); given
``P``, the ratings no longer involve ``Y``, only the users' prior ``x_u = P_u - (W Y)_u ~ N(mu_x, 1/lambda_x)``
does. Each column ``f`` of ``Y`` is then Gaussian with precision ``lambda_xf W'W + lambda_yf I`` and right-hand
side ``lambda_xf W'(P_f - mu_xf) + lambda_yf mu_yf``. ``W'W`` is one fixed matrix for every column and sweep:
with its eigenvectors ``V`` (eigenvalues ``sigma^2``, found once from the smaller of ``W W'`` and ``W'W``) the
precision is ``V diag(lambda_x sigma^2 + lambda_y) V' + lambda_y (I - V V')``, so the mean and a draw of every
column cost a few products with ``V``: an exact draw, no iteration.

The eigenvectors cost ``min(users, movies)^3`` once, which bounds the data this block serves (``EXACT_LIMIT``).

Tried instead, and dropped: myFM's two implicit blocks (this one and the "flipped" movie-side block, the users who
rated a movie scaled by ``|N(i)|^-1/2``) drawn non-centred, each block's rows jointly given the rest under the
ratings' likelihood (precision ``alpha M' G M + diag(lambda)``, ``G`` the hosts' Gram matrices), by
perturb-and-solve with Jacobi- or block-Jacobi-preconditioned CG. The draws matched the dense conditional's mean
and covariance on a small case, but on ml-latest-small (dim 32) CG needs 150-200 steps for the 610-row flipped
block and has not converged after 300 for this block's 9,742 rows (relative residual 4e-2: the rows outside the
span of ``W``, which only the prior holds, against movies with hundreds of raters), about 1.4 s a sweep against
0.15 s for the rest, and the capped chain scored worse (0.905 against 0.853 after 20 sweeps, split seed 0).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.models.hybrid import rated_sets
from movierec.train.als import FeatureMatrix

EXACT_LIMIT = 20_000
"""Most users or movies with ratings (whichever side is smaller) whose ``W W'`` or ``W'W`` is decomposed."""
_FLAT = 1e-9
"""Eigenvalues below this share of the largest are taken as zero (their directions get the prior alone)."""


class ImplicitBlock:
    """``W`` both ways, the eigenvectors of ``W'W``, and the users' implicit parts ``W Y`` of the current ``Y``."""

    def __init__(self, train: Ratings, n_users: int, n_items: int, table: torch.Tensor) -> None:
        """``table`` is ``Y`` (``(n_items, dim + 1)``, drawn in place); ``train`` gives each user's ``N(u)``."""
        indptr, items = rated_sets(train)
        counts = np.diff(indptr)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
        self.table, device = table, table.device
        self.matrix = FeatureMatrix.from_csr(indptr, items, weights, n_items, device)
        self.rated = torch.from_numpy(np.bincount(items, minlength=n_items) > 0).to(device)
        users = np.repeat(np.arange(n_users), counts)
        basis, spectrum = eigen_basis(users, items, weights, n_items)
        self.basis, self.spectrum = basis.to(device, torch.float32), spectrum.to(device, torch.float32)
        self.offset = self.matrix.times(table)
        """``(n_users + 1, dim + 1)``: each user's implicit part ``(W Y)_u``, padding row last."""

    def draw(
        self,
        whole: torch.Tensor,
        user_prior: tuple[torch.Tensor, torch.Tensor],
        prior: tuple[torch.Tensor, torch.Tensor],
        generator: torch.Generator,
    ) -> None:
        """Draw ``Y`` given the users' whole rows ``whole`` (``(n_users + 1, dim + 1)``, padding last), the users'
        prior ``(mu_x, lambda_x)`` and the implicit rows' ``(mu_y, lambda_y)``; refresh the implicit parts."""
        (user_mean, user_precision), (mean, precision) = user_prior, prior
        rhs = user_precision * self.matrix.transposed_times(whole[:-1] - user_mean) + precision * mean
        noise = torch.randn(self.table.shape, generator=generator, device=rhs.device, dtype=rhs.dtype)
        along = user_precision * self.spectrum[:, None] + precision  # (rank, dim + 1)
        basis = self.basis
        rhs_in, noise_in = basis.T @ rhs, basis.T @ noise
        drawn = (rhs - basis @ rhs_in) / precision + basis @ (rhs_in / along)
        drawn += (noise - basis @ noise_in) / precision.sqrt() + basis @ (noise_in / along.sqrt())
        self.table.copy_(drawn * self.rated[:, None])
        self.offset = self.matrix.times(self.table)

    def rows(self) -> torch.Tensor:
        """The implicit rows that take part (movies someone rated), for the block's hyperparameters."""
        return self.table[self.rated]


def eigen_basis(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_items: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal eigenvectors ``(n_items, rank)`` of ``W'W`` with non-zero eigenvalues, and those eigenvalues,
    from the smaller of ``W W'`` and ``W'W`` (``W``'s entries: ``users``, ``items``, ``weights``), in float64."""
    user_rows, user_index = np.unique(users, return_inverse=True)
    item_rows, item_index = np.unique(items, return_inverse=True)
    smaller = min(user_rows.size, item_rows.size)
    if smaller > EXACT_LIMIT:
        raise MovieRecError(
            f"--solver gibbs draws the SVD++ term exactly, for at most {EXACT_LIMIT} users or movies with ratings; "
            f"this data has {user_rows.size} and {item_rows.size}: use --no-implicit."
        )
    index = torch.from_numpy(np.stack([user_index, item_index]))
    by_user = user_rows.size <= item_rows.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse invariant checks are implicitly disabled", "CSR ... in beta"
        matrix = torch.sparse_coo_tensor(index, torch.from_numpy(weights), (user_rows.size, item_rows.size))
        matrix = matrix.coalesce()
        gram = torch.sparse.mm(matrix, matrix.t()) if by_user else torch.sparse.mm(matrix.t(), matrix)
    values, vectors = torch.linalg.eigh(gram.to_dense())
    keep = values > _FLAT * values.max()
    values, vectors = values[keep], vectors[:, keep]
    if by_user:  # W'u / sigma: the unit eigenvector of W'W beside the eigenvector u of W W'
        vectors = torch.sparse.mm(matrix.t(), vectors / values.sqrt())
    basis = torch.zeros(n_items, vectors.shape[1], dtype=torch.float64)
    basis[torch.from_numpy(item_rows)] = vectors
    return basis, values
