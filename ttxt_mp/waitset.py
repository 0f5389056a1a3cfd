"""Several event sources served from the calling thread: what a merged ``attach()`` feed
waits with (issue 11), instead of one thread per ring handing events over a queue.

A *ring-like* source is one whose class has ``poll_event`` (the next event or None,
never waiting; QueueClosed once drained), ``wake_fd``, ``arm_sleep``/``disarm_sleep``,
``drain_wakeups`` and ``check_alive`` (``RingReader`` and ``JoinedRing`` have them; an
optional ``wait_cap()`` bounds a sleep, e.g. while a join state is awaited). They are
looked at round-robin from the caller's thread. Any other
:class:`~ttxt_mp.queues.IQueueConsumer` (no fd: a remote bus source, a test double) keeps
one helper thread that hands its events over through a queue and a self-pipe, so it
wakes the same ``poll`` as the rings.

Waiting follows the ring's own protocol (ttxt_mp/shm/ring.py, "Sleeping"): look at every
source; spin for an adaptive budget (``adapt_spin``); then arm every ring (its sleep
flag), one full fence, look once more, and block on every wake-up fd together.
"""

from __future__ import annotations

import contextlib
import os
import queue as thread_queue
import select
import threading
import time
from typing import Any

from ttxt_mp.queues import IQueueConsumer, QueueClosed, QueueEmpty
from ttxt_mp.shm.ring import _FENCE, adapt_spin

__all__ = ["WaitSet", "ring_like"]

_RING_API = ("poll_event", "wake_fd", "arm_sleep", "disarm_sleep", "drain_wakeups", "check_alive")


def ring_like(src: Any) -> bool:
    """``src``'s class serves the wait-set protocol (looked up on the class, so a wrapper
    forwarding attributes with ``__getattr__`` does not pass for its inner ring) and it
    has a wake-up fd (a wrapper of a source without one says None)."""
    return all(callable(getattr(type(src), n, None)) for n in _RING_API) and (
        src.wake_fd() is not None
    )


class _Ended:
    """A helper thread's source closed."""


class _Threaded:
    """Sources without an fd, each read by a helper thread into one queue; looks like a
    ring to the wait set (its fd: a self-pipe written once per item)."""

    def __init__(self, sources: list[IQueueConsumer]) -> None:
        self.sources = sources
        self.live = len(sources)
        self.q: thread_queue.SimpleQueue = thread_queue.SimpleQueue()
        self.rfd, self.wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pump, args=(s,), daemon=True,
                                         name="ttxt-feed-source") for s in sources]  # fmt: skip
        for t in self.threads:
            t.start()

    def _pump(self, src: IQueueConsumer) -> None:
        while not self.stop.is_set():
            try:
                item = src.get(timeout=0.2)
            except QueueEmpty:
                continue
            except QueueClosed:
                break
            except BaseException as e:  # surfaced to the consumer, not lost in a thread
                self._put(e)
                return
            self._put(item)
        self._put(_Ended())

    def _put(self, item: Any) -> None:
        self.q.put(item)
        with contextlib.suppress(BlockingIOError):  # full pipe: readable anyway
            os.write(self.wfd, b"\1")

    def poll_event(self) -> Any:
        while True:
            try:
                item = self.q.get_nowait()
            except thread_queue.Empty:
                return None
            if isinstance(item, BaseException):
                self.live -= 1
                raise item
            if not isinstance(item, _Ended):
                return item
            self.live -= 1
            if self.live == 0:
                raise QueueClosed("every source without a wake-up fd is closed")

    def wake_fd(self) -> int:
        return self.rfd

    def drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.rfd, 65536)

    def arm_sleep(self) -> None: ...
    def disarm_sleep(self) -> None: ...

    def check_alive(self) -> Any:
        return None

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=1.0)
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


