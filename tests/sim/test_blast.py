"""Blast mode: a real simulator on 127.0.0.1 pushes pre-encoded trade frames in bulk; clients
must get well-formed documented frames with strictly increasing trade ids, books still sync."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ttxt_mp.sim import Simulator
from ttxt_mp.sim.blast import ID_BASE, TEMPLATE_FRAMES, Blaster, FrameTemplate, ws_text_frame
from ttxt_mp.sim.specs import Rates, VenueTimings

N = 3 * TEMPLATE_FRAMES + 100  # crosses template repeats
RATE = 40_000.0


@pytest.fixture
async def blast_sim() -> AsyncIterator[Simulator]:
    async with Simulator({"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT"]}, seed=5,
                         rates=Rates(updates_per_sec=200.0, trades_per_sec=50.0, levels=200,
                                     max_levels=1000),
                         timings=VenueTimings(binance_max_incoming_per_sec=0), blast_trades=RATE) as s:
        yield s


async def _collect(ws: aiohttp.ClientWebSocketResponse, n: int, pick, timeout: float = 20.0):
    """The first n frames `pick` recognises as trades (others, e.g. acks, depth, are kept)."""
    trades, other = [], []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(trades) < n:
        msg = await asyncio.wait_for(ws.receive(), max(0.01, end - loop.time()))
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type}"
        m = json.loads(msg.data)  # every frame must be well-formed JSON
        t = pick(m)
        (trades if t is not None else other).append(t if t is not None else m)
    return trades, other


def _strictly_increasing(ids: list[int]) -> None:
    bad = [(a, b) for a, b in zip(ids, ids[1:], strict=False) if b <= a]
    assert not bad, f"trade ids not strictly increasing, first: {bad[:3]}"


def _binance_trade(m: dict) -> dict | None:
    if m.get("stream") == "btcusdt@trade":
        return m["data"]
    return m if m.get("e") == "trade" else None


async def test_binance_combined_blast(blast_sim: Simulator,
                                      http: aiohttp.ClientSession) -> None:
    url = f"{blast_sim.urls.binance.ws}/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
    async with http.ws_connect(url, max_msg_size=0) as ws:
        trades, other = await _collect(ws, N, _binance_trade)
    for t in trades:
        assert t["e"] == "trade" and t["s"] == "BTCUSDT" and t["M"] is True
        assert isinstance(t["m"], bool) and float(t["p"]) > 0 and float(t["q"]) > 0
        assert t["T"] == t["E"] and t["T"] > 1_600_000_000_000
    ids = [t["t"] for t in trades]
    assert ids[0] == ID_BASE
    _strictly_increasing(ids)
    assert any(o.get("stream") == "btcusdt@depth@100ms" for o in other), "depth stream stopped"


async def test_binance_raw_blast(blast_sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{blast_sim.urls.binance.ws}/ws/ethusdt@trade") as ws:
        trades, _ = await _collect(ws, N, lambda m: m if m.get("e") == "trade" else None)
    assert all(t["s"] == "ETHUSDT" and "stream" not in t for t in trades)
    _strictly_increasing([t["t"] for t in trades])


async def test_bybit_blast(blast_sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{blast_sim.urls.bybit.ws}/v5/public/spot") as ws:
        await ws.send_str(json.dumps({"op": "subscribe", "req_id": "1",
                                      "args": ["publicTrade.BTCUSDT", "orderbook.50.BTCUSDT"]}))

        def pick(m: dict) -> list | None:
            return m["data"] if m.get("topic") == "publicTrade.BTCUSDT" else None

        pushes, other = await _collect(ws, N, pick)
    trades = [t for p in pushes for t in p]
    assert len(trades) == N
    for t in trades:
        assert t["s"] == "BTCUSDT" and t["S"] in ("Buy", "Sell") and t["BT"] is False
        assert float(t["p"]) > 0 and float(t["v"]) > 0 and isinstance(t["i"], str)
    _strictly_increasing([int(t["i"]) for t in trades])
    assert other[0]["success"] is True
    assert any(o.get("topic") == "orderbook.50.BTCUSDT" and o["type"] == "snapshot"
               for o in other), "book snapshot missing"


def test_frame_headers() -> None:
    assert ws_text_frame(b"x" * 5)[:2] == b"\x81\x05"
    big = ws_text_frame(b"x" * 300)
    assert big[:4] == b"\x81\x7e\x01\x2c" and len(big) == 304


def test_template_rejects_bad_batches() -> None:
    t = FrameTemplate([b'{"t":' + b"#" * 12 + b',"E":' + b"~" * 13 + b"}"] * 4)
    with pytest.raises(ValueError, match="batch size"):
        t.batch(ID_BASE, 5, 1_700_000_000_000)
    with pytest.raises(ValueError, match="trade ids"):
        t.batch(1, 2, 1_700_000_000_000)
    out = t.batch(ID_BASE + 7, 2, 1_700_000_000_123)
    assert out.count(b'"t":100000000007,"E":1700000000123') == 1
    assert out.count(b'"t":100000000008,"E":1700000000123') == 1


def test_blast_rate_must_be_positive() -> None:
    sim = Simulator({"bybit": ["BTCUSDT"]})
    with pytest.raises(ValueError, match="blast rate"):
        Blaster(sim.venues["bybit"], 0.0)
    with pytest.raises(ValueError, match="blast_trades"):
        Simulator({"bybit": ["BTCUSDT"]}, blast_trades=-1.0)
