"""Bybit v5 linear (simulated venue ``bybit_linear``): paged instruments, the linear REST
book, linear replies, tickers snapshot + deltas that merge to what the venue last sent,
allLiquidation prints, level-1 field order; the connector's paged instrument request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sim_helpers import apply_levels, recv_json, recv_until

from ttxt_mp.connectors.bybit import rest as bybit_rest
from ttxt_mp.sim import Rates, Simulator, VenueTimings
from ttxt_mp.web import WebAssistantFactory

SYMS = ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
TIMINGS = VenueTimings(bybit_linear_idle_timeout=5.0, bybit_linear_liquidations_per_sec=20.0,
                       bybit_linear_liquidation_push=0.1, bybit_linear_funding_interval=2.0)  # fmt: skip


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"bybit_linear": SYMS}, seed=5, timings=TIMINGS,
                         rates=Rates(updates_per_sec=300.0, trades_per_sec=30.0)) as s:  # fmt: skip
        yield s


def rest_url(sim: Simulator) -> str:
    assert sim.urls and sim.urls.bybit_linear
    return sim.urls.bybit_linear.rest


async def get(http: aiohttp.ClientSession, sim: Simulator, path: str) -> dict:
    async with http.get(rest_url(sim) + path) as r:
        assert r.status == 200
        return await r.json()


async def ws(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    assert sim.urls and sim.urls.bybit_linear
    return await http.ws_connect(sim.urls.bybit_linear.ws + "/v5/public/linear")


async def test_instruments_are_paged_by_limit_and_cursor(sim, http) -> None:
    names, cursor, pages = [], "", 0
    while True:
        q = "&cursor=" + cursor if cursor else ""
        r = (await get(http, sim, f"/v5/market/instruments-info?category=linear&limit=2{q}"))
        res = r["result"]
        assert res["category"] == "linear" and len(res["list"]) <= 2
        names += [i["symbol"] for i in res["list"]]
        pages += 1
        for i in res["list"]:
            assert i["contractType"] == "LinearPerpetual" and i["settleCoin"] == "USDT"
            assert i["deliveryTime"] == "0" and i["lotSizeFilter"]["qtyStep"]
        cursor = res["nextPageCursor"]
        if not cursor:
            break
    assert sorted(names) == sorted(SYMS) and pages == 2
    one = await get(http, sim, "/v5/market/instruments-info?category=linear")  # default 500
    assert len(one["result"]["list"]) == 3 and one["result"]["nextPageCursor"] == ""
    for bad in ("cursor=nope", "limit=0", "limit=1001"):
        r = await get(http, sim, f"/v5/market/instruments-info?category=linear&{bad}")
        assert r["retCode"] == 10001, bad
    assert (await get(http, sim, "/v5/market/instruments-info?category=spot"))["retCode"] == 10001


async def test_connector_instrument_request_follows_every_page(sim) -> None:
    """rest.fetch_instruments: pages of ``limit`` until nextPageCursor is empty."""
    f = WebAssistantFactory(rest_base_url=rest_url(sim))
    try:
        insts = await bybit_rest.fetch_instruments(f.get_rest_assistant(), rest_url(sim),
                                                   "linear", page_limit=1)  # fmt: skip
    finally:
        await f.close()
    assert sorted(i.symbol for i in insts) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"]
    assert {i.kind for i in insts} == {"linear"}


async def test_linear_rest_book_is_25_levels_with_the_1000_level_u(sim, http) -> None:
    await asyncio.sleep(0.3)
    sim.pause()
    ob = (await get(http, sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT"))["result"]
    assert len(ob["b"]) == 25 == len(ob["a"]) and set(ob) == {"s", "a", "b", "ts", "u", "seq", "cts"}
    assert ob["u"] == sim.truth("bybit_linear", "BTCUSDT").topics["orderbook.1000.BTCUSDT"]
    deep = await get(http, sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=1000")
    assert len(deep["result"]["b"]) > 25
    bad = await get(http, sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=1001")
    assert bad["retCode"] == 10001


async def test_linear_replies_carry_req_id_and_no_args_count_limit(sim, http) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "ping"}))
    pong = await recv_json(w)  # "Pong message example of public channels" (Linear/Inverse)
    assert pong["op"] == "ping" and pong["ret_msg"] == "pong" and pong["req_id"] == ""
    args = [f"kline.{iv}.{s}" for iv in ("1", "3", "5", "15") for s in SYMS]  # 12 > spot's 10
    await w.send_str(json.dumps({"op": "subscribe", "args": args}))
    ack = await recv_json(w)
    assert ack == {"success": True, "ret_msg": "", "conn_id": ack["conn_id"], "req_id": "",
                   "op": "subscribe"}  # fmt: skip
    await w.send_str(json.dumps({"op": "subscribe", "args": ["x" * 100] * 211}))
    nack = await recv_until(w, lambda m: m.get("op") == "subscribe")
    assert not nack["success"] and "21000" in nack["ret_msg"]
    await w.close()


async def test_ticker_deltas_merge_into_what_the_venue_last_sent(sim, http) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
    assert (await recv_json(w))["success"]
    snap = await recv_json(w)
    assert snap["topic"] == "tickers.BTCUSDT" and snap["type"] == "snapshot"
    state = dict(snap["data"])
    for k in ("markPrice", "indexPrice", "fundingRate", "nextFundingTime", "openInterest",
              "openInterestValue", "bid1Price", "ask1Price", "symbol"):  # fmt: skip
        assert k in state, k
    deltas = 0
    while deltas < 8:
        m = await recv_json(w)
        assert m["type"] == "delta" and set(m) == {"topic", "type", "data", "cs", "ts"}
        changed = {k: v for k, v in m["data"].items() if k != "symbol"}
        assert changed and all(state[k] != v for k, v in changed.items()), "unchanged field sent"
        state.update(changed)
        deltas += 1
    mid = sum(float(p) for p in (state["bid1Price"], state["ask1Price"])) / 2
    assert abs(float(state["markPrice"]) / mid - 1) < 0.001, "the mark drifts near the mid"
    sim.pause()
    await asyncio.sleep(0.3)  # the last delta before the pause
    while True:
        try:
            m = await recv_json(w, 0.3)
        except TimeoutError:
            break
        state.update(m["data"])
    assert state == sim.venue("bybit_linear").ticker_truth("BTCUSDT")  # type: ignore[attr-defined]
    await w.close()


async def test_funding_time_rolls_with_the_interval_knob(sim, http) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["tickers.ETHUSDT"]}))
    await recv_json(w)
    first = int((await recv_json(w))["data"]["nextFundingTime"])
    assert first % 2000 == 0  # a multiple of the 2 s interval
    m = await recv_until(w, lambda m: "nextFundingTime" in m["data"], timeout=5.0)
    assert int(m["data"]["nextFundingTime"]) - first in (2000, 4000)
    await w.close()


async def test_all_liquidation_prints(sim, http) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["allLiquidation.XRPUSDT"]}))
    assert (await recv_json(w))["success"]
    seen = []
    while len(seen) < 10:
        m = await recv_json(w)
        assert m["topic"] == "allLiquidation.XRPUSDT" and m["type"] == "snapshot"
        assert isinstance(m["ts"], int) and m["data"]
        seen += m["data"]
    mark = float(sim.venue("bybit_linear").tickers["XRPUSDT"].fields()["markPrice"])  # type: ignore[attr-defined]
    for x in seen:
        assert set(x) == {"T", "s", "S", "v", "p"} and x["s"] == "XRPUSDT" and float(x["v"]) > 0
        # bankruptcy price: a long (Buy) is liquidated below the mark, a short above
        assert (float(x["p"]) < mark * 1.01) if x["S"] == "Buy" else (float(x["p"]) > mark * 0.99)
    assert {x["S"] for x in seen} == {"Buy", "Sell"}
    await w.close()


async def test_books_and_level1_field_order(sim, http) -> None:
    w = await ws(http, sim)
    await w.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT",
                                                             "orderbook.1.BTCUSDT"]}))  # fmt: skip
    await recv_json(w)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    n = 0
    while n < 20:
        msg = await asyncio.wait_for(w.receive(), 3.0)
        text = msg.data
        m = json.loads(text)
        if m["topic"] == "orderbook.1.BTCUSDT":  # "Futures (Level 1)": ts before type
            assert m["type"] == "snapshot" and text.index('"ts"') < text.index('"type"')
            continue
        assert text.index('"type"') < text.index('"ts"')  # other levels: type first
        if m["type"] == "snapshot":
            bids, asks = {}, {}
        apply_levels(bids, m["data"]["b"])
        apply_levels(asks, m["data"]["a"])
        n += 1
    assert len(bids) == 50 == len(asks) and max(bids) < min(asks)
    await w.close()
