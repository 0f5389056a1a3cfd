"""A simulator on 127.0.0.1:0 with short protocol timings, and connector runners that are
always stopped (and awaited) at the end of a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.registry import create_connector
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.sim import Rates, Simulator, VenueTimings

from .helpers import Consumer

TIMINGS = VenueTimings(
    binance_ping_interval=0.5,  # the client must answer pings (aiohttp does)
    binance_pong_timeout=1.5,
    binance_max_incoming_per_sec=5,  # documented limit: our probes must stay under it
    binance_linear_ping_interval=0.5,
    binance_linear_pong_timeout=1.5,
    binance_linear_max_incoming_per_sec=10,  # the documented USDⓈ-M limit
    binance_linear_liquidations_per_min=120.0,  # one push per second per symbol
    bybit_idle_timeout=2.5,
    bybit_idle_data_keepalive=False,  # only our {"op":"ping"} keeps a Bybit socket open
    bybit_linear_idle_timeout=2.5,
    bybit_linear_idle_data_keepalive=False,
    bybit_linear_liquidations_per_sec=4.0,  # a few per test
    bybit_linear_liquidation_push=0.2,
    kraken_kline_push=0.2,
    kraken_heartbeat_s=0.3,
    coinbase_heartbeat_interval=0.2,  # heartbeats prove a quiet socket alive (hb timeouts < 1 s)
    okx_idle_timeout=2.5,
    okx_linear_idle_timeout=2.5,
    okx_linear_funding_push=0.3,  # documented 30-90 s: a few per test
    okx_linear_oi_push=0.3,
    okx_linear_liquidations_per_sec=4.0,
    okx_linear_liquidation_push=0.2,
)
RATES = Rates(updates_per_sec=150.0, trades_per_sec=10.0, levels=150, max_levels=400)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(
        {"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT", "XRPUSDT"],
         "bybit_linear": ["BTCUSDT", "XRPUSDT"], "binance_linear": ["BTCUSDT", "ETHUSDT"],
         "kraken": ["BTCUSDT", "ETHUSDT"], "coinbase": ["BTCUSDT", "XRPUSDT"],
         "okx": ["BTCUSDT", "ETHUSDT"], "okx_linear": ["BTCUSDT", "ETHUSDT"]},
        seed=11,
        rates=RATES,
        timings=TIMINGS,
    )
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


class Running:
    def __init__(self, connector: ConnectorBase, queue: AsyncioQueue, task: asyncio.Task) -> None:
        self.connector = connector
        self.queue = queue
        self.task = task
        self.consumer = Consumer(queue, connector.exchange)

    async def stop(self, timeout: float = 5.0) -> None:
        self.connector.stop()
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        self.consumer.drain()


@pytest.fixture
async def start_connector() -> AsyncIterator[Any]:
    """start_connector(cfg, **kwargs) -> Running; stopped after the test whatever happens."""
    running: list[Running] = []

    async def start(cfg: ConnectorConfig, configure: Any = None, **kwargs: Any) -> Running:
        q = AsyncioQueue()
        c = create_connector(cfg, q, **kwargs)
        if configure is not None:
            configure(c)
        r = Running(c, q, asyncio.create_task(c.run()))
        running.append(r)
        return r

    try:
        yield start
    finally:
        for r in running:
            r.connector.stop()
        for r in running:
            try:
                await asyncio.wait_for(r.task, 5.0)
            except BaseException:  # the test reports its own failure
                pass
