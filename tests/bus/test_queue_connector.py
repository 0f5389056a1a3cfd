"""A connector run in-process publishes straight into a RedisStreamQueue (its ``put``),
and a reader of that stream on the other side builds a synced book from it."""

from __future__ import annotations

import asyncio
import time

import pytest

from ttxt_mp.bus.redis_queue import RedisStreamQueue
from ttxt_mp.client import BaseClient
from ttxt_mp.config import ConnectorConfig, DepthStream, Endpoints, Streams
from ttxt_mp.connectors.registry import create_connector
from ttxt_mp.events import ConnectorState, ConnectorStatus
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.sim import Rates, Simulator

pytestmark = pytest.mark.timeout(60)


async def test_connector_publishes_into_redis(redis_server):
    sim = Simulator({"binance": ["BTCUSDT"]}, seed=5,
                    rates=Rates(updates_per_sec=100.0, trades_per_sec=5.0, levels=50, max_levels=100))
    await sim.start()
    key = "test:inproc:binance"
    pub = RedisStreamQueue(redis_server.url, key)
    sub = RedisStreamQueue(redis_server.url, key, start="oldest")
    cfg = ConnectorConfig(exchange="binance", symbols=["BTC/USDT"],
                          endpoints=Endpoints(ws=sim.urls.binance.ws, rest=sim.urls.binance.rest),
                          streams=Streams(depth=DepthStream(levels=1000), trades=True))
    conn = create_connector(cfg, pub)
    task = asyncio.create_task(conn.run())
    client = BaseClient()
    seen_up = False
    try:
        deadline = time.monotonic() + 30
        while not (seen_up and (b := client.books.get(("binance", "BTC/USDT"))) is not None
                   and b.synced and b.update_id > 0):  # fmt: skip
            assert time.monotonic() < deadline, "no synced book from the stream"
            try:
                e = await asyncio.wait_for(sub.aget(), 1.0)
            except (TimeoutError, QueueEmpty):
                continue
            client.dispatch(e)
            seen_up |= isinstance(e, ConnectorStatus) and e.state == ConnectorState.UP
        assert pub.client.xlen(key) >= 2  # one entry per event: a status, a snapshot, ...
    finally:
        conn.stop()
        await asyncio.wait_for(task, 10)
        await sub.aclose()
        pub.close()
        await sim.stop()
