"""Binance USDⓈ-M futures in the simulator (venue ``binance_linear``): REST and WebSocket
payloads have the documented fields (the doc examples in tests/fixtures/binance_futures_docs.py),
the USDⓈ-M local order book procedure (pu chain) rebuilds the true book, mark price and
liquidation cadences, documented limits and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fixtures import binance_futures_docs as fut
from sim_helpers import apply_levels, recv_json, recv_until

from ttxt_mp.connectors.binance.instruments import binance_linear_instruments
from ttxt_mp.sim import Rates, Simulator, VenueTimings

V = "binance_linear"
TIMINGS = VenueTimings(binance_linear_ping_interval=0.3, binance_linear_pong_timeout=0.8,
                       binance_linear_liquidations_per_min=600.0,
                       binance_linear_funding_interval_h=1.0)  # fmt: skip
RATES = Rates(updates_per_sec=400.0, trades_per_sec=20.0, levels=300, max_levels=800)


def doc(d) -> dict:
    return json.loads(d.frame)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({V: ["BTCUSDT", "ETHUSDT"]}, seed=5, rates=RATES, timings=TIMINGS) as s:
        yield s


async def get(http: aiohttp.ClientSession, sim: Simulator, path: str) -> tuple[int, dict, object]:
    assert sim.urls is not None
    async with http.get(sim.urls.venues[V].rest + path) as r:
        return r.status, dict(r.headers), await r.json()


def ws_url(sim: Simulator, path: str) -> str:
    assert sim.urls is not None
    return sim.urls.venues[V].ws + path


async def test_rest_shapes_are_the_documented_ones(sim: Simulator, http: aiohttp.ClientSession) -> None:
    st, h, info = await get(http, sim, "/fapi/v1/exchangeInfo")
    assert st == 200 and h["X-MBX-USED-WEIGHT-1M"] == "1"  # "Request Weight 1"
    documented = doc(fut.EXCHANGE_INFO)
    assert set(info) == set(documented)
    assert set(info["symbols"][0]) == set(documented["symbols"][0])
    assert {f["filterType"] for f in info["symbols"][0]["filters"]} == {
        f["filterType"] for f in documented["symbols"][0]["filters"]}
    insts = {i.symbol: i for i in binance_linear_instruments(json.dumps(info))}
    assert set(insts) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert str(insts["BTC/USDT:USDT"].tick_size) == "0.01"
    st, _, snap = await get(http, sim, "/fapi/v1/depth?symbol=BTCUSDT")
    assert st == 200 and set(snap) == set(doc(fut.DEPTH_SNAPSHOT))
    assert 200 < len(snap["bids"]) <= 500  # the default limit (500) covers the whole book
    st, _, oi = await get(http, sim, "/fapi/v1/openInterest?symbol=ETHUSDT")
    assert st == 200 and set(oi) == set(doc(fut.OPEN_INTEREST)) and oi["symbol"] == "ETHUSDT"
    assert float(oi["openInterest"]) > 0 and isinstance(oi["time"], int)
    assert set((await get(http, sim, "/fapi/v1/time"))[2]) == set(doc(fut.SERVER_TIME))


async def test_depth_weights_limits_and_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    used = 0
    for limit, weight in ((5, 2), (50, 2), (100, 5), (500, 10), (1000, 20)):
        st, h, body = await get(http, sim, f"/fapi/v1/depth?symbol=BTCUSDT&limit={limit}")
        used += weight
        n = len(body["asks"])
        assert st == 200 and (n == limit if limit <= 100 else 200 < n <= limit), (limit, n)
        assert int(h["X-MBX-USED-WEIGHT-1M"]) == used, (limit, h)
    st, _, body = await get(http, sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=7")
    assert (st, body["code"]) == (400, -1130)  # "Valid limits:[5, 10, 20, 50, 100, 500, 1000]"
    st, _, body = await get(http, sim, "/fapi/v1/openInterest?symbol=NOPEUSDT")
    assert (st, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    st, _, body = await get(http, sim, "/fapi/v1/openInterest")
    assert st == 400 and body["code"] == -1102
    assert sim.urls is not None
    async with http.get(sim.urls.venues[V].rest + "/api/v3/depth?symbol=BTCUSDT") as r:
        assert r.status == 404  # no Spot endpoints on the futures host


async def test_every_stream_payload_has_the_documented_fields(sim: Simulator, http: aiohttp.ClientSession) -> None:
    names = ["btcusdt@depth@100ms", "btcusdt@aggTrade", "btcusdt@kline_1m", "btcusdt@bookTicker",
             "btcusdt@markPrice@1s", "btcusdt@forceOrder", "btcusdt@depth5@100ms"]  # fmt: skip
    expected = {"btcusdt@depth@100ms": fut.DEPTH_UPDATE, "btcusdt@aggTrade": fut.AGG_TRADE,
                "btcusdt@kline_1m": fut.KLINE, "btcusdt@bookTicker": fut.BOOK_TICKER,
                "btcusdt@markPrice@1s": fut.MARK_PRICE, "btcusdt@forceOrder": fut.FORCE_ORDER,
                "btcusdt@depth5@100ms": fut.PARTIAL_DEPTH}  # fmt: skip
    ws = await http.ws_connect(ws_url(sim, "/stream?streams=" + "/".join(names)))
    seen: dict[str, dict] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + 6
    while len(seen) < len(names):
        assert loop.time() < end, f"no frame yet on {set(names) - set(seen)}"
        m = await recv_json(ws)
        assert set(m) == {"stream", "data"}
        seen.setdefault(m["stream"], m["data"])
    await ws.close()
    for name, d in expected.items():
        want, got = doc(d), seen[name]
        assert set(got) == set(want), name
        assert got.get("e") == want["e"] and got.get("s", got.get("o", {}).get("s")) == "BTCUSDT"
        for key in ("k", "o"):
            if key in want:
                assert set(got[key]) == set(want[key]), name
    assert len(seen["btcusdt@depth5@100ms"]["b"]) == 5


async def test_usdm_local_book_procedure_equals_truth(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """USDⓈ-M "How to manage a local order book correctly": buffer; snapshot; drop u <
    lastUpdateId; the first event has U <= lastUpdateId <= u; then pu == previous u."""
    ws = await http.ws_connect(ws_url(sim, "/ws/btcusdt@depth@100ms"))
    buffered = [await recv_json(ws)]
    _, _, snap = await get(http, sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    book_id = snap["lastUpdateId"]
    bids = {float(p): float(q) for p, q in snap["bids"]}
    asks = {float(p): float(q) for p, q in snap["asks"]}
    state = {"prev": None, "applied": 0}

    def apply(ev: dict) -> None:
        nonlocal book_id
        assert ev["e"] == "depthUpdate" and ev["T"] > 0
        if ev["u"] < book_id:
            return  # step 4
        if state["prev"] is None:
            assert ev["U"] <= book_id <= ev["u"], "step 5"
        else:
            assert ev["pu"] == state["prev"], "step 6: pu == previous u"
        state["prev"] = book_id = ev["u"]
        apply_levels(bids, ev["b"])
        apply_levels(asks, ev["a"])
        state["applied"] += 1

    loop = asyncio.get_running_loop()
    end = loop.time() + 1.2
    while loop.time() < end:
        buffered.append(await recv_json(ws))
    for ev in buffered:
        apply(ev)
    sim.pause()
    truth = sim.truth(V, "BTCUSDT")
    while book_id < truth.update_id:
        apply(await recv_json(ws))
    await ws.close()
    assert state["applied"] > 3 and book_id == truth.update_id
    tb, ta = truth.as_floats()
    assert bids == dict(tb) and asks == dict(ta)


async def test_skipped_update_breaks_the_pu_chain(sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(ws_url(sim, "/ws/ethusdt@depth@100ms"))
    first = await recv_json(ws)
    second = await recv_json(ws)
    assert second["pu"] == first["u"]
    sim.fault(venue=V, kind="skip_update", symbol="ETHUSDT")
    prev, broken = second, None
    for _ in range(20):
        ev = await recv_json(ws)
        if ev["pu"] != prev["u"]:
            broken = ev
            break
        prev = ev
    await ws.close()
    assert broken is not None and broken["pu"] > prev["u"], "the skipped event's u is the next pu"


async def test_mark_price_cadence_funding_and_liquidations(sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(ws_url(sim, "/stream?streams=ethusdt@markPrice@1s/ethusdt@forceOrder"))
    marks: list[dict] = []
    liqs: list[dict] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 8
    while len(marks) < 3 or len(liqs) < 2:
        assert loop.time() < end, (len(marks), len(liqs))
        m = await recv_json(ws)
        (marks if m["stream"].endswith("@1s") else liqs).append(m["data"])
    await ws.close()
    hour = 3_600_000  # the funding interval knob is 1 h here
    for a, b in zip(marks, marks[1:], strict=False):
        assert 700 <= b["E"] - a["E"] <= 1600, "pushed every second"
    mid = sim.market(V, "ETHUSDT").mid * 0.01
    for mk in marks:
        assert mk["T"] % hour == 0 and 0 < mk["T"] - mk["E"] <= hour
        assert abs(float(mk["p"]) / mid - 1) < 0.01 and abs(float(mk["r"])) <= 0.00375
    for a, b in zip(liqs, liqs[1:], strict=False):
        assert b["E"] - a["E"] >= 700, "at most one liquidation per second per symbol"
    for lq in liqs:
        o = lq["o"]
        assert o["S"] in ("BUY", "SELL") and o["X"] == "FILLED" and float(o["z"]) > 0
        assert o["s"] == "ETHUSDT" and abs(float(o["ap"]) / mid - 1) < 0.01


async def test_stream_names_of_spot_only_are_refused(sim: Simulator, http: aiohttp.ClientSession) -> None:
    base = ws_url(sim, "").replace("ws://", "http://")
    for name in ("btcusdt@trade", "btcusdt@kline_1s", "btcusdt@depth@1000ms", "btcusdt@markPrice@3s"):
        async with http.get(f"{base}/ws/{name}") as resp:
            assert resp.status == 400 and name in (await resp.json())["msg"], name


async def test_ten_incoming_messages_per_second(http: aiohttp.ClientSession) -> None:
    """"WebSocket connections have a limit of 10 incoming messages per second"."""
    async with Simulator({V: ["BTCUSDT"]}, paused=True) as sim:
        ws = await http.ws_connect(ws_url(sim, "/ws"))
        for i in range(10):  # at the limit: every one answered
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        for i in range(10):
            assert (await recv_json(ws))["id"] == i
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
        msg = await asyncio.wait_for(ws.receive(), 3)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_subscribe_live_and_server_pings(sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await http.ws_connect(ws_url(sim, "/ws"), autoping=False)
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 1}))
    assert await recv_json(ws) == {"result": None, "id": 1}
    m = await recv_until(ws, lambda x: x.get("e") == "markPriceUpdate")
    assert m["s"] == "BTCUSDT"
    msg = await asyncio.wait_for(ws.receive(), 3)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(ws.receive(), 3)
    assert msg.type == aiohttp.WSMsgType.PING  # ping_interval knob (3 minutes by default)
    await ws.close()