class WaitSet:
    """Round-robin over ``sources`` from the calling thread; ``get`` waits on all."""

    def __init__(self, sources: list[IQueueConsumer], *, spin_us: float = 50.0,
                 wake_timeout: float = 0.1) -> None:  # fmt: skip
        rings: list[Any] = [s for s in sources if ring_like(s)]
        others = [s for s in sources if not ring_like(s)]
        self._threaded = _Threaded(others) if others else None
        if self._threaded is not None:
            rings.append(self._threaded)
        self._live: list[Any] = rings
        self._next = 0
        self._spin = spin_us / 1e6
        self._spin_now = self._spin
        self._wake_timeout = wake_timeout
        self._poller = select.poll()
        self._by_fd: dict[int, Any] = {}
        for s in rings:
            fd = s.wake_fd()
            self._by_fd[fd] = s
            self._poller.register(fd, select.POLLIN)

    @property
    def spin_budget(self) -> float:
        """Seconds the next wait will spin before sleeping (adapts; ``adapt_spin``)."""
        return self._spin_now

    def _drop(self, s: Any) -> None:
        self._live.remove(s)
        fd = s.wake_fd()
        self._by_fd.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self._poller.unregister(fd)

    def poll(self) -> Any:
        """The next event of any source (round-robin) or None; a source that ends is
        dropped (its error raised here, once); QueueClosed when none is left."""
        live = self._live
        n = len(live)
        if not n:
            raise QueueClosed("every ring of the feed is closed")
        i = self._next
        for k in range(n):
            s = live[(i + k) % n]
            try:
                ev = s.poll_event()
            except QueueClosed:
                self._drop(s)
                return self.poll()
            except BaseException:
                if s is not self._threaded or not s.live:  # its other sources go on
                    self._drop(s)
                raise
            if ev is not None:
                self._next = (i + k + 1) % n
                return ev
        return None

    def get(self, timeout: float | None = None) -> Any:
        ev = self.poll()
        if ev is not None:
            return ev
        clock = time.monotonic
        now = clock()
        deadline = None if timeout is None else now + timeout
        spin_end = now + self._spin_now if deadline is None else min(now + self._spin_now, deadline)
        k = 0
        while True:
            ev = self.poll()
            if ev is not None:
                self._spin_now = adapt_spin(self._spin_now, self._spin, True)
                return ev
            k += 1
            if not k & 7 and clock() >= spin_end:
                break
        try:
            ev = self._arm()
            self._spin_now = adapt_spin(self._spin_now, self._spin, ev is not None)
            while ev is None:
                t = self._wake_timeout
                for s in self._live:
                    cap = getattr(s, "wait_cap", None)
                    c = cap() if cap is not None else None
                    if c is not None:
                        t = min(t, c)
                if deadline is not None:
                    left = deadline - clock()
                    if left <= 0:
                        raise QueueEmpty
                    t = min(t, left)
                fired = self._poller.poll(t * 1000)
                if fired:
                    for fd, _ in fired:
                        s = self._by_fd.get(fd)
                        if s is not None:
                            s.drain_wakeups()
                    ev = self._arm()  # new tokens: the next put wakes us again
                    continue
                for s in list(self._live):  # no wake-up: is everyone alive?
                    try:
                        ev = s.check_alive()
                    except QueueClosed:
                        self._drop(s)
                        ev = None
                    except BaseException:
                        self._drop(s)
                        raise
                    if ev is not None:
                        break
                if ev is None:
                    ev = self.poll()
            return ev
        finally:
            for s in self._live:
                s.disarm_sleep()

    def _arm(self) -> Any:
        """Flag every ring asleep, fence once, look once more (ring.py: sleeping)."""
        for s in self._live:
            s.arm_sleep()
        _FENCE.acquire()
        _FENCE.release()
        return self.poll()

    def close(self) -> None:
        """Stop the helper threads (the sources themselves are closed by their owner)."""
        if self._threaded is not None:
            self._threaded.close()
            self._threaded = None
