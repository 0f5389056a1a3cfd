"""Block policy with a stuck consumer: the producer names it (QueueFull.blocking,
blocking_consumers, ring_stats) and aput waits inside the event loop with a timeout,
keeping the loop and the heartbeat alive."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from ttxt_mp.events import Kline
from ttxt_mp.queues import QueueFull
from ttxt_mp.shm import ShmQueue, ring_stats
from ttxt_mp.shm.layout import OFF

from ._worker import STRESS_KIND, make
from .test_shm_processes import ready, result, wait_consumers

BEAT = OFF["heartbeat_ns"] // 8


def fill(q, start: int = 0) -> tuple[int, QueueFull]:
    """Put events until the ring is full; (events put, the QueueFull that stopped it)."""
    for i in range(start, start + 10 * q.capacity):
        try:
            q.put(make(i), timeout=0)
        except QueueFull as e:
            return i, e
    raise AssertionError("the ring never filled: is the consumer really stopped?")


def test_stopped_consumer_is_named_and_aput_times_out_without_freezing_the_loop(names, procs):
    name = names()
    with ShmQueue.create(name, capacity=64, policy="block", kinds=[STRESS_KIND]) as q:
        w = procs.worker("consume", name, "get")
        pid = ready(w)["ready"]
        wait_consumers(q, 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            n, e = fill(q)
            assert e.blocking == [pid] == q.blocking_consumers()
            assert f"blocked by consumer pid(s) {pid}" in str(e)
            assert ring_stats(name)["blocking"] == [pid]

            async def scenario() -> tuple[int, float, QueueFull]:
                ticks = 0
                stop = asyncio.Event()

                async def ticker() -> None:  # other work of the connector's loop
                    nonlocal ticks
                    while not stop.is_set():
                        ticks += 1
                        await asyncio.sleep(0.005)

                t = asyncio.ensure_future(ticker())
                t0 = time.monotonic()
                try:
                    with pytest.raises(QueueFull) as err:
                        await q.aput(make(n), timeout=0.5)
                finally:
                    stop.set()
                    await t
                return ticks, time.monotonic() - t0, err.value

            beat0 = q._Q[BEAT]
            ticks, took, err = asyncio.run(scenario())
            assert 0.5 <= took < 10, took
            assert ticks >= 10, ticks  # the loop kept running while aput waited
            assert err.blocking == [pid] and "within 0.5s" in str(err)
            assert q._Q[BEAT] > beat0  # heartbeats kept flowing while blocked
        finally:
            os.kill(pid, signal.SIGCONT)

        async def resume() -> None:
            await q.aput(make(n), timeout=30)  # the consumer reads again: room

        asyncio.run(resume())
        assert q.blocking_consumers() == []
    r = result(w, timeout=60)
    assert (r["n"], r["lost"], r["bad"], r["order"]) == (n + 1, 0, 0, 0), r


def test_put_timeout_names_the_blocking_consumer(names):
    name = names()
    with ShmQueue.create(name, capacity=4, policy="block") as q:
        with ShmQueue.attach(name) as c:
            for i in range(4):
                q.put(Kline(exchange="x", symbol="A/B", open_ts=i), timeout=0)
            t0 = time.monotonic()
            with pytest.raises(QueueFull) as e:
                q.put(Kline(exchange="x", symbol="A/B", open_ts=4), timeout=0.2)
            assert time.monotonic() - t0 >= 0.2
            assert e.value.blocking == [os.getpid()]
            c.get_nowait()
            assert q.blocking_consumers() == []  # one slot free again
            q.put(Kline(exchange="x", symbol="A/B", open_ts=4), timeout=0)


def test_no_blocking_consumers_on_overwrite_or_without_consumers(names):
    with ShmQueue.create(names(), capacity=4) as q, ShmQueue.attach(q.name):
        for i in range(20):
            q.put(Kline(exchange="x", symbol="A/B", open_ts=i))
        assert q.blocking_consumers() == []
    with ShmQueue.create(names(), capacity=4, policy="block") as q:
        for i in range(20):  # nobody attached: never blocks
            q.put(Kline(exchange="x", symbol="A/B", open_ts=i), timeout=0)
        assert q.blocking_consumers() == []
