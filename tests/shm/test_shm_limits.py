"""Resource limits of ring creation: sizes checked before anything exists, every page
allocated at creation (no SIGBUS later), one-line errors, nothing left behind."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttxt_mp.events import Kline
from ttxt_mp.shm import RingTooLarge, ShmQueue, limits, list_objects, max_ring_bytes
from ttxt_mp.shm.errors import EventTooLarge
from ttxt_mp.shm.objects import shm_path
from ttxt_mp.shm.writer import _create_shm

MiB = 1 << 20


def ev(i: int = 1) -> Kline:
    return Kline(exchange="x", symbol="A/B", open_ts=i, close=float(i))


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg, msg
    return msg


def nothing_left(name: str) -> bool:
    return not os.path.exists(shm_path(name)) and list_objects(name) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"capacity": 2**40}, "capacity must be a power of two from 2 to 4294967296, got 1099511627776"),
        ({"capacity": 2**62}, "capacity must be a power of two from 2 to"),
        ({"capacity": 1.5}, "capacity must be a power of two"),
        ({"capacity": "64"}, "got '64'"),
        ({"capacity": True}, "capacity must be"),
        ({"slot_size": 2**31}, "slot_size must be a multiple of 8 from 64 to 67108864, got 2147483648"),
        ({"slot_size": 100}, "slot_size must be a multiple of 8, got 100"),
        ({"max_consumers": 0}, "max_consumers must be an integer (consumer entries per ring) from 1 to 64, got 0"),
        ({"max_consumers": 65}, "from 1 to 64, got 65"),
        ({"meta_capacity": -1}, "meta_capacity must be an integer from 0"),
        ({"keeper_pid": 2**40}, "keeper_pid must be"),
        ({"group": -5}, "group must be a group id"),
    ],
)  # fmt: skip
def test_out_of_range_parameters_are_one_line_value_errors(names, kw, message):
    name = names()
    with pytest.raises(ValueError) as e:
        ShmQueue.create(name, **kw)
    assert message in one_line(e)
    assert nothing_left(name)


def test_ring_over_the_maximum_is_refused_before_creation(names, monkeypatch):
    monkeypatch.setenv(limits.ENV_MAX, "1M")
    assert max_ring_bytes() == MiB
    name = names()
    with pytest.raises(RingTooLarge) as e:
        ShmQueue.create(name, capacity=1 << 14, slot_size=256)  # 4 MiB of slots
    msg = one_line(e)
    assert f"ring {name!r}: 16384 slots x 256 bytes need 4.1 MiB" in msg, msg
    assert "more than the maximum ring size 1.0 MiB" in msg and limits.ENV_MAX in msg
    assert isinstance(e.value, ValueError)
    assert nothing_left(name)
    ShmQueue.create(name, capacity=1 << 10, slot_size=256).close()  # 256 KiB: fine


def test_default_maximum_is_half_of_shm_at_most_4_gib(monkeypatch):
    monkeypatch.delenv(limits.ENV_MAX, raising=False)
    total = os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize
    assert max_ring_bytes() == min(total // 2, 4 << 30)


@pytest.mark.parametrize("bad", ["lots", "-5", "0", "1.5G"])
def test_bad_maximum_in_the_environment_is_one_line(names, monkeypatch, bad):
    monkeypatch.setenv(limits.ENV_MAX, bad)
    name = names()
    with pytest.raises(ValueError) as e:
        ShmQueue.create(name)
    assert f"{limits.ENV_MAX}={bad!r} is not a size in bytes" in one_line(e)
    assert nothing_left(name)


def test_ring_over_the_free_shared_memory_is_refused(names, monkeypatch):
    """The real /dev/shm: a ring larger than its free space (the maximum raised)."""
    total, free = limits.shm_space()
    monkeypatch.setenv(limits.ENV_MAX, str(1 << 50))
    name = names()
    slot = 1 << 16
    cap = 1 << max(1, (free // slot).bit_length())  # the next power of two above free
    assert cap * slot > free
    with pytest.raises(RingTooLarge) as e:
        ShmQueue.create(name, capacity=cap, slot_size=slot)
    assert "but /dev/shm has only" in one_line(e) and "free" in str(e.value)
    assert nothing_left(name)


def test_allocation_failure_is_an_error_at_creation_not_a_sigbus(names, monkeypatch):
    """Pretend the checks pass; tmpfs itself then refuses the allocation (a ring larger
    than the whole filesystem): RingTooLarge, and the object is unlinked again."""
    total, _ = limits.shm_space()
    monkeypatch.setenv(limits.ENV_MAX, str(1 << 50))
    monkeypatch.setattr(limits, "shm_space", lambda path=limits.SHM_DIR: (1 << 50, 1 << 50))
    name = names()
    slot = 1 << 16
    cap = 1 << max(1, (total // slot).bit_length())
    with pytest.raises(RingTooLarge) as e:
        ShmQueue.create(name, capacity=cap, slot_size=slot)
    assert f"ring {name!r}: cannot allocate" in one_line(e), str(e.value)
    assert "No space left on device" in str(e.value)
    assert nothing_left(name)


def test_pages_are_allocated_at_creation(names):
    name = names()
    size = 8 * MiB
    shm = _create_shm(name, size, None)
    try:
        st_ = os.fstat(shm.fd)
        assert st_.st_size == size
        assert st_.st_blocks * 512 >= size  # not sparse: no page is allocated later
    finally:
        shm.close_fd()
        os.unlink(shm_path(name))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(cap_exp=1, cap_jitter=0, slot_size=64)  # a 2-slot ring: a kline does not fit
@given(
    cap_exp=st.integers(-1, 70),
    cap_jitter=st.sampled_from([0, 0, 0, 1, -1]),
    slot_size=st.one_of(st.integers(0, 4096), st.integers(0, 2**40), st.sampled_from([64, 2**26, 2**26 + 8, 2**31])),
)  # fmt: skip
def test_any_size_is_created_and_usable_or_refused_with_nothing_left(names, monkeypatch, cap_exp,
                                                                     cap_jitter, slot_size):  # fmt: skip
    monkeypatch.setenv(limits.ENV_MAX, "8M")
    capacity = (2**cap_exp if cap_exp >= 0 else 0) + cap_jitter
    name = names()
    try:
        q = ShmQueue.create(name, capacity=capacity, slot_size=slot_size)
    except (RingTooLarge, ValueError) as e:
        assert str(e) and "\n" not in str(e)
        assert nothing_left(name), (capacity, slot_size)
        return
    try:
        assert q.capacity == capacity and q.slot_size == slot_size
        assert capacity * slot_size <= 8 * MiB
        with ShmQueue.attach(name, start="oldest") as c:
            try:
                q.put(ev(7))
            except EventTooLarge as e:  # a ring too small for the event: refused, one line
                assert "\n" not in str(e) and "larger capacity or slot_size" in str(e)
                assert capacity * slot_size < 4096, (capacity, slot_size)
            else:
                assert c.get(timeout=5).open_ts == 7
    finally:
        q.close()
        q.unlink()
    assert nothing_left(name)
