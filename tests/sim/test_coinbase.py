"""Coinbase Advanced Trade simulator adapter: per-connection sequence_num, subscriptions
replies, level2 snapshot + updates reproducing the true book, heartbeats with counters,
errors (unknown product, several channels in one message, over the message rate), the
public REST endpoints, and the faults (a skipped update is a skipped sequence_num)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sim_helpers import recv_json, recv_until

from ttxt_mp.sim import Rates, Simulator, VenueTimings

TIMINGS = VenueTimings(coinbase_heartbeat_interval=0.1, coinbase_messages_per_sec=4)


@pytest.fixture
async def cb() -> AsyncIterator[Simulator]:
    async with Simulator({"coinbase": ["BTCUSDT", "XRPUSDT"]}, seed=5, timings=TIMINGS,
                         rates=Rates(updates_per_sec=300.0, trades_per_sec=20.0, levels=100,
                                     max_levels=300)) as s:  # fmt: skip
        yield s


async def ws(http: aiohttp.ClientSession, sim: Simulator) -> aiohttp.ClientWebSocketResponse:
    assert sim.urls and sim.urls.coinbase
    return await http.ws_connect(sim.urls.coinbase.ws + "/")


async def sub(w: aiohttp.ClientWebSocketResponse, channel: str, *pids: str, op: str = "subscribe") -> None:
    msg: dict = {"type": op, "channel": channel}
    if pids:
        msg["product_ids"] = list(pids)
    await w.send_str(json.dumps(msg))


async def test_every_message_carries_the_next_sequence_num(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    await sub(w, "heartbeats")
    await sub(w, "market_trades", "BTC-USDT")
    await sub(w, "level2", "BTC-USDT", "XRP-USDT")
    seen, channels = [], set()
    while len(seen) < 60:
        m = await recv_json(w)
        seen.append(m["sequence_num"])
        channels.add(m["channel"])
        assert set(m) == {"channel", "client_id", "timestamp", "sequence_num", "events"}
    assert seen == list(range(60)) and {"subscriptions", "l2_data", "heartbeats"} <= channels
    w2 = await ws(http, cb)  # a second connection counts on its own, from 0
    await sub(w2, "heartbeats")
    assert (await recv_json(w2))["sequence_num"] == 0


async def test_subscriptions_reply_lists_the_connection(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    await sub(w, "ticker", "BTC-USDT", "XRP-USDT")
    m = await recv_json(w)
    assert m["channel"] == "subscriptions"
    assert m["events"] == [{"subscriptions": {"ticker": ["BTC-USDT", "XRP-USDT"]}}]
    snap = await recv_json(w)  # then a ticker snapshot
    assert snap["channel"] == "ticker" and snap["events"][0]["type"] == "snapshot"
    t = snap["events"][0]["tickers"][0]
    assert float(t["best_bid"]) < float(t["best_ask"]) and float(t["best_bid_quantity"]) > 0
    await sub(w, "ticker", "XRP-USDT", op="unsubscribe")
    m = await recv_until(w, lambda m: m["channel"] == "subscriptions")
    assert m["events"] == [{"subscriptions": {"ticker": ["BTC-USDT"]}}]


async def test_level2_snapshot_and_updates_rebuild_the_true_book(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    await sub(w, "level2", "BTC-USDT")
    book: dict[str, dict[float, float]] = {"bid": {}, "offer": {}}
    snap = await recv_until(w, lambda m: m["channel"] == "l2_data")
    assert snap["events"][0]["type"] == "snapshot"

    def apply(m: dict) -> None:
        for e in m["events"]:
            for u in e["updates"]:
                side = book[u["side"]]
                if float(u["new_quantity"]) == 0:
                    side.pop(float(u["price_level"]), None)
                else:
                    side[float(u["price_level"])] = float(u["new_quantity"])

    apply(snap)
    for _ in range(20):
        apply(await recv_until(w, lambda m: m["channel"] == "l2_data"))
    cb.pause()
    await asyncio.sleep(0.2)  # the last batch goes out
    while True:
        try:
            m = await recv_json(w, 0.3)
        except TimeoutError:
            break
        apply(m)
    bids, asks = cb.truth("coinbase", "BTCUSDT").as_floats()
    assert sorted(book["bid"].items(), reverse=True) == bids and sorted(book["offer"].items()) == asks
    cb.resume()


async def test_heartbeats_count_up_every_interval(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    await sub(w, "heartbeats")
    ms = [await recv_until(w, lambda m: m["channel"] == "heartbeats") for _ in range(3)]
    counters = [m["events"][0]["heartbeat_counter"] for m in ms]
    assert counters == [counters[0], counters[0] + 1, counters[0] + 2] and counters[0] >= 1


@pytest.mark.parametrize(("msg", "needle"), [
    ({"type": "subscribe", "channel": "level2", "product_ids": ["NOPE-USD"]}, "unknown product_ids NOPE-USD"),
    ({"type": "subscribe", "channels": ["level2", "ticker"], "product_ids": ["BTC-USDT"]}, "one channel per message"),
    ({"type": "subscribe", "channel": "user", "product_ids": ["BTC-USDT"]}, "not available"),
    ({"type": "subscribe", "channel": "level2"}, "needs product_ids"),
    ({"type": "hello"}, "failure to parse"),
])  # fmt: skip
async def test_refused_requests_get_an_error(cb: Simulator, http, msg: dict, needle: str) -> None:
    w = await ws(http, cb)
    await w.send_str(json.dumps(msg))
    m = await recv_json(w)
    assert m["type"] == "error" and needle in m["message"], m
    assert cb.connections("coinbase")[0]["subscriptions"] == []


async def test_more_messages_than_the_rate_are_refused(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    for _ in range(5):  # the knob: 4 per second here
        await sub(w, "ticker", "BTC-USDT")
    m = await recv_until(w, lambda m: m.get("type") == "error")
    assert "rate limit" in m["message"]


async def test_skip_update_fault_skips_a_sequence_num(cb: Simulator, http) -> None:
    w = await ws(http, cb)
    await sub(w, "level2", "BTC-USDT")
    first = await recv_until(w, lambda m: m["channel"] == "l2_data")
    cb.fault(venue="coinbase", kind="skip_update", symbol="BTCUSDT")
    nums = [first["sequence_num"]]
    for _ in range(5):
        nums.append((await recv_json(w))["sequence_num"])
    steps = [b - a for a, b in zip(nums, nums[1:], strict=False)]
    assert steps.count(2) == 1 and set(steps) == {1, 2}, nums


async def test_rest_products_book_and_time(cb: Simulator, http) -> None:
    assert cb.urls and cb.urls.coinbase
    base = cb.urls.coinbase.rest
    async with http.get(base + "/api/v3/brokerage/market/products?product_type=SPOT") as r:
        body = await r.json()
    assert body["num_products"] == 2
    p = next(x for x in body["products"] if x["product_id"] == "XRP-USDT")
    assert (p["price_increment"], p["base_increment"], p["status"]) == ("0.0001", "0.1", "online")
    async with http.get(base + "/api/v3/brokerage/market/product_book?product_id=BTC-USDT&limit=5") as r:
        pb = (await r.json())["pricebook"]
    assert len(pb["bids"]) == 5 and float(pb["bids"][0]["price"]) < float(pb["asks"][0]["price"])
    async with http.get(base + "/api/v3/brokerage/market/product_book?product_id=NOPE") as r:
        assert r.status == 404 and (await r.json())["error"] == "NOT_FOUND"
    async with http.get(base + "/api/v3/brokerage/time") as r:
        t = await r.json()
    assert t["epochMillis"].startswith(t["epochSeconds"])
