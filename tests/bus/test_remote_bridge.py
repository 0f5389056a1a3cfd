"""End to end once the engine's bridge exists (``ttxt_mp.bus.bridge``, built beside this
reader): a shared-memory ring -> the bridge process -> Redis -> ``attach("redis://...")``.
Books rebuilt remotely equal the producer's truth, every trade arrives once, in order."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from remote_writer import BusWriter, book_levels

import ttxt_mp
from ttxt_mp import BaseClient, QueueEmpty
from ttxt_mp.bus import format as fmt

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ttxt_mp.bus.bridge") is None,
                                reason="the engine bridge (ttxt_mp.bus.bridge) is not in this tree")  # fmt: skip
SYMS = ("AAA/USDT", "BBB/USDT")
ROOT = str(Path(__file__).resolve().parents[2])
BRIDGE = """
import asyncio, signal, sys
from ttxt_mp.bus.bridge import Bridge
from ttxt_mp.config import BridgeConfig
b = Bridge(sys.argv[1], BridgeConfig(kind="redis", url=sys.argv[2], rings=["market"]), "t", None)
signal.signal(signal.SIGTERM, lambda *_: b.stop_event.set())
asyncio.run(b.run())
"""


def test_ring_through_the_bridge_to_a_remote_feed(redis_server):
    from ttxt_mp.engine.naming import ring_name
    from ttxt_mp.shm import ShmQueue
    from ttxt_mp.shm.objects import remove_ring_objects

    engine = f"rb{uuid.uuid4().hex[:8]}"
    ring = ShmQueue.create(ring_name(engine, "venue1", "market"), capacity=8192, slot_size=512)
    truth = BusWriter(redis_server.url, engine)  # used only for its events and truth
    bridge = subprocess.Popen([sys.executable, "-c", BRIDGE, engine, redis_server.url],
                              env={**os.environ, "PYTHONPATH": ROOT})  # fmt: skip
    r = redis.Redis.from_url(redis_server.url)
    try:
        deadline = time.monotonic() + 30
        while b"venue1-market" not in (r.hget(fmt.meta_key(engine), "rings") or b""):
            assert bridge.poll() is None and time.monotonic() < deadline, "the bridge never tapped"
            time.sleep(0.05)
        for e in [truth.snapshot(s) for s in SYMS]:
            ring.put(e)
        for i in range(500):
            ring.put(truth.delta(SYMS[i % 2], i))
            ring.put(truth.trade(SYMS[i % 2]))
        client, trades = BaseClient(), []
        with ttxt_mp.attach(f"{redis_server.url}/{engine}", start="oldest") as feed:
            while len(trades) < len(truth.trades):
                try:
                    e = feed.get(timeout=20)
                except QueueEmpty:
                    break
                client.dispatch(e)
                trades += [t.id for t in getattr(e, "trades", ())]
        assert trades == truth.trades
        for s in SYMS:
            assert book_levels(client, s) == truth.truth(s)
    finally:
        bridge.send_signal(signal.SIGTERM)
        try:
            bridge.wait(15)
        except subprocess.TimeoutExpired:
            bridge.kill()
            bridge.wait(5)
        r.close()
        truth.close()
        ring.close()
        remove_ring_objects(ring.name)
