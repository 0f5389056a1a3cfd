"""Binance Spot: REST and WebSocket shapes per the docs, the local order book procedure against
the true book, ping/pong, and documented errors."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
from sim_helpers import apply_levels, recv_json, recv_until

from ttxt_mp.sim import Simulator, VenueTimings


async def get(http: aiohttp.ClientSession, sim: Simulator, path: str) -> tuple[int, dict, object]:
    assert sim.urls and sim.urls.binance
    async with http.get(sim.urls.binance.rest + path) as r:
        return r.status, dict(r.headers), await r.json()


async def test_rest_depth_shape_limits_and_weight(sim: Simulator, http: aiohttp.ClientSession) -> None:
    st, h, body = await get(http, sim, "/api/v3/depth?symbol=BTCUSDT")
    assert st == 200 and set(body) == {"lastUpdateId", "bids", "asks"}
    assert len(body["bids"]) == 100 and len(body["asks"]) == 100  # default limit 100
    p, q = body["bids"][0]
    assert isinstance(p, str) and isinstance(q, str) and len(p.split(".")[1]) == 8
    assert float(body["bids"][0][0]) > float(body["bids"][1][0])
    assert float(body["asks"][0][0]) < float(body["asks"][1][0])
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    assert h["X-MBX-USED-WEIGHT-1M"] == "5"
    st, h, body = await get(http, sim, "/api/v3/depth?symbol=BTCUSDT&limit=6000")
    assert st == 200 and len(body["bids"]) <= 5000
    assert int(h["X-MBX-USED-WEIGHT-1M"]) == 5 + 250


async def test_rest_errors_are_documented(sim: Simulator, http: aiohttp.ClientSession) -> None:
    st, _, body = await get(http, sim, "/api/v3/depth?symbol=NOPEUSDT")
    assert (st, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    st, _, body = await get(http, sim, "/api/v3/depth")
    assert st == 400 and body["code"] == -1102 and "'symbol'" in body["msg"]
    st, _, body = await get(http, sim, "/api/v3/depth?symbol=BTCUSDT&limit=abc")
    assert st == 400 and body["code"] == -1100 and "'limit'" in body["msg"]
    st, _, body = await get(http, sim, "/api/v3/klines?symbol=BTCUSDT&interval=7m")
    assert (st, body) == (400, {"code": -1120, "msg": "Invalid interval."})
    st, _, body = await get(http, sim, "/api/v3/exchangeInfo?symbol=NOPE")
    assert st == 400 and body["code"] == -1121


async def test_rate_limit_429_with_retry_after(http: aiohttp.ClientSession) -> None:
    async with Simulator({"binance": ["BTCUSDT"]}, timings=VenueTimings(binance_weight_limit=12),
                         paused=True) as sim:
        codes = []
        for _ in range(4):
            st, h, body = await get(http, sim, "/api/v3/depth?symbol=BTCUSDT")
            codes.append(st)
        assert codes == [200, 200, 429, 429]
        assert 1 <= int(h["Retry-After"]) <= 60 and body["code"] == -1003
        assert int(h["X-MBX-USED-WEIGHT-1M"]) > 12


async def test_rest_trades_klines_exchange_info_ping_time(sim: Simulator, http: aiohttp.ClientSession) -> None:
    await asyncio.sleep(0.5)
    st, _, trades = await get(http, sim, "/api/v3/trades?symbol=BTCUSDT&limit=5")
    assert st == 200 and 1 <= len(trades) <= 5
    assert set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)
    st, _, kl = await get(http, sim, "/api/v3/klines?symbol=BTCUSDT&interval=1s")
    assert st == 200 and kl and len(kl[0]) == 12
    row = kl[-1]
    assert isinstance(row[0], int) and row[6] == row[0] + 999 and float(row[2]) >= float(row[3])
    assert sum(r[8] for r in kl) >= 1
    st, _, info = await get(http, sim, "/api/v3/exchangeInfo?symbol=BTCUSDT")
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    st, _, info = await get(http, sim, '/api/v3/exchangeInfo?symbols=["BTCUSDT","ETHUSDT"]')
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert (await get(http, sim, "/api/v3/ping"))[2] == {}
    assert set((await get(http, sim, "/api/v3/time"))[2]) == {"serverTime"}


async def test_diff_depth_continuity_and_local_book_equals_truth(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """"How to manage a local order book correctly" (current text) reproduces the true book."""
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/ws/btcusdt@depth@100ms")
    buffered = [await recv_json(ws)]  # step 2: buffer, note the first U
    first_U = buffered[0]["U"]
    while True:  # steps 3-4: snapshot until lastUpdateId >= first U
        _, _, snap = await get(http, sim, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        if snap["lastUpdateId"] >= first_U:
            break
    book_id = snap["lastUpdateId"]
    bids = {float(p): float(q) for p, q in snap["bids"]}
    asks = {float(p): float(q) for p, q in snap["asks"]}
    prev_u = None
    applied = 0

    def apply(ev: dict) -> None:
        nonlocal book_id, prev_u, applied
        assert ev["e"] == "depthUpdate" and ev["s"] == "BTCUSDT"
        if prev_u is not None:
            assert ev["U"] == prev_u + 1, "diffs must be contiguous"
        prev_u = ev["u"]
        if ev["u"] <= book_id:
            return
        assert ev["U"] <= book_id + 1, "missed events"
        apply_levels(bids, ev["b"])
        apply_levels(asks, ev["a"])
        book_id = ev["u"]
        applied += 1

    loop = asyncio.get_running_loop()
    end = loop.time() + 1.5
    while loop.time() < end:
        buffered.append(await recv_json(ws))
    for ev in buffered:
        apply(ev)
    sim.pause()
    truth = sim.truth("binance", "BTCUSDT")
    while book_id < truth.update_id:
        apply(await recv_json(ws))
    await ws.close()
    assert applied > 3
    assert book_id == truth.update_id
    tb, ta = truth.as_floats()
    assert bids == dict(tb) and asks == dict(ta)


async def test_combined_stream_and_live_subscribe(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/stream?streams=btcusdt@trade")
    m = await recv_json(ws)
    assert m["stream"] == "btcusdt@trade"
    t = m["data"]
    assert {"e", "E", "s", "t", "p", "q", "T", "m", "M"} <= set(t) and t["e"] == "trade"
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@depth", "btcusdt@kline_1s"], "id": 1}))
    assert await recv_until(ws, lambda x: "id" in x) == {"result": None, "id": 1}
    await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
    r = await recv_until(ws, lambda x: x.get("id") == 3)
    assert set(r["result"]) == {"btcusdt@trade", "ethusdt@depth", "btcusdt@kline_1s"}
    d = await recv_until(ws, lambda x: x.get("stream") == "ethusdt@depth", timeout=3)
    assert set(d["data"]) == {"e", "E", "s", "U", "u", "b", "a"} and d["data"]["s"] == "ETHUSDT"
    k = await recv_until(ws, lambda x: x.get("stream") == "btcusdt@kline_1s", timeout=3)
    assert k["data"]["e"] == "kline" and k["data"]["k"]["i"] == "1s"
    assert {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"} == set(k["data"]["k"])
    await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "abc"}))
    assert await recv_until(ws, lambda x: "id" in x) == {"result": None, "id": "abc"}
    await ws.send_str(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 9}))
    assert await recv_until(ws, lambda x: "id" in x) == {"result": True, "id": 9}
    await ws.close()


async def test_raw_ws_partial_depth_and_book_ticker(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/ws")
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth5@100ms", "btcusdt@bookTicker"], "id": 2}))
    assert await recv_json(ws) == {"result": None, "id": 2}
    p = await recv_until(ws, lambda x: "lastUpdateId" in x)
    assert len(p["bids"]) == 5 and len(p["asks"]) == 5
    b = await recv_until(ws, lambda x: "B" in x)
    assert set(b) == {"u", "s", "b", "B", "a", "A"}
    await ws.close()


AGG_KEYS = {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}  # "Aggregate Trade Streams"


async def test_agg_trades_cover_every_trade_once(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Both streams opened together: each aggTrade names the trades f..l it sums, at its
    price and side; ids follow on from one aggregate to the next."""
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/stream?streams=btcusdt@trade/btcusdt@aggTrade")
    trades: dict[int, dict] = {}
    aggs: list[dict] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while len(aggs) < 8:
        assert loop.time() < end, f"only {len(aggs)} aggTrades"
        m = await recv_json(ws)
        if m["stream"] == "btcusdt@trade":
            trades[m["data"]["t"]] = m["data"]
        else:
            aggs.append(m["data"])
    sim.pause()
    try:
        while True:  # the rest of the last taker order's trades
            m = await recv_json(ws, 0.3)
            trades.setdefault(m["data"].get("t"), m["data"])
    except TimeoutError:
        pass
    await ws.close()
    for prev, a in zip(aggs, aggs[1:], strict=False):
        assert a["a"] == prev["a"] + 1 and a["f"] == prev["l"] + 1
    for a in aggs:
        assert set(a) == AGG_KEYS and a["e"] == "aggTrade" and a["s"] == "BTCUSDT"
        parts = [trades[t] for t in range(a["f"], a["l"] + 1)]
        assert {(t["p"], t["m"], t["T"]) for t in parts} == {(a["p"], a["m"], a["T"])}
        assert sum(Decimal(t["q"]) for t in parts) == Decimal(a["q"])


