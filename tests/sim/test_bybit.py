"""Bybit v5: REST envelopes and errors, subscribe/ping replies, snapshot + delta reproducing the
true top-N, level-1 rules, u=1 after a restart, idle close."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from sim_helpers import apply_levels, recv_json, recv_until

from ttxt_mp.sim import Simulator


async def get(http: aiohttp.ClientSession, sim: Simulator, path: str) -> dict:
    assert sim.urls and sim.urls.bybit
    async with http.get(sim.urls.bybit.rest + path) as r:
        assert r.status == 200  # errors are carried by retCode
        return await r.json()


async def ws(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    assert sim.urls and sim.urls.bybit
    return await http.ws_connect(sim.urls.bybit.ws + "/v5/public/spot")


async def test_rest_shapes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    await asyncio.sleep(0.4)
    r = await get(http, sim, "/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=50")
    assert r["retCode"] == 0 and r["retMsg"] == "OK" and r["retExtInfo"] == {}
    ob = r["result"]
    assert set(ob) == {"s", "a", "b", "ts", "u", "seq", "cts"} and len(ob["b"]) == 50
    assert float(ob["b"][0][0]) < float(ob["a"][0][0])
    assert len((await get(http, sim, "/v5/market/orderbook?category=spot&symbol=BTCUSDT"))["result"]["b"]) == 1
    t = (await get(http, sim, "/v5/market/recent-trade?category=spot&symbol=BTCUSDT"))["result"]
    assert t["category"] == "spot" and 1 <= len(t["list"]) <= 60
    assert {"execId", "symbol", "price", "size", "side", "time", "isBlockTrade"} <= set(t["list"][0])
    k = (await get(http, sim, "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1"))["result"]
    assert k["symbol"] == "BTCUSDT" and len(k["list"][0]) == 7 and all(isinstance(x, str) for x in k["list"][0])
    i = (await get(http, sim, "/v5/market/instruments-info?category=spot&symbol=XRPUSDT"))["result"]
    inst = i["list"][0]
    assert inst["priceFilter"]["tickSize"] == "0.0001" and inst["lotSizeFilter"]["basePrecision"] == "0.1"
    tm = (await get(http, sim, "/v5/market/time"))["result"]
    assert tm["timeNano"].startswith(tm["timeSecond"])


async def test_rest_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    for path in ("/v5/market/orderbook?category=spot&symbol=NOPEUSDT",
                 "/v5/market/orderbook?symbol=BTCUSDT",
                 "/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=500",
                 "/v5/market/kline?symbol=BTCUSDT&interval=1",  # category defaults to linear
                 "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=2"):
        r = await get(http, sim, path)
        assert r["retCode"] == 10001 and r["retMsg"], path


async def test_subscribe_ping_and_failure_replies(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["publicTrade.BTCUSDT"], "req_id": "r1"}))
    ack = await recv_json(w)
    assert ack["success"] is True and ack["op"] == "subscribe" and ack["req_id"] == "r1" and ack["conn_id"]
    tr = await recv_until(w, lambda m: m.get("topic") == "publicTrade.BTCUSDT")
    assert tr["type"] == "snapshot" and {"T", "s", "S", "v", "p", "i", "BT"} <= set(tr["data"][0])
    await w.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.NOPEUSDT"]}))
    bad = await recv_until(w, lambda m: "success" in m)
    assert bad["success"] is False and "NOPEUSDT" in bad["ret_msg"]
    await w.send_str(json.dumps({"req_id": "p1", "op": "ping"}))
    pong = await recv_until(w, lambda m: m.get("op") == "ping")
    assert pong["success"] is True and pong["ret_msg"] == "pong" and pong["conn_id"] == ack["conn_id"]
    await w.close()


async def test_snapshot_and_deltas_reproduce_true_top_n(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}))
    await recv_json(w)
    snap = await recv_json(w)
    assert snap["type"] == "snapshot" and snap["topic"] == "orderbook.50.BTCUSDT"
    assert {"s", "b", "a", "u", "seq"} <= set(snap["data"]) and "cts" in snap
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    apply_levels(bids, snap["data"]["b"])
    apply_levels(asks, snap["data"]["a"])
    u = snap["data"]["u"]
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.0
    deltas = 0
    while loop.time() < end:
        m = await recv_json(w)
        assert m["type"] == "delta" and m["data"]["u"] == u + 1
        u = m["data"]["u"]
        apply_levels(bids, m["data"]["b"])
        apply_levels(asks, m["data"]["a"])
        deltas += 1
    sim.pause()
    truth = sim.truth("bybit", "BTCUSDT", depth=50)
    try:
        while True:  # drain until the topic has published the paused book
            m = await recv_json(w, 0.3)
            assert m["data"]["u"] == u + 1
            u = m["data"]["u"]
            apply_levels(bids, m["data"]["b"])
            apply_levels(asks, m["data"]["a"])
    except TimeoutError:
        pass
    await w.close()
    assert deltas > 5
    tb, ta = truth.as_floats()
    assert len(bids) == len(asks) == 50
    assert bids == dict(tb) and asks == dict(ta)
    assert truth.topics["orderbook.50.BTCUSDT"] == u


async def test_level1_snapshots_resend_and_restart(sim: Simulator, http: aiohttp.ClientSession) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.1.XRPUSDT", "orderbook.50.XRPUSDT"]}))
    await recv_json(w)
    sim.pause()
    await asyncio.sleep(0.3)
    l1 = await recv_until(w, lambda m: m.get("topic") == "orderbook.1.XRPUSDT")
    while True:  # level 1 pushes snapshots only; unchanged for 0.3 s -> same u again
        again = await recv_until(w, lambda m: m.get("topic") == "orderbook.1.XRPUSDT")
        assert again["type"] == "snapshot"
        if again["data"]["u"] == l1["data"]["u"]:
            break
        l1 = again
    assert again["data"]["b"] == l1["data"]["b"]
    sim.restart("bybit", "XRPUSDT")
    seen = {}
    while len(seen) < 2:
        m = await recv_until(w, lambda m: m.get("data", {}).get("u") == 1)
        seen[m["topic"]] = m
    assert all(m["type"] == "snapshot" for m in seen.values())
    sim.resume()
    d = await recv_until(w, lambda m: m.get("topic") == "orderbook.50.XRPUSDT")
    assert d["type"] == "delta" and d["data"]["u"] == 2
    await w.close()


async def test_idle_connection_is_closed_and_ping_keeps_it(sim: Simulator, http: aiohttp.ClientSession) -> None:
    idle = await ws(http, sim)
    alive = await ws(http, sim)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.4
    while loop.time() < end:
        await alive.send_str('{"op":"ping"}')
        await recv_json(alive)
        await asyncio.sleep(0.2)
    msg = await asyncio.wait_for(idle.receive(), 1)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert not alive.closed
    await alive.close()
