"""Clocks and timers for clients: ``self.now``, ``call_later``, ``every``.

A client asks its clock for the time and schedules callbacks on it; which clock it has
decides what time means. :class:`WallClock` (the default) is the system's time: the
client's run loop fires due timers between events. In a backtest the runner installs a
clock of its own (:class:`ttxt_mp.backtest.runner`), on which time is the replayed
exchange time and timers are entries of the same event heap as the market data, so a
strategy's ``every(60, ...)`` fires once per simulated minute whatever the replay speed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Clock", "Timer", "WallClock"]

log = logging.getLogger("ttxt_mp.clock")


class Timer:
    """A scheduled callback; ``cancel()`` stops it (and, for ``every``, its repeats)."""

    __slots__ = ("due", "fn", "interval", "cancelled")

    def __init__(self, due: int, fn: Callable[[], Any], interval: int = 0) -> None:
        self.due = due  # ns, on the clock's time line
        self.fn = fn
        self.interval = interval  # ns; 0 = once
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        every = f" every {self.interval / 1e9:g}s" if self.interval else ""
        return f"<Timer {getattr(self.fn, '__qualname__', self.fn)!s} at {self.due}{every}>"


class Clock:
    """What a client's ``now``/``call_later``/``every`` use: time in ns and a way to fire
    a timer at a given time. Subclasses define :meth:`now` and :meth:`schedule`."""

    def now(self) -> int:
        raise NotImplementedError

    def schedule(self, timer: Timer) -> None:
        raise NotImplementedError

    def call_later(self, delay_s: float, fn: Callable[[], Any]) -> Timer:
        if not delay_s >= 0:
            raise ValueError(f"call_later: delay must be >= 0 seconds, got {delay_s!r}")
        t = Timer(self.now() + round(delay_s * 1e9), fn)
        self.schedule(t)
        return t

    def every(self, interval_s: float, fn: Callable[[], Any]) -> Timer:
        if not interval_s > 0:
            raise ValueError(f"every: interval must be > 0 seconds, got {interval_s!r}")
        step = max(1, round(interval_s * 1e9))
        t = Timer(self.now() + step, fn, step)
        self.schedule(t)
        return t

    @staticmethod
    def fire(timer: Timer) -> bool:
        """Run a due timer; True when it wants to be scheduled again (``every``): its
        ``due`` has moved on by one interval (no drift, no catch-up storm: see WallClock)."""
        if timer.cancelled:
            return False
        timer.fn()
        if timer.interval and not timer.cancelled:
            timer.due += timer.interval
            return True
        return False

    def pending(self) -> list[Timer]:
        """Timers not fired yet (handed over when a backtest installs its own clock)."""
        return []


class WallClock(Clock):
    """System time; timers wait in a heap until the client's run loop fires them."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self.on_schedule: Callable[[], None] | None = None
        """Called when a timer is added (wakes an ``arun`` loop sleeping until the next)."""

    def now(self) -> int:
        return time.time_ns()

    def schedule(self, timer: Timer) -> None:
        heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
        if self.on_schedule is not None:
            self.on_schedule()

    def next_due(self) -> int | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def seconds_to_next(self) -> float | None:
        due = self.next_due()
        return None if due is None else max(0.0, (due - self.now()) / 1e9)

    def run_due(self) -> int:
        """Fire every timer due now, in due order; returns how many fired. A repeating
        timer that fell behind by more than its interval (a slow handler) skips the
        missed ticks rather than firing them back to back."""
        fired = 0
        now = self.now()
        while self._heap and self._heap[0][0] <= now:
            _, _, t = heapq.heappop(self._heap)
            if t.cancelled:
                continue
            fired += 1
            if self.fire(t):
                if t.due <= now:
                    t.due = now + t.interval
                self.schedule(t)
        return fired

    def pending(self) -> list[Timer]:
        return [t for _, _, t in sorted(self._heap) if not t.cancelled]