def test_agg_trades_join_fills_at_one_price(sim: Simulator) -> None:
    """One taker order filling twice at one price (e.g. an order of ours resting at the
    level) is one aggregate; a fill at the next price starts the next one."""
    from ttxt_mp.sim.market import Trade

    venue = sim.venues["binance"]
    sent: list[dict] = []
    venue._publish = lambda f, raw, depth=False: sent.append(json.loads(raw))  # type: ignore[method-assign]
    batch = [Trade(501, 1000, 3, 1, True, 9), Trade(502, 1000, 4, 1, True, 9),
             Trade(503, 1001, 5, 1, True, 9)]
    venue._agg_trades(None, "BTCUSDT", batch)  # type: ignore[arg-type]
    venue._agg_trades(None, "BTCUSDT", batch[2:])  # type: ignore[arg-type]
    px, qx = venue.px["BTCUSDT"], venue.qx["BTCUSDT"]
    assert [(m["a"] - sent[0]["a"], m["f"], m["l"], m["p"], m["q"], m["m"]) for m in sent] == [
        (0, 501, 502, px.fmt(1000), qx.fmt(7), False), (1, 503, 503, px.fmt(1001), qx.fmt(5), False),
        (2, 503, 503, px.fmt(1001), qx.fmt(5), False)]


