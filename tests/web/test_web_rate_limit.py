"""RateLimiter: never exceeds any limit in any window, waits instead, validates input."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.web import RateLimit, RateLimiter


class FakeClock:
    """Virtual time: sleep() advances the clock instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def assert_no_window_exceeded(grants: list[tuple[float, dict[str, int]]], limits: list[RateLimit]):
    """For each limit, every window [g, g + interval) starting at a grant holds <= limit."""
    for spec in limits:
        charged = sorted((t, c[spec.limit_id]) for t, c in grants if spec.limit_id in c)
        j = 0
        total = 0
        for i, (start, _) in enumerate(charged):
            while j < len(charged) and charged[j][0] < start + spec.interval_s:
                total += charged[j][1]
                j += 1
            assert total <= spec.limit, (spec, start, total)
            total -= charged[i][1]


LIMITS = [
    RateLimit("weight", 20, 1.0, is_global=True),
    RateLimit("orders", 5, 0.5),
    RateLimit("depth", 8, 2.0),
]

requests_st = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=0.7),  # gap before the request
        st.sampled_from([None, "orders", "depth", ("orders", "depth")]),
        st.integers(min_value=0, max_value=5),  # weight
    ),
    min_size=1,
    max_size=60,
)


@given(requests_st)
@settings(max_examples=150, deadline=None)
def test_sequential_requests_never_exceed_any_window(pattern):
    clock = FakeClock()
    limiter = RateLimiter(LIMITS, clock=clock, sleep=clock.sleep)
    grants: list[tuple[float, dict[str, int]]] = []

    async def run():
        for gap, lid, w in pattern:
            clock.now += gap
            costs = limiter.costs(lid, w)
            await limiter.acquire(lid, w)
            grants.append((clock.now, costs))

    asyncio.run(run())
    assert_no_window_exceeded(grants, LIMITS)
    assert len(grants) == len(pattern)


@given(requests_st)
@settings(max_examples=100, deadline=None)
def test_concurrent_requests_never_exceed_any_window(pattern):
    clock = FakeClock()
    limiter = RateLimiter(LIMITS, clock=clock, sleep=clock.sleep)
    grants: list[tuple[float, dict[str, int]]] = []

    async def one(lid, w):
        await limiter.acquire(lid, w)
        grants.append((clock.now, limiter.costs(lid, w)))

    async def run():
        tasks = []
        for gap, lid, w in pattern:  # arrivals spread in time, waiters compete
            clock.now += gap
            tasks.append(asyncio.create_task(one(lid, w)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    asyncio.run(run())
    assert_no_window_exceeded(grants, LIMITS)
    assert len(grants) == len(pattern)


async def test_waits_exactly_until_the_window_frees():
    clock = FakeClock()
    limiter = RateLimiter([RateLimit("w", 10, 1.0, is_global=True)], clock=clock, sleep=clock.sleep)
    t0 = clock.now
    times = []
    for _ in range(25):
        await limiter.acquire()
        times.append(round(clock.now - t0, 9))
    assert times == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
    assert limiter.used("w") == 5


async def test_heavy_request_waits_for_enough_weight():
    clock = FakeClock()
    limiter = RateLimiter([RateLimit("w", 10, 1.0, is_global=True)], clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await limiter.acquire(weight=2)
        clock.now += 0.1
    # now t=0.4 with 8 used: 5 more needs 3 freed, i.e. the grants of t=0 and t=0.1 gone
    waited = await limiter.acquire(weight=5)
    assert waited == pytest.approx(0.7)


async def test_endpoint_limit_does_not_block_other_endpoints():
    clock = FakeClock()
    limiter = RateLimiter(
        [RateLimit("a", 1, 10.0), RateLimit("b", 1, 10.0)], clock=clock, sleep=clock.sleep
    )
    await limiter.acquire("a")
    assert await limiter.acquire("b") == 0.0
    assert await limiter.acquire("a") == pytest.approx(10.0)


async def test_pause_holds_every_request():
    clock = FakeClock()
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep)
    limiter.pause(2.5)
    assert await limiter.acquire() == pytest.approx(2.5)
    assert await limiter.acquire() == 0.0


async def test_real_clock_limit_is_respected():
    limiter = RateLimiter([RateLimit("w", 4, 0.2, is_global=True)])
    grants: list[tuple[float, dict[str, int]]] = []

    async def one():
        await limiter.acquire()
        grants.append((time.monotonic(), {"w": 1}))

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(10)))
    assert time.monotonic() - t0 >= 0.39
    assert_no_window_exceeded(grants, [RateLimit("w", 4, 0.2)])


def test_bad_configuration_and_requests_are_refused():
    limiter = RateLimiter([RateLimit("orders", 5, 1.0), RateLimit("w", 100, 60, is_global=True)])
    with pytest.raises(ValueError, match=r"unknown rate limit id 'order' \(known: orders, w\)"):
        limiter.costs("order", 1)
    with pytest.raises(ValueError, match=r"weight 6 exceeds rate limit 'orders' \(5 per 1 s\)"):
        limiter.costs("orders", 6)
    with pytest.raises(ValueError, match="weight must be an int >= 0"):
        limiter.costs(None, -1)
    with pytest.raises(ValueError, match="duplicate rate limit id 'x'"):
        RateLimiter([RateLimit("x", 1, 1), RateLimit("x", 2, 1)])
    with pytest.raises(ValueError, match="'y' needs limit >= 1"):
        RateLimiter([RateLimit("y", 0, 1)])
    assert limiter.costs("orders", 2) == {"w": 2, "orders": 2}
