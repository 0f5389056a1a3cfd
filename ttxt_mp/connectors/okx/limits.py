"""OKX WebSocket limits ("WebSocket" overview, Connect): "Connection limit: 3 requests per
second (based on IP)" and "The total number of 'subscribe'/'unsubscribe'/'login' requests
per connection is limited to 480 times per hour".

:class:`ConnectPacer` spaces the connection attempts of every OKX socket of the process to
one host (public and business endpoints alike) under 3 per second; :class:`OpBudget` counts
one connection's subscribe/unsubscribe requests (a new connection has a fresh budget)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["CONNECTS_PER_SECOND", "ConnectPacer", "OPS_PER_HOUR", "OpBudget", "pacer"]

CONNECTS_PER_SECOND = 3
OPS_PER_HOUR = 480


class _Window:
    """Times of the grants still inside a rolling window."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.sent: deque[float] = deque()

    def wait(self) -> float:
        """Seconds until one more grant fits (0: now)."""
        now = self.clock()
        while self.sent and now - self.sent[0] >= self.window_s:
            self.sent.popleft()
        if len(self.sent) < self.limit:
            return 0.0
        return self.sent[0] + self.window_s - now

    def take(self) -> None:
        self.sent.append(self.clock())


class OpBudget:
    """One connection's subscribe/unsubscribe requests: 480 per rolling hour."""

    def __init__(self, per_hour: int = OPS_PER_HOUR, clock: Callable[[], float] = time.monotonic
                 ) -> None:  # fmt: skip
        self._w = _Window(per_hour, 3600.0, clock)

    def exhausted(self) -> bool:
        return self._w.wait() > 0

    def take(self) -> None:
        self._w.take()

    @property
    def used(self) -> int:
        return len(self._w.sent)


class ConnectPacer:
    """Connection attempts to one host: at most 3 per rolling second."""

    def __init__(self, per_second: int = CONNECTS_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._w = _Window(per_second, 1.0, clock)

    async def acquire(self) -> None:
        while (wait := self._w.wait()) > 0:
            await asyncio.sleep(wait)
        self._w.take()


_PACERS: dict[str, ConnectPacer] = {}


def pacer(host: str) -> ConnectPacer:
    """The process's pacer for ``host`` (every OKX connector of the process shares it)."""
    p = _PACERS.get(host)
    if p is None:
        p = _PACERS[host] = ConnectPacer()
    return p
