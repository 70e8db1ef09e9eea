"""Row solves of the "likely to watch" fit (iALS) by preconditioned conjugate gradients, matrix-free, with the
YᵀY trick.

Holding the other side ``Y`` fixed, row ``u`` solves ``(S + Y_u'Y_u) x = Y_u't_u``, where ``S = unobserved * Y'Y +
reg * I`` is the same for every row (Hu, Koren and Volinsky 2008) and ``Y_u`` holds the vectors of the row's rated
columns, ``t_u`` their targets. Forming ``Y_u'Y_u`` costs ``n_u * d^2``; a CG step instead costs two products with
``Y_u`` (``2 * n_u * d``). A few steps, warm-started from the row's vector of the previous sweep, are enough
(Takács, Pilászy and Tikk 2011): the sweeps themselves keep refining it.

The solves run in the eigenbasis of ``Y'Y`` (``Eigenbasis``; ``Y`` and the rows rotated into it, the rows rotated
back): there ``S`` is a diagonal, and so is the preconditioner ``M_u = S + c_u Y'Y``, which stands in for ``Y_u'Y_u``
by ``c_u`` times ``Y'Y`` with ``c_u = trace(Y_u'Y_u) / trace(Y'Y)`` (what share of all the vectors' weight the
row's columns hold). With it one step lowers the objective of a sweep as far as the exact row solve does (on
ml-latest-small, dim 128: within 0.001% after 8 sweeps; two unpreconditioned steps stay 0.15% above).

On a CPU each block's rows run as one compiled loop (``COMPILED``, ``als_kernel.watch_cg_block``: a row's ``Y_u``
gathered once into a scratch of its own, every pass over it there; whole blocks on worker threads): at 5M ratings,
dim 128, 6 sweeps and the signed user solve take 1.6 s against 2.7 s by the torch ops, which a GPU keeps. Where the
other side's table outgrows the cache (``TILED_FROM``: the users' at ML-25M size), gathering each row's vectors
fetches them from memory at random; there each thread takes a share of the blocks and passes over all of its rows
a tile of the table at a time (``als_kernel.watch_cg_tiled``), keeping each row's residual and direction between
the passes: the movie half-step at ML-25M size takes half the time.

By the torch ops, rows of similar length are solved together, a padded block at a time (sliced to stay in the cache:
``als.cache_slices``), on batched torch ops. Each slice's ``Y_u`` is gathered once, into one buffer reused by
every slice (a fresh tensor a slice cost more than two passes over it: new pages, cold in the cache). ``k`` steps
then make ``2k + 1`` passes over it: two for the starting residual, two a step, less one, as the last step needs
only its curvature ``|Y_u d|^2 + d'Sd`` (the residual it would update is not used again).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from movierec.train.als import Side, gathered_into, sliced, times, transposed_times
from movierec.train.workers import slice_workers

_TINY = 1e-30
COMPILED = True
"""On a CPU the rows' steps run as one compiled loop per block (``als_kernel.watch_cg_block``); on a GPU, or False,
as batched torch ops over cache-sized slices."""


@dataclass(frozen=True)
class Eigenbasis:
    """``Y'Y = Q diag(eigenvalues) Q'`` of the fixed side, with the weights of the shared part ``S``."""

    basis: torch.Tensor  # Q: (dim, dim), orthonormal columns
    eigenvalues: torch.Tensor  # (dim,)
    unobserved: float
    reg: float

    @classmethod
    def of(cls, gram: torch.Tensor, unobserved: float, reg: float) -> Eigenbasis:
        """The eigenbasis of ``gram`` (``Y'Y``), decomposed in float64."""
        eigenvalues, basis = torch.linalg.eigh(gram.double())
        return cls(basis.to(gram.dtype), eigenvalues.clamp_min(0.0).to(gram.dtype), unobserved, reg)

    @functools.cached_property
    def shared(self) -> torch.Tensor:
        """``S`` in the eigenbasis: its diagonal, ``(dim,)`` (made once: every slice of a half-step reads it)."""
        return self.unobserved * self.eigenvalues + self.reg

    def inverse_preconditioner(self, share: torch.Tensor) -> torch.Tensor:
        """``M_u^-1`` in the eigenbasis for rows whose ``trace(Y_u'Y_u)`` is ``share`` times ``trace(Y'Y)``:
        its diagonals, ``(rows, dim)``."""
        scale = torch.outer(share + self.unobserved, self.eigenvalues).add_(self.reg)
        return scale.clamp_min_(_TINY).reciprocal_()  # in place: one table, not four


def cg_rows(
    side: Side, own: torch.Tensor, other: torch.Tensor, basis: Eigenbasis, steps: int, other_is_scratch: bool = False
) -> None:
    """Lower every rated row of ``own`` towards its ridge solution against ``other`` by ``steps`` preconditioned
    conjugate gradient steps from its current value, in place. ``basis`` is that of ``other``'s ``Y'Y`` (summed over
    every rank's rows when sharded); ``other``'s last row is the zero padding row and ``side``'s block values are
    the targets (0 on padding). With ``other_is_scratch`` (a table fetched for this half-step) ``other`` is rotated
    in place, and is left rotated."""
    with torch.no_grad():
        if not side.blocks:
            return
        squared_norms = other.square().sum(1)
        rotated = rotated_into(other, basis.basis) if other_is_scratch else other @ basis.basis
        if COMPILED and own.device.type == "cpu":
            _compiled_rows(side, own, rotated, squared_norms, basis, steps)
            return
        slices, buffer = sliced(side, other)
        total = basis.eigenvalues.sum().clamp_min(_TINY)
        for block in slices:
            share = squared_norms.index_select(0, block.cols.view(-1)).view(block.cols.shape).sum(1) / total
            start = own.index_select(0, block.rows) @ basis.basis
            solved = cg_steps(gathered_into(buffer, rotated, block.cols), block.values, start, basis, share, steps)
            own.index_copy_(0, block.rows, solved @ basis.basis.T)


BlockArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""A block's ``(rows, cols, values, counts)`` as the compiled loops take them (``Block.arrays``)."""
TILED_FROM = 48 << 20
"""Bytes of the other side's table from which ``_compiled_rows`` reads it in tiles (``als_kernel.watch_cg_tiled``):
past the 32 MB last-level cache of the development machine each rating's vector came from memory at random. At
ML-25M size, dim 128, 1 step: the movie half-step (162,541 users, 83 MB) 0.46 s against 0.93 s by whole blocks;
the user half-step (59,047 movies, 30 MB) 0.46 s against 0.40 s, so it keeps its blocks."""
TILE_BYTES = 8 << 20
"""Bytes of the other table that a tile holds (16,384 rows at dim 128: 0.46 s a movie half-step as above, 0.52 s at
half that, 0.48 s at twice)."""


def _compiled_rows(
    side: Side, own: torch.Tensor, rotated: torch.Tensor, squared_norms: torch.Tensor, basis: Eigenbasis, steps: int
) -> None:
    """``cg_rows``' steps by the compiled loop (``als_kernel.watch_cg_block``), whole blocks on worker threads: ``own``
    rotated into the eigenbasis in place, its rated rows solved there in place, and rotated back (a row without
    ratings, zero in every fit, stays zero; any other would move by float32 rounding). From ``TILED_FROM`` bytes of
    ``rotated``, each thread takes a share of the blocks and reads ``rotated`` a tile at a time
    (``als_kernel.watch_cg_tiled``: the same steps, the sums in the same order up to float32 reassociation)."""
    from movierec.train import als_kernel  # numba loads only where a CPU solves by CG

    rotated_into(own, basis.basis)
    weights = np.array([basis.unobserved, basis.reg, float(basis.eigenvalues.sum())], np.float32)
    table, norms, eigenvalues, rows_table = (
        t.contiguous().numpy() for t in (rotated, squared_norms, basis.eigenvalues, own)
    )
    arrays = [block.arrays() for block in side.blocks]

    def solve_block(block: BlockArrays) -> None:
        rows, cols, values, counts = block
        als_kernel.watch_cg_block(rows, cols, values, counts, rows_table, table, norms, eigenvalues, weights, steps)

    def solve_share(share: list[BlockArrays]) -> None:
        from numba.typed import List

        rows, cols, values, counts = (List([block[part] for block in share]) for part in range(4))
        tile = max(1, TILE_BYTES // (4 * table.shape[1]))
        als_kernel.watch_cg_tiled(
            rows, cols, values, counts, rows_table, table, norms, eigenvalues, weights, steps, tile
        )

    shares = balanced_shares(arrays, torch.get_num_threads()) if table.nbytes >= TILED_FROM else []
    with slice_workers(own.device) as run:  # torch's threads: as many worker threads
        if shares:
            run(solve_share, [share for share in shares if share])
        else:
            run(solve_block, arrays)
    rotated_into(own, basis.basis.T)


def balanced_shares(blocks: list[BlockArrays], parts: int) -> list[list[BlockArrays]]:
    """``blocks`` dealt into ``parts`` shares of about equal padded size, largest first to the lightest share."""
    shares: list[list[BlockArrays]] = [[] for _ in range(parts)]
    sizes = [0] * parts
    for block in sorted(blocks, key=lambda block: -block[1].size):
        lightest = sizes.index(min(sizes))
        shares[lightest].append(block)
        sizes[lightest] += block[1].size
    return shares


ROTATED_ROWS = 1 << 14
"""Rows rotated at a time by ``rotated_into`` (8 MB of temporary at dim 128)."""


def rotated_into(table: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``table @ basis`` written over ``table``, ``ROTATED_ROWS`` rows at a time (no second table); returns it."""
    for rows in table.split(ROTATED_ROWS):
        rows.copy_(rows @ basis)
    return table


def cg_steps(
    x: torch.Tensor, targets: torch.Tensor, p: torch.Tensor, basis: Eigenbasis, share: torch.Tensor, steps: int
) -> torch.Tensor:
    """``steps`` preconditioned CG steps on the rows' systems ``(S + X'X) p = X't`` from ``p``, all in the
    eigenbasis (``x``: ``(rows, length, dim)`` with zero padding rows, ``targets``: ``(rows, length)``, ``share``
    each row's ``c_u``); ``p`` is updated in place and returned."""
    shared, inverse = basis.shared, basis.inverse_preconditioner(share)
    r = transposed_times(x, times(x, p).neg_().add_(targets)).sub_(shared * p)
    d = inverse * r
    rz = (r * d).sum(1)
    for step in range(steps):
        xd = times(x, d)
        sd = shared * d
        alpha = (rz / (xd.square().sum(1) + (d * sd).sum(1)).clamp_min(_TINY)).unsqueeze(1)
        p.addcmul_(alpha, d)
        if step == steps - 1:
            break
        r.sub_(alpha * sd.add_(transposed_times(x, xd)))
        z = inverse * r
        rz_next = (r * z).sum(1)
        d.mul_((rz_next / rz.clamp_min(_TINY)).unsqueeze(1)).add_(z)
        rz = rz_next
    return p
