"""Queue interfaces (names from ttxt2) and the in-process default.

Every transport (the in-process :class:`AsyncioQueue`, the shared-memory
:class:`ttxt_mp.shm.ShmQueue`, a replay) has the same surface, so a client or recorder
never knows which one it reads: ``put``/``aput``/``put_many`` on the producing side,
``get``/``aget``/``get_nowait``/``async for``/``for`` on the consuming side.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any


class QueueEmpty(Exception):
    """``get_nowait`` found nothing, or ``get(timeout)`` timed out."""


class QueueFull(Exception):
    """A ``block``-policy queue had no room within the timeout."""


class QueueClosed(Exception):
    """The queue (or the producer behind it) is closed and fully drained."""


class IQueuePublisher(ABC):
    """The producing side."""

    @abstractmethod
    def put(self, event: Any, timeout: float | None = None) -> None:
        """Publish one event. Never waits on an overwrite queue; may wait (up to
        ``timeout``, then :class:`QueueFull`) on a block queue."""

    async def aput(self, event: Any) -> None:
        """Publish without blocking the event loop."""
        self.put(event)

    def put_many(self, events: Iterable[Any]) -> None:
        for ev in events:
            self.put(ev)


class IQueueConsumer(ABC):
    """The consuming side; each consumer has its own cursor."""

    @abstractmethod
    def get_nowait(self) -> Any:
        """The next event, or :class:`QueueEmpty`."""

    @abstractmethod
    def get(self, timeout: float | None = None) -> Any:
        """The next event, waiting up to ``timeout`` (None: forever), or QueueEmpty."""

    @abstractmethod
    async def aget(self) -> Any:
        """The next event, awaiting without blocking the event loop."""

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                yield self.get()
            except QueueClosed:
                return

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.aget()
            except QueueClosed:
                return


class IQueue(IQueuePublisher, IQueueConsumer, ABC):
    """A queue both sides can use (ttxt2's single interface)."""

    def close(self) -> None:  # noqa: B027 - optional for in-process queues
        """Release resources; further gets drain what is left then raise QueueClosed."""

    def __enter__(self) -> IQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IQueueActor(ABC):
    """Something that consumes a queue until it closes (a client, the recorder)."""

    @abstractmethod
    async def on_event(self, event: Any) -> None: ...

    async def run(self, queue: IQueueConsumer) -> None:
        async for ev in queue:
            await self.on_event(ev)


class AsyncioQueue(IQueue):
    """In-process FIFO, safe to put from any thread; ``maxsize`` 0 means unbounded.

    With ``maxsize`` set, ``put`` drops the oldest event (market-data semantics) unless
    ``block=True``, where it waits for room like ``asyncio.Queue``.
    """

    def __init__(self, maxsize: int = 0, *, block: bool = False) -> None:
        self._items: deque[Any] = deque()
        self._maxsize = maxsize
        self._block = block
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._closed = False
        self.dropped = 0

    def qsize(self) -> int:
        return len(self._items)

    def put(self, event: Any, timeout: float | None = None) -> None:
        with self._cond:
            if self._closed:
                raise QueueClosed("put on a closed AsyncioQueue")
            if self._maxsize and len(self._items) >= self._maxsize:
                if self._block:
                    if not self._cond.wait_for(
                        lambda: len(self._items) < self._maxsize or self._closed, timeout
                    ):
                        raise QueueFull(f"AsyncioQueue full ({self._maxsize}) for {timeout}s")
                else:
                    self._items.popleft()
                    self.dropped += 1
            self._items.append(event)
            self._wake()

    async def aput(self, event: Any) -> None:
        while True:
            try:
                return self.put(event, timeout=0)
            except QueueFull:
                await asyncio.sleep(0.001)

    def _wake(self) -> None:
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_set_done, fut)

    def get_nowait(self) -> Any:
        with self._cond:
            if self._items:
                ev = self._items.popleft()
                self._cond.notify_all()
                return ev
            if self._closed:
                raise QueueClosed("AsyncioQueue closed")
            raise QueueEmpty

    def get(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise QueueEmpty
                self._cond.wait(left)
        return self.get_nowait()

    async def aget(self) -> Any:
        while True:
            with self._cond:
                if self._items or self._closed:
                    return self.get_nowait()
                loop = asyncio.get_running_loop()
                fut = loop.create_future()
                self._waiters.append((loop, fut))
            await fut

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wake()


def _set_done(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
