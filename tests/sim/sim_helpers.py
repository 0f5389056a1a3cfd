"""Helpers shared by the simulator tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
    return json.loads(msg.data)


async def recv_until(ws: aiohttp.ClientWebSocketResponse, pred: Callable[[Any], bool],
                     timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        left = end - loop.time()
        assert left > 0, "timed out waiting for a matching frame"
        m = await recv_json(ws, left)
        if pred(m):
            return m


def apply_levels(side: dict[float, float], levels: list[list[str]]) -> None:
    for p, q in levels:
        if float(q) == 0.0:
            side.pop(float(p), None)
        else:
            side[float(p)] = float(q)
