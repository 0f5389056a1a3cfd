"""Rings across real processes: stress with checksums, dead consumers and producers,
sleeping consumers (wakeups and idle CPU), stale objects and ownership."""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import pytest
from as_user import run_as

from ttxt_mp.codec import encode
from ttxt_mp.queues import QueueFull
from ttxt_mp.shm import (
    ProducerDied,
    RingExists,
    ShmQueue,
    list_objects,
)

from ._worker import STRESS_KIND, make

N = int(os.environ.get("TTXT_STRESS_N", 2_000_000))


def ready(p, timeout: float = 30.0) -> dict:
    """Wait for the worker's ``{"ready": pid}`` line."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError(f"worker {p.args} not ready after {timeout}s: {p.poll()}")
    line = p.stdout.readline()
    assert line, f"worker died: {p.stderr.read()}"
    return json.loads(line)


def result(p, timeout: float = 240.0) -> dict:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def wait_consumers(q, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(q.consumers()) < n:
        assert time.monotonic() < deadline, "consumers did not attach"
        time.sleep(0.01)


def publish(q, n: int) -> None:
    """Events 0..n-1 through every producer API in turn (chunks of 1000)."""
    for start in range(0, n, 1000):
        evs = [make(i) for i in range(start, min(n, start + 1000))]
        how = (start // 1000) % 3
        if how == 0:
            q.put_many(evs)
        elif how == 1:
            for ev in evs:
                q.put(ev)
        else:
            for ev in evs:
                q.put_raw(*encode(ev))


def test_block_stress_three_consumers_see_everything(names, procs):
    """1 producer, 3 consumer processes (Struct, raw, batch): every event once, in order,
    uncorrupted."""
    name = names()
    with ShmQueue.create(name, capacity=1 << 14, policy="block", kinds=[STRESS_KIND]) as q:
        ws = [procs.worker("consume", name, mode) for mode in ("get", "raw", "batch")]
        for w in ws:
            ready(w)
        wait_consumers(q, 3)
        publish(q, N)
    for w in ws:
        r = result(w)
        assert r == {"n": N, "lost": 0, "bad": 0, "order": 0, "gaps": 0, "last": N - 1}, r


def test_overwrite_stress_slow_consumer_exact_gaps(names, procs):
    """A slow consumer on a small overwrite ring is lapped: delivered + lost == produced,
    nothing corrupted, order consistent with the gap notices; fast ones keep up or gap."""
    name = names()
    with ShmQueue.create(name, capacity=1 << 10, policy="overwrite", kinds=[STRESS_KIND]) as q:
        ws = [
            procs.worker("consume", name, "get", "--slow"),
            procs.worker("consume", name, "batch", "--slow"),
            procs.worker("consume", name, "aget"),
        ]
        for w in ws:
            ready(w)
        wait_consumers(q, 3)
        publish(q, N)
    rs = [result(w) for w in ws]
    for r in rs:
        assert r["n"] + r["lost"] == N, r
        assert r["bad"] == 0 and r["order"] == 0, r
        assert r["last"] == N - 1, r  # the newest event is never overwritten
    assert rs[0]["lost"] > 0 and rs[0]["gaps"] > 0, rs[0]
    assert rs[1]["lost"] > 0, rs[1]


def test_sigkilled_consumer_is_reaped_under_block(names, procs, caplog):
    name = names()
    with ShmQueue.create(name, capacity=64, policy="block", kinds=[STRESS_KIND]) as q:
        w = procs.worker("stall", name)
        pid = ready(w)["ready"]
        wait_consumers(q, 1)
        for i in range(63):  # event 0 takes 2 slots: the ring is now full
            q.put(make(i), timeout=0)
        with pytest.raises(QueueFull, match=rf"consumer pid\(s\) {pid} \(64 slots behind\)") as e:
            q.put(make(63), timeout=0)
        assert e.value.blocking == [pid] == q.blocking_consumers()
        os.kill(pid, signal.SIGKILL)  # not waited for: a zombie counts as dead too
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, "ttxt_mp.shm"):
            q.put(make(63), timeout=10)
        assert time.monotonic() - t0 < 5
        assert f"pid {pid} died" in caplog.text
        assert q.consumers() == []


def test_producer_death_is_reported_after_draining(names, procs):
    name = names()
    w = procs.worker("produce", name, "10")
    ready(w)
    with ShmQueue.attach(name, start="oldest") as c:
        got = [c.get(timeout=5).i for _ in range(10)]
        assert got == list(range(10))
        w.send_signal(signal.SIGKILL)
        w.wait()
        with pytest.raises(ProducerDied, match=f"producer pid {w.pid} of ring"):
            c.get(timeout=5)


def test_stale_ring_of_dead_producer_is_cleaned_live_one_refused(names, procs, caplog):
    name = names()
    w = procs.worker("produce", name, "3")
    pid = ready(w)["ready"]
    with pytest.raises(RingExists, match=f"producer pid {pid} is alive"):
        ShmQueue.create(name)
    w.send_signal(signal.SIGKILL)
    w.wait()
    assert [o.alive for o in list_objects(name) if o.kind == "ring"] == [False]
    with caplog.at_level(logging.WARNING, "ttxt_mp.shm"):
        q = ShmQueue.create(name)
    try:
        assert f"stale ring {name!r} of dead producer pid {pid}" in caplog.text
        with ShmQueue.attach(name, start="oldest") as c:
            assert c.lag == 0  # the new ring, not the old events
    finally:
        q.close()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to switch to another user")
def test_attach_to_ring_of_another_user_is_refused(names):
    name = names()
    with ShmQueue.create(name):

        def attach() -> str:
            ShmQueue.attach(name)
            return "attached"

        msg = run_as(attach)
    assert msg.startswith("RingPermissionError"), msg
    assert "belongs to uid 0 with mode 600" in msg and "uid 65534" in msg


@pytest.mark.parametrize("mode", ["get", "aget"])
def test_idle_consumer_sleeps(names, procs, mode):
    """An idle consumer uses (almost) no CPU: a behavioural bound, kept loose."""
    name = names()
    with ShmQueue.create(name, kinds=[STRESS_KIND]):
        w = procs.worker("idle", name, mode)
        ready(w)
        r = result(w, timeout=30)
    assert r["cpu"] < 0.05, r


@pytest.mark.parametrize("mode", ["get", "aget"])
def test_sleeping_consumer_is_woken_by_the_producer(names, procs, mode):
    """With a 30 s safety timeout, only the FIFO wakeup can deliver the event promptly."""
    name = names()
    with ShmQueue.create(name, kinds=[STRESS_KIND]) as q:
        w = procs.worker("wake", name, mode)
        ready(w)
        wait_consumers(q, 1)
        time.sleep(0.3)  # let it fall asleep
        t0 = time.monotonic()
        q.put(make(7))
        r = result(w, timeout=20)
    assert r["got"] == 7
    assert r["t"] - t0 < 2.0, r["t"] - t0
