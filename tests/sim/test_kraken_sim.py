"""Kraken simulator adapter: AssetPairs, the v2 status/pong/ack/error replies, book snapshot
and updates whose documented checksum holds and whose truncated view is the true top-N,
heartbeats while quiet, and the corrupt-checksum knob."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sim_helpers import recv_json, recv_until

from ttxt_mp.sim import Rates, Simulator, VenueTimings

TIMINGS = VenueTimings(kraken_heartbeat_s=0.2, kraken_kline_push=0.2)


@pytest.fixture
async def ksim() -> AsyncIterator[Simulator]:
    async with Simulator({"kraken": ["BTCUSDT", "ETHUSDT"]}, seed=5, timings=TIMINGS,
                         rates=Rates(updates_per_sec=400.0, trades_per_sec=20.0, levels=300,
                                     max_levels=2000)) as s:  # fmt: skip
        yield s


async def connect(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    assert sim.urls and sim.urls.kraken
    ws = await http.ws_connect(sim.urls.kraken.ws + "/v2")
    status = await recv_json(ws)
    assert status["channel"] == "status" and status["data"][0]["system"] == "online"
    return ws


def strip(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def crc(bids: dict[str, str], asks: dict[str, str]) -> int:
    a = sorted(asks.items(), key=lambda x: float(x[0]))[:10]
    b = sorted(bids.items(), key=lambda x: -float(x[0]))[:10]
    return zlib.crc32("".join(strip(p) + strip(q) for p, q in a + b).encode())


def apply(side: dict[str, str], levels: list[dict], depth: int, bids: bool) -> None:
    for lv in levels:
        if float(lv["qty"]) == 0:
            side.pop(lv["price"], None)
        else:
            side[lv["price"]] = lv["qty"]
    for p in sorted(side, key=lambda x: -float(x) if bids else float(x))[depth:]:
        del side[p]  # "truncate your book to the subscribed depth"


async def test_asset_pairs(ksim: Simulator, http: aiohttp.ClientSession) -> None:
    assert ksim.urls and ksim.urls.kraken
    async with http.get(ksim.urls.kraken.rest + "/0/public/AssetPairs") as r:
        body = await r.json()
    assert body["error"] == [] and set(body["result"]) == {"XBTUSDT", "ETHUSDT"}
    btc = body["result"]["XBTUSDT"]
    assert (btc["wsname"], btc["base"], btc["pair_decimals"], btc["lot_decimals"]) == (
        "XBT/USDT", "XBT", 2, 5)
    async with http.get(ksim.urls.kraken.rest + "/0/public/AssetPairs?pair=NOPE") as r:
        assert (await r.json())["error"] == ["EQuery:Unknown asset pair"]


async def test_replies(ksim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, ksim)
    await ws.send_json({"method": "ping", "req_id": 101})
    pong = await recv_json(ws)
    assert pong["method"] == "pong" and pong["req_id"] == 101 and "time_out" in pong
    await ws.send_json({"method": "subscribe", "params": {"channel": "trade",
                        "symbol": ["BTC/USDT", "XBT/USD"]}, "req_id": 2})  # fmt: skip
    ok = await recv_json(ws)
    bad = await recv_json(ws)
    assert ok["success"] and ok["result"] == {"channel": "trade", "symbol": "BTC/USDT"}
    assert bad == {**bad, "success": False, "symbol": "XBT/USD", "req_id": 2,
                   "error": "Currency pair not supported XBT/USD"}  # fmt: skip
    await ws.send_json({"method": "subscribe", "params": {"channel": "trade",
                        "symbol": ["BTC/USDT"]}})  # fmt: skip
    again = await recv_until(ws, lambda m: m.get("method") == "subscribe")
    assert again["error"] == "Already subscribed" and "req_id" not in again
    trade = await recv_until(ws, lambda m: m.get("channel") == "trade")
    t = trade["data"][0]
    assert t["symbol"] == "BTC/USDT" and t["side"] in ("buy", "sell") and t["trade_id"] > 0
    await ws.send_str("not json")
    err = await recv_until(ws, lambda m: "error" in m)
    assert err["error"] == "Malformed request" and err["success"] is False
    await ws.close()


async def test_book_checksums_and_truncation(ksim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, ksim)
    depth = 10
    await ws.send_json({"method": "subscribe", "params": {"channel": "book", "depth": depth,
                        "symbol": ["ETH/USDT"]}, "req_id": 1})  # fmt: skip
    ack = await recv_json(ws)
    assert ack["result"] == {"channel": "book", "symbol": "ETH/USDT", "depth": depth}
    raw = await ws.receive_str(timeout=3)
    snap = json.loads(raw, parse_float=str, parse_int=str)  # the wire's digits
    assert snap["type"] == "snapshot"
    d = snap["data"][0]
    bids = {lv["price"]: lv["qty"] for lv in d["bids"]}
    asks = {lv["price"]: lv["qty"] for lv in d["asks"]}
    assert len(bids) == len(asks) == depth and int(d["checksum"]) == crc(bids, asks)
    updates = 0
    while updates < 40:
        m = json.loads(await ws.receive_str(timeout=3), parse_float=str, parse_int=str)
        if m.get("channel") != "book":
            continue
        d = m["data"][0]
        apply(bids, d["bids"], depth, True)
        apply(asks, d["asks"], depth, False)
        assert int(d["checksum"]) == crc(bids, asks), f"update {updates}"
        assert d["timestamp"].endswith("Z")
        updates += 1
    ksim.pause()
    tb = ksim.truth("kraken", "ETHUSDT", depth)
    while True:  # what is in flight, then the view equals the truth
        if dict(tb.bids) == bids and dict(tb.asks) == asks:
            break
        m = json.loads(await ws.receive_str(timeout=3), parse_float=str, parse_int=str)
        if m.get("channel") == "book":
            apply(bids, m["data"][0]["bids"], depth, True)
            apply(asks, m["data"][0]["asks"], depth, False)
    # quiet: heartbeats only
    hb = await recv_until(ws, lambda m: m.get("channel") == "heartbeat", 3.0)
    assert hb == {"channel": "heartbeat"}
    # the corrupt-checksum knob: the next update's checksum is wrong
    ksim.venue("kraken").corrupt_checksum("ETHUSDT")  # type: ignore[attr-defined]
    ksim.resume()
    while True:
        m = json.loads(await ws.receive_str(timeout=3), parse_float=str, parse_int=str)
        if m.get("channel") == "book":
            break
    apply(bids, m["data"][0]["bids"], depth, True)
    apply(asks, m["data"][0]["asks"], depth, False)
    assert int(m["data"][0]["checksum"]) != crc(bids, asks)
    await ws.send_json({"method": "unsubscribe", "params": {"channel": "book", "depth": depth,
                        "symbol": ["ETH/USDT"]}, "req_id": 9})  # fmt: skip
    un = await recv_until(ws, lambda m: m.get("method") == "unsubscribe")
    assert un["success"] and un["req_id"] == 9
    await ws.close()


async def test_ticker_and_ohlc(ksim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, ksim)
    await ws.send_json({"method": "subscribe", "params": {"channel": "ticker", "event_trigger":
                        "bbo", "symbol": ["BTC/USDT"]}})  # fmt: skip
    t = await recv_until(ws, lambda m: m.get("channel") == "ticker")
    assert t["type"] == "snapshot" and 0 < t["data"][0]["bid"] < t["data"][0]["ask"]
    await ws.send_json({"method": "subscribe", "params": {"channel": "ohlc", "interval": 5,
                        "symbol": ["BTC/USDT"]}})  # fmt: skip
    k = await recv_until(ws, lambda m: m.get("channel") == "ohlc")
    c = k["data"][0]
    assert c["interval"] == 5 and c["interval_begin"].endswith("Z") and c["low"] <= c["high"]
    await ws.send_json({"method": "subscribe", "params": {"channel": "ohlc", "interval": 2,
                        "symbol": ["BTC/USDT"]}})  # fmt: skip
    bad = await recv_until(ws, lambda m: m.get("method") == "subscribe" and "error" in m)
    assert bad["error"] == "Invalid interval 2"
    await ws.close()
