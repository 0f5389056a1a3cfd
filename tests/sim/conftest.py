"""Shared fixtures: a simulator on 127.0.0.1 port 0 with short protocol timings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ttxt_mp.sim import Rates, Simulator, VenueTimings

FAST = VenueTimings(
    binance_ping_interval=0.3,
    binance_pong_timeout=0.8,
    binance_max_incoming_per_sec=0,  # tested on its own simulator
    bybit_idle_timeout=0.6,
    bybit_l1_resend=0.3,
)
RATES = Rates(updates_per_sec=400.0, trades_per_sec=20.0, levels=300, max_levels=2000)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT", "XRPUSDT"]},
                         seed=7, rates=RATES, timings=FAST) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
