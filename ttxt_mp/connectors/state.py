"""The producer's side of state on join: serve the ring's board from the connector loop.

The connector's loop is single-threaded, so between two puts its books are exactly the
effect of every event published so far: the state written then, with the publisher's
next event number as watermark, is consistent with the ring (see
:mod:`ttxt_mp.shm.board`). Requests are polled every ``POLL_S`` (one 8-byte load), so an
idle connector stays idle and a late joiner waits a few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from ttxt_mp.shm.board import StateBoard
from ttxt_mp.shm.errors import RingError

__all__ = ["POLL_S", "StateServer", "open_board"]

log = logging.getLogger("ttxt_mp.connectors.state")
POLL_S = 0.005


class _Stateful(Protocol):
    publisher: Any

    @property
    def stopping(self) -> bool: ...

    def state_events(self) -> list[Any]: ...

    def state_consistent(self) -> bool: ...


class StateServer:
    """Answers state requests on ``board`` with ``source.state_events()``."""

    def __init__(self, source: _Stateful, board: StateBoard) -> None:
        self.source = source
        self.board = board
        self.served = 0
        self.bytes = 0
        self.seconds = 0.0

    def serve_if_asked(self) -> bool:
        """Serve a pending request now, if the published stream matches the state."""
        if not self.board.pending or not self.source.state_consistent():
            return False
        t0 = time.perf_counter()
        events = self.source.state_events()
        self.bytes += self.board.publish(events, self.source.publisher.next_evno)
        self.seconds += time.perf_counter() - t0
        self.served += 1
        log.debug("%s: served state (%d events)", self.board.ring, len(events))
        return True

    async def run(self) -> None:
        while not self.source.stopping:
            try:
                self.serve_if_asked()
            except Exception:  # a state that cannot be written must not stop market data
                log.exception("%s: serving the state failed", self.board.ring)
                await asyncio.sleep(1.0)
            await asyncio.sleep(POLL_S)


def open_board(publisher: Any, failure: str) -> StateBoard | None:
    """The board of a shared-memory ``publisher`` (created, or taken over after a
    restart; removed with its ring); None for in-process queues, or when it cannot be
    created (logged as ``failure: reason``: the stream works, late joiners get no state)."""
    name = getattr(publisher, "name", None)
    if name is None or not hasattr(publisher, "next_evno"):
        return None
    try:
        return StateBoard.create(name, instance_id=getattr(publisher, "instance_id", 0),
                                 group=getattr(publisher, "_allow_gid", None))  # fmt: skip
    except (RingError, OSError) as e:
        log.warning("%s: %s", failure, e)
        return None
