"""The compiled loop behind ``gibbs_implicit``: one implicit block's rows drawn coordinate by coordinate.

A block's rows (``members``) enter the ratings through ``hosts``: for the user-side block the members are movies
``j`` and the hosts users ``u`` whose whole row gains ``s_u sum_{j in N(u)} y_j``; for the flipped block the
members are users and the hosts movies. A rating ``r`` of host ``h`` against the other side's row ``o`` depends on
coordinate ``f`` of member ``m`` (one of the host's members) through ``h_r = s_h o_f``, so given everything else
``y_mf`` is Gaussian with precision ``alpha sum_r h_r^2 + lambda_f`` and right-hand side ``alpha sum_r h_r (e_r +
h_r y_mf) + lambda_f mu_f`` (``e`` the residuals under the current rows). Per host, ``sum_r h_r^2 = s_h^2 Q_h`` and
``sum_r h_r e_r = s_h E_h`` with ``Q_h = sum o_f^2`` and ``E_h = sum o_f e_r`` over its ratings: cached once per
column (one pass over the ratings), so a member's draw costs one pass over its hosts, and after it ``E_h`` of
those hosts moves by ``-s_h delta Q_h`` (their ratings' residuals by ``-s_h delta o_f``, applied once at the end
of the column). Every coordinate is drawn from its exact conditional, in turn: a valid Gibbs sampler, as myFM's
relation blocks draw theirs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def draw_block(
    table: np.ndarray,
    other: np.ndarray,
    host_ptr: np.ndarray,
    host_ratings: np.ndarray,
    host_other: np.ndarray,
    member_ptr: np.ndarray,
    member_hosts: np.ndarray,
    host_scale: np.ndarray,
    residual: np.ndarray,
    noise_precision: float,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    noise: np.ndarray,
) -> None:
    """Draw every coordinate of ``table`` (``(members, k)``, float64) in place, column by column, member by
    member, and keep ``residual`` (per rating) up to date.

    ``other`` ``(n_other, k)``: the other side's rows (last column ones, for the bias); host ``h``'s ratings are
    ``host_ratings[host_ptr[h]:host_ptr[h + 1]]`` against rows ``host_other[...]`` of ``other``; member ``m``'s
    hosts ``member_hosts[member_ptr[m]:member_ptr[m + 1]]``, each scaled by ``host_scale``; ``noise`` ``(members,
    k)`` standard normals. Members without hosts are left as they are."""
    n_hosts, k = host_ptr.shape[0] - 1, table.shape[1]
    change = np.zeros(n_hosts)  # per host, its row's change in the current column
    squares = np.empty(n_hosts)
    errors = np.empty(n_hosts)
    for f in range(k):
        for h in range(n_hosts):
            q, e = 0.0, 0.0
            for at in range(host_ptr[h], host_ptr[h + 1]):
                value = other[host_other[at], f]
                q += value * value
                e += value * residual[host_ratings[at]]
            squares[h], errors[h] = q, e
        for m in range(table.shape[0]):
            start, end = member_ptr[m], member_ptr[m + 1]
            if start == end:
                continue
            gram, gradient = 0.0, 0.0
            for at in range(start, end):
                h = member_hosts[at]
                s = host_scale[h]
                gram += s * s * squares[h]
                gradient += s * errors[h]
            old = table[m, f]
            precision = noise_precision * gram + prior_precision[f]
            shift = noise_precision * (gradient + gram * old) + prior_precision[f] * prior_mean[f]
            new = shift / precision + noise[m, f] / math.sqrt(precision)
            delta = new - old
            table[m, f] = new
            for at in range(start, end):
                h = member_hosts[at]
                s = host_scale[h]
                errors[h] -= s * delta * squares[h]
                change[h] += s * delta
        for h in range(n_hosts):
            moved = change[h]
            if moved != 0.0:
                for at in range(host_ptr[h], host_ptr[h + 1]):
                    residual[host_ratings[at]] -= moved * other[host_other[at], f]
            change[h] = 0.0
