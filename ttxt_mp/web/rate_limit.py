"""Client-side rate limits with weights, like Binance's REQUEST_WEIGHT / ORDERS limits.

A sliding-window log per limit id: a grant at time t occupies its weight during
[t, t + interval). A request is granted only if, for every limit it touches, the weight
already in the window plus its own stays <= the limit; otherwise the caller waits until
enough old grants expire. A sliding window is stricter than the venues' fixed (calendar)
windows, so staying under it keeps us under theirs. Waiting, never exceeding.

Global limits (`is_global=True`) are charged by every request; a request may also name
one or more per-endpoint limit ids. The clock and sleep are injectable for tests.

A venue's budget is one per process: :func:`shared_limiter` hands every user of the same
venue and REST host (the market-data connector, the trading venue) the same limiter.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

import msgspec

# Smallest wait: guards against float rounding making `now + wait` land 1 ulp short.
_MIN_WAIT = 1e-6


class RateLimit(msgspec.Struct, frozen=True):
    """At most `limit` weight units per rolling `interval_s` seconds."""

    limit_id: str
    limit: int
    interval_s: float
    is_global: bool = False


class _Window:
    """Grants of one limit still inside its rolling window."""

    __slots__ = ("spec", "grants", "used")

    def __init__(self, spec: RateLimit) -> None:
        self.spec = spec
        self.grants: deque[tuple[float, int]] = deque()
        self.used = 0

    def expire(self, now: float) -> None:
        interval = self.spec.interval_s
        grants = self.grants
        while grants and grants[0][0] + interval <= now:
            self.used -= grants.popleft()[1]

    def wait_for(self, weight: int, now: float) -> float:
        """Seconds until `weight` more fits (0 if it fits now). Call after expire()."""
        excess = self.used + weight - self.spec.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for t, w in self.grants:
            freed += w
            if freed >= excess:
                return t + self.spec.interval_s - now
        raise AssertionError("weight above limit must be refused before waiting")


class RateLimiter:
    """Weighted sliding-window limits shared by every request of a process (or venue)."""

    def __init__(
        self,
        limits: Iterable[RateLimit] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._windows: dict[str, _Window] = {}
        for spec in limits:
            if spec.limit_id in self._windows:
                raise ValueError(f"duplicate rate limit id {spec.limit_id!r}")
            if spec.limit < 1 or not spec.interval_s > 0:
                raise ValueError(
                    f"rate limit {spec.limit_id!r} needs limit >= 1 and interval_s > 0, "
                    f"got limit={spec.limit!r} interval_s={spec.interval_s!r}"
                )
            self._windows[spec.limit_id] = _Window(spec)
        self._global_ids = tuple(k for k, w in self._windows.items() if w.spec.is_global)
        self._clock = clock
        self._sleep = sleep
        self._paused_until = float("-inf")

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(w.spec for w in self._windows.values())

    def costs(self, limit_id: str | Sequence[str] | None, weight: int) -> dict[str, int]:
        """Weight charged to each limit by one request; validates ids and weight."""
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"request weight must be an int >= 0, got {weight!r}")
        ids: Sequence[str]
        if limit_id is None:
            ids = ()
        elif isinstance(limit_id, str):
            ids = (limit_id,)
        else:
            ids = limit_id
        costs = dict.fromkeys(self._global_ids, weight)
        for lid in ids:
            if lid not in self._windows:
                known = ", ".join(sorted(self._windows)) or "none configured"
                raise ValueError(f"unknown rate limit id {lid!r} (known: {known})")
            costs[lid] = weight
        for lid, w in costs.items():
            spec = self._windows[lid].spec
            if w > spec.limit:
                raise ValueError(
                    f"request weight {w} exceeds rate limit {lid!r} "
                    f"({spec.limit} per {spec.interval_s:g} s): it could never be sent"
                )
        return costs

    def try_acquire(self, costs: dict[str, int]) -> float:
        """Grant now and return 0.0, or grant nothing and return the seconds to wait."""
        now = self._clock()
        wait = self._paused_until - now
        for lid, w in costs.items():
            win = self._windows[lid]
            win.expire(now)
            wait = max(wait, win.wait_for(w, now))
        if wait > 0:
            return max(wait, _MIN_WAIT)
        for lid, w in costs.items():
            if w:
                win = self._windows[lid]
                win.grants.append((now, w))
                win.used += w
        return 0.0

    async def acquire(self, limit_id: str | Sequence[str] | None = None, weight: int = 1) -> float:
        """Wait until the request fits every limit it touches, record it; return time waited."""
        return await self.acquire_costs(self.costs(limit_id, weight))

    async def acquire_costs(self, costs: dict[str, int]) -> float:
        """acquire() with costs already computed by costs() (validated once per request)."""
        start = self._clock()
        while (wait := self.try_acquire(costs)) > 0:
            await self._sleep(wait)
        return self._clock() - start

    def pause(self, seconds: float) -> None:
        """Hold every request for `seconds` (the venue said 429/418 Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def used(self, limit_id: str) -> int:
        """Weight currently inside the rolling window of `limit_id`."""
        win = self._windows[limit_id]
        win.expire(self._clock())
        return win.used


_shared: weakref.WeakValueDictionary[tuple[str, str], RateLimiter] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_limiter(venue: str, rest_url: str, factory: Callable[[], RateLimiter]) -> RateLimiter:
    """The process's one limiter for ``venue`` at ``rest_url`` (its REST host), made by
    ``factory`` (the venue's documented limits) when nobody holds one yet.

    Kept while someone uses it (weakly referenced): the connector and the trading venue of
    a process spend one budget; a process that keeps neither starts afresh."""
    key = (venue, rest_url.rstrip("/"))
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = factory()
        return limiter
