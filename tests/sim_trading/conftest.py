"""Shared fixtures: a paused simulator (the synthetic book only moves when a test steps it)
with two funded API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from st_helpers import make_sim

from ttxt_mp.sim import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with make_sim() as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
