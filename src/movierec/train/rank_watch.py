"""Which rank is gone: when a collective of sharded training fails, every surviving rank names the one that died.

A process killed mid-training (SIGKILL, a lost machine) cannot say so; its peers see only a broken connection
(gloo, NCCL) or, when it hangs, a collective that times out after ``MOVIEREC_DISTRIBUTED_TIMEOUT`` seconds. So
every rank counts up its own key in the group's store (the TCP store torchrun's agent, or rank 0, keeps) every
``BEAT_SECONDS`` from a background thread, and writes a last word (``failed`` or ``done``) when it leaves. A rank
whose collective fails reads the counters twice, ``CHECK_SECONDS`` apart: a rank whose counter stood still and
that left no word is gone, and the error says so, naming it. When the store itself no longer answers, the
process that kept it is gone: rank 0's (or its machine's agent).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
from collections.abc import Iterator

import torch.distributed as dist

from movierec.errors import MovieRecError
from movierec.train.distributed import Context

BEAT_SECONDS = 0.5
CHECK_SECONDS = 3 * BEAT_SECONDS
STORE_TIMEOUT = datetime.timedelta(seconds=5)


class Heartbeat:
    """This rank's counter in the group's store, counted up by a daemon thread while training runs."""

    def __init__(self, context: Context) -> None:
        self.rank, self.world = context.rank, context.world
        self.address = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
        generation = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")  # torchrun keeps its store across restarts
        self.prefix = f"movierec/heartbeat/{generation}/"
        self.stopped = threading.Event()
        self.beat_store = self.store()
        self.thread = threading.Thread(target=self._beat, name="movierec-heartbeat", daemon=True)
        self.thread.start()

    def store(self) -> dist.TCPStore:
        host, port = self.address
        return dist.TCPStore(host, port, is_master=False, timeout=STORE_TIMEOUT, wait_for_workers=False)

    def _beat(self) -> None:
        with contextlib.suppress(Exception):  # the store's keeper is gone: the check will tell
            while not self.stopped.is_set():
                self.beat_store.add(f"{self.prefix}count/{self.rank}", 1)
                self.stopped.wait(BEAT_SECONDS)

    def leave(self, word: str) -> None:
        """Stop beating and leave ``word`` (``failed`` or ``done``), so that no peer takes this rank for dead."""
        self.stopped.set()
        self.thread.join(timeout=2 * BEAT_SECONDS)  # a beat in flight to a store that is gone would take its timeout
        with contextlib.suppress(Exception):
            if self.reachable():
                self.beat_store.set(f"{self.prefix}left/{self.rank}", word)

    def reachable(self) -> bool:
        """Whether the store's keeper still takes connections (asked quietly: the store's own client retries and
        logs for its whole timeout)."""
        try:
            socket.create_connection(self.address, timeout=STORE_TIMEOUT.total_seconds()).close()
        except OSError:
            return False
        return True

    def gone(self) -> list[int] | None:
        """The other ranks whose counter stood still over ``CHECK_SECONDS`` and that left no word; None when the
        store cannot be reached."""
        if not self.reachable():
            return None
        try:
            store = self.store()
            counts = [store.add(f"{self.prefix}count/{rank}", 0) for rank in range(self.world)]
            time.sleep(CHECK_SECONDS)
            later = [store.add(f"{self.prefix}count/{rank}", 0) for rank in range(self.world)]
            said = [store.check([f"{self.prefix}left/{rank}"]) for rank in range(self.world)]
        except (RuntimeError, OSError):  # DistStoreError, a refused connection
            return None
        return [
            rank for rank in range(self.world) if rank != self.rank and counts[rank] == later[rank] and not said[rank]
        ]


@contextlib.contextmanager
def watched(context: Context) -> Iterator[None]:
    """Run collectives with a heartbeat; a collective that fails because a rank is gone raises a ``MovieRecError``
    naming it (on every surviving rank), instead of the backend's message about a closed connection or a timeout."""
    if context.world == 1:
        yield
        return
    heartbeat = Heartbeat(context)
    try:
        yield
    except RuntimeError as error:  # gloo and NCCL report a lost peer or a timeout as RuntimeError
        heartbeat.leave("failed")
        message = lost_message(context, heartbeat.gone(), heartbeat.address)
        if message is None:
            raise
        raise MovieRecError(message) from error
    except BaseException:
        heartbeat.leave("failed")
        raise
    heartbeat.leave("done")


def lost_message(context: Context, gone: list[int] | None, store: tuple[str, int]) -> str | None:
    """The sentence for this rank when ``gone`` ranks are (None: the store's keeper is); None when no rank is."""
    if gone is not None and not gone:
        return None
    who = (
        f"the group's store at {store[0]}:{store[1]} no longer answers (its keeper, rank 0 or its machine's "
        "torchrun, is gone)"
        if gone is None
        else f"rank{'s' if len(gone) > 1 else ''} {', '.join(map(str, gone))} of {context.world} "
        f"{'is' if len(gone) == 1 else 'are'} gone (stopped without a word: killed, or its machine lost)"
    )
    return (
        f"Sharded training stopped on rank {context.rank}: {who}; start every process again with --resume to "
        "continue from the last complete epoch."
    )
