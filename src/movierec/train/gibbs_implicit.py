"""The hybrid's implicit block in the Gibbs sampler, myFM's "flipped" relation block: drawn non-centred, by
coordinate.

Each movie's whole row adds ``t_i sum_{v in N(i)} [z_v, d_v]``: ``N(i)`` the users who rated it among the fit's
ratings, ``t_i = |N(i)|^-1/2``, and a row ``[z_v, d_v]`` per user (with a bias column, as myFM's implicit features
carry a linear weight), from its own prior ``N(mu, diag(1/lambda))`` with drawn hyperparameters like every block.
The movie's own row is drawn as before with this flipped part in its fixed offset beside its features; the table
``Z`` is drawn given the own rows (non-centred: the ratings inform it), every coordinate from its exact conditional
given everything else, in turn (``gibbs_implicit_kernel``, compiled by numba), and the whole movie rows are rebuilt
with it. The draw costs a few passes over the ratings per column; its normals come from the chain's torch generator,
so one seed gives one chain. The exported movie rows hold the flipped part, so ``serve``, ``recommend`` and a
folded-in user see it; a new user's ratings do not change it (their row in ``Z`` is not drawn). Sharded runs
(``sharded_gibbs``) have no flipped block: their chains hold no implicit rows, whatever ``use_implicit`` says.

On the validation holdout of ``benchmarks/bayes.py --validation`` (hybrid, dim 32, 200 sweeps, split seeds 0 and 1)
the flipped block scored 0.8160 and 0.8009 against 0.8205 and 0.8028 without it, for 17.5 ms a sweep at one thread
(the rest of the sweep about 100 ms); at dim 16 it gains more (``registry.GIBBS_DEFAULTS``) for 9 ms of 48. numba
compiles the kernel in 0.7 s of CPU on a first run and loads it from its cache (``cache=True``) in 0.3 s after.
Tried and dropped:

- the user-side SVD++ block (``[p_u, b_u] = [x_u, b'_u] + s_u sum_{j in N(u)} [y_j, c_j]``, the movies a user rated)
  drawn the same way: 0.8224 alone and 0.8222 beside the flipped block on split seed 0, against 0.8205 without
  either and 0.8160 with the flipped block alone (35 ms a sweep for both blocks);
- that block drawn centred (given the users' whole rows, so only their prior informs it; an exact joint draw
  through the eigenvectors of ``W'W``): 0.8147 against 0.8116 without it;
- the flipped block scaled by ``|N(i)|^-1`` (the raters' mean row) instead of ``|N(i)|^-1/2``: 0.8283 against 0.8175
  on split seed 0 (dim 16, 250 sweeps, before the cold start of ``gibbs``);
- both blocks drawn a block at a time by perturb-and-solve with preconditioned CG: CG had not converged on
  ml-latest-small's 9,742-row user-side block after 300 steps (relative residual 4e-2) at 1.4 s a sweep, and the
  capped chain scored worse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.data.ratings import Ratings
from movierec.train.als import Factors, FeatureMatrix

FLIPPED = "flipped"
"""The block's name among the chain's hyperparameters."""


@dataclass(frozen=True)
class Relation:
    """A block's ratings grouped by host (a movie) and by member (a user), as ``gibbs_implicit_kernel`` reads them,
    and ``hosts x members`` on the device (entries scaled by the host's ``|N|^-1/2``) for the hosts' offsets."""

    host_ptr: np.ndarray
    host_ratings: np.ndarray
    host_other: np.ndarray
    member_ptr: np.ndarray
    member_hosts: np.ndarray
    host_scale: np.ndarray
    matrix: FeatureMatrix
    informed: torch.Tensor
    """``(members,)`` bool: the members some host holds (the others stay zero and take no part)."""

    @classmethod
    def of(cls, hosts: np.ndarray, members: np.ndarray, n_hosts: int, n_members: int, device: torch.device) -> Relation:
        """From each rating's host and member (the member is also the rating's row on the other side)."""
        by_host, by_member = np.argsort(hosts, kind="stable"), np.argsort(members, kind="stable")
        host_counts, member_counts = np.bincount(hosts, minlength=n_hosts), np.bincount(members, minlength=n_members)
        host_ptr, member_ptr = (_pointers(counts) for counts in (host_counts, member_counts))
        scale = 1.0 / np.sqrt(np.maximum(host_counts, 1))
        other = members[by_host].astype(np.int64)
        return cls(
            host_ptr, by_host.astype(np.int64), other, member_ptr, hosts[by_member].astype(np.int64), scale,
            FeatureMatrix.from_csr(host_ptr, other, np.repeat(scale, host_counts), n_members, device),
            torch.from_numpy(member_counts > 0).to(device),
        )  # fmt: skip


class FlippedBlock:
    """The table ``Z`` (drawn in place), its relation to the ratings and the movies' current flipped parts."""

    def __init__(self, train: Ratings, n_users: int, n_items: int, table: torch.Tensor) -> None:
        """``table`` is ``Z``, ``(n_users, dim + 1)``; ``train`` gives each movie's raters."""
        users, items = train.users.astype(np.int64), train.items.astype(np.int64)
        self.table = table
        self.relation = Relation.of(items, users, n_items, n_users, table.device)
        self.offset = self.relation.matrix.times(table)
        """``(n_items + 1, dim + 1)``: each movie's flipped part ``(V Z)_i``, padding row last."""

    @property
    def part(self) -> Factors:
        """The movies' flipped parts as rows."""
        return Factors(self.offset[:, :-1], self.offset[:, -1])

    def draw(
        self,
        users: Factors,
        residual: torch.Tensor,
        noise_precision: float,
        prior: tuple[torch.Tensor, torch.Tensor],
        generator: torch.Generator,
    ) -> None:
        """Draw ``Z`` given the users' rows and the movies' own rows, and refresh the flipped parts; ``residual``
        holds each fit rating's residual under the current rows (the caller rebuilds the whole movie rows)."""
        from movierec.train.gibbs_implicit_kernel import draw_block  # numba loads only for chains that draw Z

        relation, table = self.relation, self.table
        noise = torch.randn(table.shape, generator=generator, device=table.device, dtype=table.dtype)
        other = torch.cat([users.factors[:-1], torch.ones_like(users.bias[:-1, None])], 1)
        values, errors = _numpy(table), _numpy(residual)
        draw_block(
            values, _numpy(other), relation.host_ptr, relation.host_ratings, relation.host_other, relation.member_ptr,
            relation.member_hosts, relation.host_scale, errors, noise_precision, _numpy(prior[0]), _numpy(prior[1]),
            _numpy(noise),
        )  # fmt: skip
        table.copy_(torch.from_numpy(values))
        self.offset = relation.matrix.times(table)

    def rows(self) -> torch.Tensor:
        """The rows that take part (users with ratings), for the block's hyperparameters."""
        return self.table[self.relation.informed]


def _pointers(counts: np.ndarray) -> np.ndarray:
    """CSR row pointers of rows with these counts."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float64 copy on the CPU, for the kernel."""
    return np.array(tensor.detach().to("cpu", torch.float64).numpy(), order="C")
