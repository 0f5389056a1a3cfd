"""The ShmQueue surface: errors that name their cause, closing, metadata, asyncio, objects."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ttxt_mp.events import Kline, MarketTrades, Orderbook
from ttxt_mp.queues import IQueue, QueueClosed, QueueEmpty, QueueFull
from ttxt_mp.shm import (
    EventTooLarge,
    RingError,
    RingExists,
    RingLayoutError,
    RingNotFound,
    ShmQueue,
    clean_objects,
    list_objects,
)
from ttxt_mp.shm.layout import OFF


def kline(i: int) -> Kline:
    return Kline(exchange="x", symbol="A/B", open_ts=i, close=float(i))


def test_attach_to_missing_ring_names_it(names):
    name = names()
    with pytest.raises(RingNotFound, match=f"no shared-memory ring '{name}'"):
        ShmQueue.attach(name)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("layout_hash", b"\x01" * 8, "event layout hash 0101010101010101"),
        ("version", (99).to_bytes(4, "little"), "layout version 99"),
        ("magic", b"NOTARING", "magic b'NOTARING'"),
    ],
)
def test_attach_with_mismatched_layout_is_refused(names, field, value, message):
    name = names()
    with ShmQueue.create(name) as p:
        p._mv[OFF[field] : OFF[field] + len(value)] = value
        with pytest.raises(RingLayoutError, match=message):
            ShmQueue.attach(name)
    assert not [o for o in list_objects(name) if o.kind == "fifo"]  # nothing left behind


def test_bad_parameters_are_refused(names):
    for kw, msg in [
        ({"capacity": 1000}, "power of two"),
        ({"slot_size": 100}, "multiple of 8"),
        ({"policy": "drop"}, "'overwrite' or 'block'"),
        ({"max_consumers": 65}, "max_consumers"),
    ]:
        with pytest.raises(ValueError, match=msg):
            ShmQueue.create(names(), **kw)
    with pytest.raises(ValueError, match="invalid ring name"):
        ShmQueue.create("../etc")
    with pytest.raises(ValueError, match="'latest' or 'oldest'"):
        with ShmQueue.create(names()) as p:
            ShmQueue.attach(p.name, start="middle")


def test_event_larger_than_the_ring_is_refused(names):
    with ShmQueue.create(names(), capacity=4, slot_size=64) as p:
        book = Orderbook(exchange="x", bids=tuple((1.0, 1.0) for _ in range(40)))
        with pytest.raises(EventTooLarge, match=r"needs \d+ slots of 32 payload bytes"):
            p.put(book)
        p.put(Orderbook(exchange="x"))  # the ring is still usable


def test_second_producer_is_refused(names):
    with ShmQueue.create(name := names()):
        with pytest.raises(RingExists, match="producer pid"):
            ShmQueue.create(name)


def test_close_semantics(names):
    name = names()
    p = ShmQueue.create(name)
    c = ShmQueue.attach(name)
    assert isinstance(p, IQueue) and isinstance(c, IQueue)
    with pytest.raises(TypeError, match="cannot get"):
        p.get()
    with pytest.raises(TypeError, match="cannot put"):
        c.put(kline(0))
    p.put(kline(1))
    p.put(kline(2))
    p.close()
    with pytest.raises(QueueClosed, match="put on closed ring"):
        p.put(kline(3))
    assert [ev.open_ts for ev in c] == [1, 2]  # drained, then the iteration ends
    with pytest.raises(QueueClosed, match="closed by its producer"):
        c.get(timeout=0)
    c.close()
    with pytest.raises(QueueClosed):
        c.get_nowait()
    p.unlink()
    assert list_objects(name) == []


def test_get_nowait_and_timeouts(names):
    with ShmQueue.create(name := names()) as p, ShmQueue.attach(name) as c:
        with pytest.raises(QueueEmpty):
            c.get_nowait()
        t0 = time.monotonic()
        with pytest.raises(QueueEmpty):
            c.get(timeout=0.05)
        assert 0.04 < time.monotonic() - t0 < 1.0
        assert len(c.get_batch(10)) == 0
        p.put(kline(5))
        assert c.lag == 1
        assert c.get_nowait().open_ts == 5 and c.lag == 0


def test_metadata_is_shared_and_replaceable(names):
    meta = {"instruments": {"1": {"exchange": "binance", "base": "BTC", "quote": "USDT",
                                  "tick": 0.01}}, "engine": "eng1"}  # fmt: skip
    with ShmQueue.create(name := names(), metadata=meta) as p, ShmQueue.attach(name) as c:
        assert c.metadata == meta
        p.set_metadata({"engine": "eng2"})
        assert c.metadata == {"engine": "eng2"}
        with pytest.raises(EventTooLarge, match="meta_capacity"):
            p.set_metadata("x" * 100_000)


def test_consumer_table_is_bounded(names):
    with ShmQueue.create(name := names(), max_consumers=2) as p:
        with ShmQueue.attach(name), ShmQueue.attach(name):
            with pytest.raises(RingError, match="all 2 consumer entries are taken"):
                ShmQueue.attach(name)
            assert len(p.consumers()) == 2
        with ShmQueue.attach(name):  # detached entries are reused
            assert len(p.consumers()) == 1


def test_block_producer_waits_for_the_slowest_consumer(names):
    with ShmQueue.create(name := names(), capacity=8, policy="block") as p:
        with ShmQueue.attach(name) as fast, ShmQueue.attach(name) as slow:
            for i in range(8):
                p.put(kline(i))
            assert [fast.get(timeout=1).open_ts for _ in range(8)] == list(range(8))
            with pytest.raises(QueueFull, match="8 slots behind"):
                p.put(kline(8), timeout=0)
            t = threading.Timer(0.1, lambda: [slow.get() for _ in range(3)])
            t.start()
            p.put(kline(8), timeout=5)  # waits until `slow` read
            t.join()
            assert slow.get(timeout=1).open_ts == 3


async def test_aget_is_woken_and_async_for_ends_on_close(names):
    name = names()
    p = ShmQueue.create(name)
    c = ShmQueue.attach(name, wake_timeout=30.0)  # only the FIFO can wake it in time
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, p.put, kline(1))
    t0 = time.monotonic()
    assert (await asyncio.wait_for(c.aget(), 5)).open_ts == 1
    assert time.monotonic() - t0 < 2
    loop.call_later(0.1, p.put, kline(2))
    loop.call_later(0.2, p.close)
    assert [ev.open_ts async for ev in c] == [2]
    c.close()
    p.unlink()


async def test_aput_on_a_full_block_ring_waits(names):
    with ShmQueue.create(name := names(), capacity=2, policy="block") as p:
        with ShmQueue.attach(name) as c:
            await p.aput(kline(0))
            await p.aput(kline(1))
            task = asyncio.ensure_future(p.aput(kline(2)))
            await asyncio.sleep(0.05)
            assert not task.done()
            assert c.get_nowait().open_ts == 0
            await asyncio.wait_for(task, 2)


def test_list_and_clean_objects(names):
    name = names()
    p = ShmQueue.create(name)
    c = ShmQueue.attach(name)
    kinds = sorted(o.kind for o in list_objects(name))
    assert kinds == ["fifo", "ring"]
    assert clean_objects(name) == []  # live: kept
    p.close()
    assert [o.alive for o in list_objects(name) if o.kind == "ring"] == [False]
    before = sorted(o.path for o in list_objects(name))
    assert sorted(clean_objects(name)) == before  # closed: ring and FIFO removed
    assert list_objects(name) == []
    c.close()


def test_put_many_array_needs_a_kind(names):
    with ShmQueue.create(names()) as p:
        with pytest.raises(TypeError, match="needs kind="):
            p.put_many(np.zeros((2, 8), np.uint8))
        with pytest.raises(TypeError, match="2-D uint8 rows"):
            p.put_many(np.zeros((2, 2, 2), np.uint8), kind=2)
        p.put_many([MarketTrades(exchange="x")] * 3)
        assert p.events_published == 3


def test_refuses_to_import_off_x86():
    code = (
        "import platform; platform.machine = lambda: 'aarch64'\n"
        "try:\n import ttxt_mp.shm\nexcept ImportError as e: print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout  # fmt: skip
    assert "x86-64 (TSO) store ordering" in out and "'aarch64'" in out
