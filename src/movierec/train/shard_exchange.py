"""What the ranks of sharded training send each other: ratings once, factor rows every half-sweep, sums, tables.

Rows are owned by index: rank ``r`` of ``W`` owns the rows ``i`` with ``i % W == r`` and keeps row ``i`` at
local position ``i // W``. ``RowFetch`` is planned once at start-up (every rank tells each owner which of its
rows it needs, one all-to-all of indices); each later ``fetch`` is one all-to-all of exactly those rows.
``Exchange`` counts the bytes this rank sends to other ranks (what would cross the network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from movierec.train.distributed import Context


class Exchange:
    """Collectives over the group ``context`` belongs to, counting the bytes sent to other ranks."""

    def __init__(self, context: Context) -> None:
        self.rank, self.world, self.device = context.rank, context.world, context.device
        self.bytes_sent = 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over the ranks (a new tensor)."""
        total = values.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        self.bytes_sent += 2 * _bytes(total) * (self.world - 1) // self.world  # what a ring all-reduce sends
        return total

    def largest(self, value: int) -> int:
        """The largest of every rank's ``value``."""
        box = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(box, op=dist.ReduceOp.MAX)
        return int(box.item())

    def counts_from(self, send_counts: list[int]) -> list[int]:
        """How many rows each rank will send here, when this rank sends ``send_counts[d]`` rows to rank ``d``."""
        counts = torch.tensor(send_counts, dtype=torch.int64, device=self.device)
        received = torch.empty_like(counts)
        dist.all_to_all_single(received, counts)
        return [int(n) for n in received.cpu()]

    def all_to_all(
        self, send: torch.Tensor, send_counts: list[int], recv_counts: list[int], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``send``'s rows cut into consecutive runs of ``send_counts`` rows, run ``d`` going to rank ``d``; returns
        the rows received (``recv_counts[s]`` from rank ``s``), grouped by the rank that sent them, in ``out`` when
        given (``sum(recv_counts)`` rows, contiguous)."""
        if out is None:
            out = send.new_empty((sum(recv_counts), *send.shape[1:]))
        dist.all_to_all_single(out, send.contiguous(), recv_counts, send_counts)
        row = _bytes(send) // max(1, send.shape[0])
        self.bytes_sent += row * (sum(send_counts) - send_counts[self.rank])
        return out

    def scatter_by_owner(self, owners: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
        """Send each row of ``columns`` (NumPy arrays of one length) to rank ``owners[row]``; return the rows this
        rank receives, column by column."""
        order = np.argsort(owners, kind="stable")
        send_counts = [int(n) for n in np.bincount(owners, minlength=self.world)]
        recv_counts = self.counts_from(send_counts)
        sent = (torch.from_numpy(np.ascontiguousarray(column[order])).to(self.device) for column in columns)
        return [self.all_to_all(tensor, send_counts, recv_counts).cpu().numpy() for tensor in sent]

    def to_first(self, *columns: np.ndarray) -> list[np.ndarray]:
        """Every rank's rows of ``columns`` on rank 0, grouped by the rank that sent them (empty elsewhere)."""
        return self.scatter_by_owner(np.zeros(len(columns[0]), np.int64), *columns)

    def broadcast(self, values: np.ndarray | None) -> np.ndarray:
        """Rank 0's ``values`` (a 1-D array; None on the other ranks) on every rank."""
        box = [values]
        dist.broadcast_object_list(box, src=0)
        self.bytes_sent += 0 if self.rank or box[0] is None else box[0].nbytes * (self.world - 1)
        return np.asarray(box[0])

    def gather_rows(self, own: torch.Tensor, n_rows: int) -> torch.Tensor | None:
        """The whole table of ``n_rows`` rows on rank 0 (None elsewhere), from each rank's own rows ``own``
        (local position ``i // W`` holding row ``i``)."""
        size = -(-n_rows // self.world)
        padded = own.new_zeros((size, *own.shape[1:]))
        padded[: own.shape[0]] = own
        chunks = [torch.empty_like(padded) for _ in range(self.world)] if self.rank == 0 else None
        dist.gather(padded, chunks, dst=0)
        if self.rank != 0:
            self.bytes_sent += _bytes(padded)
            return None
        assert chunks is not None
        table = own.new_empty((n_rows, *own.shape[1:]))
        for rank, chunk in enumerate(chunks):
            rows = torch.arange(rank, n_rows, self.world, device=own.device)
            table[rows] = chunk[: rows.shape[0]]
        return table


@dataclass(frozen=True)
class RowFetch:
    """The rows of one side this rank needs, and the rows of its own that the others need: planned once, then each
    ``fetch`` sends exactly those rows. The fetched table holds the needed rows in the order they arrive, grouped
    by owner rank and ascending within each (so no reordering copy is made); ``positions`` finds a row in it. A
    fetch goes in rounds of about ``FETCH_ROUND_BYTES`` sent per rank, so that a rank never holds all it sends
    beside the table it receives (on dense data the others need nearly every row it owns)."""

    exchange: Exchange
    send_rows: torch.Tensor  # local positions of own rows to send, grouped by the rank they go to
    send_counts: list[int]
    recv_counts: list[int]
    keys: np.ndarray  # the needed rows' ``owner_key``s, ascending: row ``i`` of a fetched table has ``keys[i]``
    most_sent: int  # the most rows any rank sends in a fetch: every rank's number of rounds follows from it

    @classmethod
    def plan(cls, needed: np.ndarray, exchange: Exchange) -> RowFetch:
        """The fetch of the rows ``needed`` (distinct global indices, in any order)."""
        world, device = exchange.world, exchange.device
        keys = np.sort(owner_key(np.asarray(needed, dtype=np.int64), world))
        asks = keys % _KEY_SPAN  # the global indices, grouped by owner
        recv_counts = [int(n) for n in np.bincount(keys // _KEY_SPAN, minlength=world)]
        send_counts = exchange.counts_from(recv_counts)
        asked = exchange.all_to_all(torch.from_numpy(asks).to(device), recv_counts, send_counts)
        return cls(exchange, asked // world, send_counts, recv_counts, keys, exchange.largest(sum(send_counts)))

    @property
    def n_rows(self) -> int:
        return int(self.keys.size)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Where the rows of global ``indices`` (each among the needed ones) sit in a fetched table."""
        return np.searchsorted(self.keys, owner_key(np.asarray(indices, dtype=np.int64), self.exchange.world))

    def fetch(self, own: torch.Tensor) -> torch.Tensor:
        """The needed rows (at ``positions``) from each owner's table ``own`` (rows at local positions), with an
        all-zero padding row appended."""
        rows = own.new_empty((self.n_rows + 1, *own.shape[1:]))
        rows[-1] = 0
        rounds = max(1, -(-self.most_sent * _bytes(own[:1]) // FETCH_ROUND_BYTES))
        if rounds == 1:  # straight into the table
            send = own.index_select(0, self.send_rows)
            self.exchange.all_to_all(send, self.send_counts, self.recv_counts, out=rows[:-1])
            return rows
        for round_ in range(rounds):
            sent = _round_runs(self.send_counts, round_, rounds)
            received = _round_runs(self.recv_counts, round_, rounds)
            picked = torch.cat([self.send_rows[begin:end] for begin, end in sent])
            arrived = self.exchange.all_to_all(own.index_select(0, picked), _lengths(sent), _lengths(received))
            for (begin, end), part in zip(received, arrived.split(_lengths(received)), strict=True):
                rows[begin:end] = part
        return rows


FETCH_ROUND_BYTES = 1 << 24
"""At most about this many bytes of rows sent by a rank in one round of a fetch (16 MB)."""


def _round_runs(counts: list[int], round_: int, rounds: int) -> list[tuple[int, int]]:
    """The rows that round ``round_`` of ``rounds`` carries of each run of ``counts`` consecutive rows: each run cut
    into ``rounds`` near-equal consecutive pieces (sender and receiver cut a run of the same length alike)."""
    starts = np.concatenate([[0], np.cumsum(counts)])
    return [(int(start + count * round_ // rounds), int(start + count * (round_ + 1) // rounds))
            for start, count in zip(starts[:-1], counts, strict=True)]  # fmt: skip


def _lengths(runs: list[tuple[int, int]]) -> list[int]:
    return [end - begin for begin, end in runs]


_KEY_SPAN = 1 << 40
"""Above every global row index: ``owner_key`` packs (owner, index) into one ordered integer."""


def owner_key(indices: np.ndarray, world: int) -> np.ndarray:
    """An integer per global row index that sorts rows by owner rank (``index % world``), then by index."""
    return (indices % world) * _KEY_SPAN + indices


def _bytes(tensor: torch.Tensor) -> int:
    return int(tensor.numel() * tensor.element_size())
