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


class _Producer:
    """What a connector is to the state board: books kept as events are published, and a
    state served at the publisher's next event number (ttxt_mp.connectors.state)."""

    def __init__(self, ring) -> None:
        from ttxt_mp.orderbook import OrderBook

        self.publisher = ring
        self.books: dict[str, OrderBook] = {s: OrderBook("venue1", s) for s in SYMS}
        self.stopping = False

    def put(self, e) -> None:
        if type(e).__name__ == "Orderbook":
            self.books[e.symbol].update(e)
        self.publisher.put(e)

    def state_events(self) -> list:
        return [b.to_event() for b in self.books.values()]

    def state_consistent(self) -> bool:
        return True


def test_late_joiner_gets_books_from_the_bridges_state(redis_server):
    """A remote consumer attached at ``latest`` while the engine runs: the bridge's state
    hash gives it every book at once, then the stream after it; books equal the truth."""
    from ttxt_mp.connectors.state import StateServer
    from ttxt_mp.engine.naming import ring_name
    from ttxt_mp.shm import ShmQueue
    from ttxt_mp.shm.board import StateBoard
    from ttxt_mp.shm.objects import remove_ring_objects

    engine = f"rj{uuid.uuid4().hex[:8]}"
    ring = ShmQueue.create(ring_name(engine, "venue1", "market"), capacity=8192, slot_size=512)
    board = StateBoard.create(ring.name)
    prod = _Producer(ring)
    server = StateServer(prod, board)
    truth = BusWriter(redis_server.url, engine)
    bridge = subprocess.Popen([sys.executable, "-c", BRIDGE, engine, redis_server.url],
                              env={**os.environ, "PYTHONPATH": ROOT})  # fmt: skip
    r = redis.Redis.from_url(redis_server.url)
    skey = fmt.state_key(engine, "venue1-market")

    def serve_until(cond, what: str) -> None:
        deadline = time.monotonic() + 30
        while not cond():
            server.serve_if_asked()  # in the publishing thread, as a connector does
            assert bridge.poll() is None and time.monotonic() < deadline, what
            time.sleep(0.005)

    try:
        serve_until(lambda: b"venue1-market" in (r.hget(fmt.meta_key(engine), "rings") or b""),
                    "the bridge never tapped the ring")  # fmt: skip
        for e in [truth.snapshot(s) for s in SYMS]:
            prod.put(e)
        for i in range(300):
            prod.put(truth.delta(SYMS[i % 2], i))
            prod.put(truth.trade(SYMS[i % 2]))
        serve_until(lambda: r.hget(skey, "_after") not in (None, b"0-0"), "no state hash")
        client = BaseClient()
        with ttxt_mp.attach(f"{redis_server.url}/{engine}") as feed:
            for i in range(300, 320):  # after the join: the stream
                prod.put(truth.delta(SYMS[i % 2], i))
                prod.put(truth.trade(SYMS[i % 2]))
            last, end = truth.trades[-1], time.monotonic() + 30
            while True:
                try:
                    e = feed.get(timeout=0.5)
                except QueueEmpty:  # the bridge waits for states we serve here
                    server.serve_if_asked()
                    assert time.monotonic() < end, "the last trade never arrived"
                    continue
                client.dispatch(e)
                if last in [t.id for t in getattr(e, "trades", ())]:
                    break
        assert feed.sources[0].rings[0].joins == 1  # the books came from the bridge's state
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
        board.close()
        ring.close()
        remove_ring_objects(ring.name)
