"""OKX WebSocket request limits ("WebSocket" overview, Connect / Subscribe): per connection
at most 3 subscribe/unsubscribe/login requests per second and 480 per hour; the connection
counts, not the IP. :class:`OpBudget` paces the requests of one connection under both."""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["OpBudget", "PER_HOUR", "PER_SECOND"]

PER_SECOND = 3
PER_HOUR = 480


class OpBudget:
    """Grants for one connection's requests: waits while 3 were sent in the last second;
    :meth:`exhausted` when the hour's 480 are used (a new connection has a fresh budget)."""

    def __init__(self, per_second: int = PER_SECOND, per_hour: int = PER_HOUR,
                 clock=time.monotonic) -> None:  # fmt: skip
        self.per_second = per_second
        self.per_hour = per_hour
        self.clock = clock
        self.sent: deque[float] = deque()

    def exhausted(self) -> bool:
        self._forget(self.clock())
        return len(self.sent) >= self.per_hour

    def _forget(self, now: float) -> None:
        while self.sent and now - self.sent[0] >= 3600.0:
            self.sent.popleft()

    def delay(self) -> float:
        """Seconds until one more request may go (0: now)."""
        now = self.clock()
        self._forget(now)
        if len(self.sent) < self.per_second:
            return 0.0
        return max(0.0, self.sent[-self.per_second] + 1.0 - now)

    async def acquire(self) -> None:
        """Wait for the per-second budget and take one grant."""
        while (wait := self.delay()) > 0:
            await asyncio.sleep(wait)
        self.sent.append(self.clock())
