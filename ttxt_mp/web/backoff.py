"""Exponential backoff with full jitter.

Delay n (0-based) is uniform in [0, min(cap, base * 2**n)] ("full jitter", AWS
architecture blog): reconnect storms spread out instead of retrying in lock step.
Deterministic when given a seeded `random.Random`.
"""

from __future__ import annotations

import asyncio
import random

from .errors import BackoffExhausted

# 2**64 already exceeds any sane cap/base ratio; beyond it the ceiling is just `cap`
# (and float pow would overflow near n=1024).
_MAX_EXPONENT = 64


class Backoff:
    """Yields jittered delays; `reset()` after a connection proved healthy."""

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not base > 0:
            raise ValueError(f"Backoff base must be > 0 seconds, got {base!r}")
        if not cap >= base:
            raise ValueError(f"Backoff cap must be >= base ({base!r}), got {cap!r}")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"Backoff max_attempts must be >= 1 or None, got {max_attempts!r}")
        self.base = float(base)
        self.cap = float(cap)
        self.max_attempts = max_attempts
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Number of delays handed out since the last reset."""
        return self._attempt

    @property
    def exhausted(self) -> bool:
        return self.max_attempts is not None and self._attempt >= self.max_attempts

    def ceiling(self, n: int) -> float:
        """Upper bound of delay n: min(cap, base * 2**n)."""
        if n >= _MAX_EXPONENT:
            return self.cap
        return min(self.cap, self.base * (2.0**n))

    def next_delay(self) -> float:
        """The next delay in seconds; raises BackoffExhausted past max_attempts."""
        if self.exhausted:
            raise BackoffExhausted(self._attempt)
        delay = self._rng.uniform(0.0, self.ceiling(self._attempt))
        self._attempt += 1
        return delay

    async def sleep(self) -> float:
        """Sleep the next delay and return it."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self._attempt = 0