async def test_book_ticker_is_the_true_top_whenever_it_changes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """"Individual Symbol Book Ticker Streams": a push on any change of the best bid or ask
    (price or quantity); once the market stops, the last one is the book's top."""
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/ws/ethusdt@bookTicker")
    seen = [await recv_json(ws) for _ in range(20)]
    sim.pause()
    try:
        while True:
            seen.append(await recv_json(ws, 0.3))
    except TimeoutError:
        pass
    await ws.close()
    assert all(set(b) == {"u", "s", "b", "B", "a", "A"} and b["s"] == "ETHUSDT" for b in seen)
    assert all(b["u"] < c["u"] for b, c in zip(seen, seen[1:], strict=False))
    tops = [(b["b"], b["B"], b["a"], b["A"]) for b in seen]
    assert all(x != y for x, y in zip(tops, tops[1:], strict=False)), "a push without a change"
    truth = sim.truth("binance", "ETHUSDT")
    (bp, bq), (ap, aq) = truth.as_floats()[0][0], truth.as_floats()[1][0]
    last = seen[-1]
    assert (float(last["b"]), float(last["B"]), float(last["a"]), float(last["A"])) == (bp, bq, ap, aq)
    assert last["u"] <= truth.update_id


async def test_ws_control_errors_are_documented(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls and sim.urls.binance
    ws = await http.ws_connect(sim.urls.binance.ws + "/ws")
    cases = [
        ("{bad json", {"code": 3}),
        (json.dumps({"method": "SUBSCRIBEX", "params": [], "id": 1}), {"code": 2}),
        (json.dumps({"params": [], "id": 1}), {"code": 2}),
        (json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"]}), {"code": 2}),
        (json.dumps({"method": "SET_PROPERTY", "params": ["colour", True], "id": 4}), {"code": 0, "id": 4}),
        (json.dumps({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 5}), {"code": 1}),
        (json.dumps({"method": "SUBSCRIBE", "params": ["nopeusdt@trade"], "id": 6}), {"code": 2}),
    ]
    for text, expect in cases:
        await ws.send_str(text)
        reply = await recv_json(ws)
        assert expect.items() <= reply.items(), (text, reply)
        assert isinstance(reply["msg"], str) and reply["msg"]
    await ws.close()
    async with http.get(sim.urls.binance.ws.replace("ws://", "http://") + "/ws/nope@trade") as resp:
        assert resp.status == 400 and "nope@trade" in (await resp.json())["msg"]


async def test_server_pings_and_closes_without_pong(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.urls and sim.urls.binance
    url = sim.urls.binance.ws + "/ws"
    silent = await http.ws_connect(url, autoping=False)
    polite = await http.ws_connect(url)  # aiohttp answers pings automatically
    msg = await asyncio.wait_for(silent.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.PING and msg.data  # ping with a payload
    msg = await asyncio.wait_for(silent.receive(), 3)
    while msg.type == aiohttp.WSMsgType.PING:
        msg = await asyncio.wait_for(silent.receive(), 3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert not polite.closed, "a client that answers pings must stay connected"
    await polite.close()


async def test_too_many_incoming_messages_disconnects(http: aiohttp.ClientSession) -> None:
    async with Simulator({"binance": ["BTCUSDT"]}, paused=True) as sim:  # documented 5/s
        assert sim.urls and sim.urls.binance
        await _flood(http, sim.urls.binance.ws + "/ws")


async def _flood(http: aiohttp.ClientSession, url: str) -> None:
    ws = await http.ws_connect(url)
    for i in range(8):
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
    seen = 0
    while True:
        msg = await asyncio.wait_for(ws.receive(), 3)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        seen += 1
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and seen <= 5
