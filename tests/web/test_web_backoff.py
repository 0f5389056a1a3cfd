"""Backoff: full-jitter bounds, determinism, exhaustion."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp.web import Backoff, BackoffExhausted


@given(
    base=st.floats(min_value=1e-3, max_value=10.0),
    factor=st.floats(min_value=1.0, max_value=1e4),
    n=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delays_within_full_jitter_bounds(base, factor, n, seed):
    cap = base * factor
    b = Backoff(base, cap, rng=random.Random(seed))
    for i in range(n):
        d = b.next_delay()
        assert 0.0 <= d <= min(cap, base * 2.0**i)
    assert b.attempt == n


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_same_seed_same_sequence(seed):
    a = Backoff(0.1, 10, rng=random.Random(seed))
    b = Backoff(0.1, 10, rng=random.Random(seed))
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_jitter_spans_the_range_and_grows():
    rng = random.Random(7)
    first = [Backoff(1.0, 64.0, rng=rng).next_delay() for _ in range(2000)]
    assert min(first) < 0.05 and max(first) > 0.95  # attempt 0: uniform in [0, 1]
    b = Backoff(1.0, 64.0, rng=rng)
    for _ in range(10):
        b.next_delay()
    late = [b.next_delay() for _ in range(2000)]  # capped: uniform in [0, 64]
    assert max(late) <= 64.0 and max(late) > 60 and 25 < sum(late) / len(late) < 39


def test_max_attempts_and_reset():
    b = Backoff(0.1, 1.0, max_attempts=3, rng=random.Random(0))
    for _ in range(3):
        b.next_delay()
    assert b.exhausted
    with pytest.raises(BackoffExhausted, match="gave up after 3 attempts"):
        b.next_delay()
    b.reset()
    assert b.attempt == 0 and not b.exhausted
    assert 0 <= b.next_delay() <= 0.1


def test_huge_attempt_numbers_do_not_overflow():
    b = Backoff(0.5, 30.0)
    assert b.ceiling(5000) == 30.0 and b.ceiling(0) == 0.5 and b.ceiling(3) == 4.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base": 0}, "base must be > 0"),
        ({"base": 2, "cap": 1}, "cap must be >= base"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Backoff(**kwargs)


async def test_sleep_waits_the_delay(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(d):
        slept.append(d)

    monkeypatch.setattr("ttxt_mp.web.backoff.asyncio.sleep", fake_sleep)
    b = Backoff(0.2, 1.0, rng=random.Random(1))
    d = await b.sleep()
    assert slept == [d] and 0 <= d <= 0.2
