"""OKX v5 simulated venues ``okx`` (SPOT) and ``okx_linear`` (SWAP): replies and errors,
ping/pong, books snapshot + updates chained by seqId/prevSeqId whose checksums verify
against the book they build (and 0 with the checksum_zero knob, wrong after
corrupt_checksum), the sequence reset, books5/bbo-tbt, trades, candles on the business
endpoint only, the swap channels, REST instruments and books."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sim_helpers import recv_json, recv_until

from ttxt_mp.connectors.okx.checksum import okx_checksum
from ttxt_mp.sim import Rates, Simulator, VenueTimings

TIMINGS = VenueTimings(okx_idle_timeout=5.0, okx_linear_idle_timeout=5.0,
                       okx_linear_funding_push=0.2, okx_linear_oi_push=0.2,
                       okx_linear_liquidations_per_sec=20.0, okx_linear_liquidation_push=0.1,
                       okx_books_keepalive=0.5)  # fmt: skip


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"okx": ["BTCUSDT", "ETHUSDT"], "okx_linear": ["BTCUSDT"]}, seed=3,
                         timings=TIMINGS, rates=Rates(updates_per_sec=300.0, trades_per_sec=30.0,
                                                      levels=200, max_levels=600)) as s:  # fmt: skip
        yield s


def urls(sim: Simulator, venue: str = "okx"):
    assert sim.urls is not None
    return getattr(sim.urls, venue)


async def connect(http, sim, venue: str = "okx", path: str = "public"):
    return await http.ws_connect(f"{urls(sim, venue).ws}/ws/v5/{path}")


async def sub(ws, *args: dict, op: str = "subscribe", rid: str | None = "1") -> None:
    msg = {"op": op, "args": list(args)}
    if rid is not None:
        msg["id"] = rid
    await ws.send_str(json.dumps(msg))


class TextBook:
    """A client's book from the pushes, kept as text, checksummed as documented."""

    def __init__(self) -> None:
        self.bids: dict[float, str] = {}
        self.asks: dict[float, str] = {}
        self.seq = None

    def apply(self, d: dict, snapshot: bool) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        else:
            assert d["prevSeqId"] == self.seq, (d["prevSeqId"], self.seq)
        for side, levels in ((self.bids, d["bids"]), (self.asks, d["asks"])):
            for p, q, *_ in levels:
                if float(q):
                    side[float(p)] = f"{p}:{q}"
                else:
                    side.pop(float(p), None)
        self.seq = d["seqId"]

    def checksum(self) -> int:
        return okx_checksum([self.bids[p] for p in sorted(self.bids, reverse=True)],
                            [self.asks[p] for p in sorted(self.asks)])  # fmt: skip


async def test_ping_pong_and_error_replies(sim, http) -> None:
    ws = await connect(http, sim)
    await ws.send_str("ping")
    assert (await ws.receive()).data == "pong"
    await ws.send_str("{not json")
    err = await recv_json(ws)
    assert (err["event"], err["code"]) == ("error", "60012") and err["connId"]
    await ws.send_str(json.dumps({"op": "login", "id": "9", "args": []}))
    err = await recv_json(ws)
    assert (err["code"], err["msg"], err["id"]) == ("60019", "Invalid op: login", "9")
    await sub(ws, {"channel": "books", "instId": "NOPE-USDT"})
    err = await recv_json(ws)
    assert err["code"] == "60018" and "instId:NOPE-USDT doesn't exist" in err["msg"]
    await sub(ws, {"channel": "candle1m", "instId": "BTC-USDT"})  # candles: business only
    assert (await recv_json(ws))["code"] == "60018"
    await sub(ws)
    assert (await recv_json(ws))["code"] == "60013"
    await ws.close()


async def test_books_updates_chain_and_checksums_verify(sim, http) -> None:
    ws = await connect(http, sim)
    await sub(ws, {"channel": "books", "instId": "BTC-USDT"})
    ack = await recv_json(ws)
    assert ack == {"id": "1", "event": "subscribe",
                   "arg": {"channel": "books", "instId": "BTC-USDT"}, "connId": ack["connId"]}
    snap = await recv_json(ws)
    assert snap["action"] == "snapshot" and snap["data"][0]["prevSeqId"] == -1
    book = TextBook()
    book.apply(snap["data"][0], True)
    assert 150 < len(book.bids) <= 400 and 150 < len(book.asks) <= 400  # the whole book (< 400)
    assert snap["data"][0]["checksum"] == book.checksum() != 0
    steps = set()
    for _ in range(15):
        m = await recv_until(ws, lambda m: m.get("arg", {}).get("channel") == "books")
        d = m["data"][0]
        prev = book.seq
        book.apply(d, False)
        steps.add(d["seqId"] - prev)
        assert d["checksum"] == book.checksum()
    assert len(steps) > 1  # seqIds grow by uneven steps
    await ws.close()


async def test_fault_knobs_corrupt_zero_reset_and_keepalive(sim, http) -> None:
    venue = sim.venue("okx")
    ws = await connect(http, sim)
    await sub(ws, {"channel": "books", "instId": "ETH-USDT"})
    await recv_json(ws)
    book = TextBook()
    book.apply((await recv_json(ws))["data"][0], True)
    venue.corrupt_checksum("ETHUSDT")  # type: ignore[attr-defined]
    wrong = 0
    for _ in range(10):  # updates sent before the fault was set may still be on their way
        d = (await recv_until(ws, lambda m: "action" in m))["data"][0]
        book.apply(d, False)
        wrong += d["checksum"] != book.checksum()
        if wrong:
            break
    assert wrong == 1
    sim.restart("okx", "ETHUSDT")  # the documented sequence reset
    d = (await recv_until(ws, lambda m: m["data"][0]["seqId"] < m["data"][0]["prevSeqId"]))["data"][0]
    assert d["prevSeqId"] >= book.seq and d["seqId"] < 10
    sim.timings.okx_checksum_zero = True
    d = (await recv_until(ws, lambda m: m["data"][0]["prevSeqId"] != m["data"][0]["seqId"]))
    assert d["data"][0]["checksum"] == 0
    sim.pause()
    try:  # no change for books_keepalive s: an empty update, seqId == prevSeqId
        d = (await recv_until(ws, lambda m: not m["data"][0]["bids"] and not m["data"][0]["asks"]
                              and m["data"][0]["seqId"] == m["data"][0]["prevSeqId"], 4.0))  # fmt: skip
    finally:
        sim.resume()
    await ws.close()


async def test_books5_bbo_trades_and_candles_on_business(sim, http) -> None:
    ws = await connect(http, sim)
    await sub(ws, {"channel": "books5", "instId": "BTC-USDT"}, {"channel": "bbo-tbt",
              "instId": "BTC-USDT"}, {"channel": "trades", "instId": "BTC-USDT"})  # fmt: skip
    seen: dict[str, dict] = {}
    while len(seen) < 3:
        m = await recv_json(ws)
        if "data" in m:
            seen[m["arg"]["channel"]] = m
    b5 = seen["books5"]["data"][0]
    assert len(b5["bids"]) == len(b5["asks"]) == 5 and b5["instId"] == "BTC-USDT"
    assert "action" not in seen["books5"] and "checksum" not in b5
    assert len(seen["bbo-tbt"]["data"][0]["bids"]) == 1 and seen["bbo-tbt"]["data"][0]["seqId"]
    t = seen["trades"]["data"][0]
    assert set(t) == {"instId", "tradeId", "px", "sz", "side", "ts", "count", "source", "seqId"}
    biz = await connect(http, sim, path="business")
    await sub(biz, {"channel": "candle1m", "instId": "BTC-USDT"})
    await recv_json(biz)
    c = await recv_until(biz, lambda m: "data" in m)
    row = c["data"][0]
    assert c["arg"]["channel"] == "candle1m" and len(row) == 9 and row[8] in ("0", "1")
    await sub(biz, {"channel": "books", "instId": "BTC-USDT"})  # books: public only
    assert (await recv_until(biz, lambda m: m.get("event") == "error"))["code"] == "60018"
    await ws.close()
    await biz.close()


async def test_swap_channels(sim, http) -> None:
    ws = await connect(http, sim, "okx_linear")
    await sub(ws, *[{"channel": ch, "instId": "BTC-USDT-SWAP"} for ch in
                    ("mark-price", "funding-rate", "open-interest")],
              {"channel": "index-tickers", "instId": "BTC-USDT"},
              {"channel": "liquidation-orders", "instType": "SWAP"})  # fmt: skip
    seen: dict[str, dict] = {}
    while len(seen) < 5:
        m = await recv_json(ws)
        if "data" in m:
            seen[m["arg"]["channel"]] = m["data"][0]
    assert float(seen["mark-price"]["markPx"]) > 0 and seen["index-tickers"]["instId"] == "BTC-USDT"
    f = seen["funding-rate"]
    assert int(f["nextFundingTime"]) > int(f["fundingTime"]) > 0 and f["instType"] == "SWAP"
    assert float(seen["open-interest"]["oiUsd"]) > 0
    liq = seen["liquidation-orders"]
    assert liq["instId"] == "BTC-USDT-SWAP" and liq["details"][0]["side"] in ("buy", "sell")
    truth = sim.venue("okx_linear").swap_truth("BTCUSDT")  # type: ignore[attr-defined]
    assert set(truth) == {"mark-price", "funding-rate", "open-interest", "index-tickers"}
    await ws.close()


async def test_rest_instruments_and_books(sim, http) -> None:
    async def get(venue: str, path: str) -> dict:
        async with http.get(urls(sim, venue).rest + path) as r:
            assert r.status == 200
            return await r.json()

    spot = await get("okx", "/api/v5/public/instruments?instType=SPOT")
    assert spot["code"] == "0" and {i["instId"] for i in spot["data"]} == {"BTC-USDT", "ETH-USDT"}
    swap = await get("okx_linear", "/api/v5/public/instruments?instType=SWAP")
    [i] = swap["data"]
    assert (i["instId"], i["settleCcy"], i["ctType"], i["uly"]) == (
        "BTC-USDT-SWAP", "USDT", "linear", "BTC-USDT")
    assert (await get("okx", "/api/v5/public/instruments?instType=SWAP"))["code"] == "51000"
    books = await get("okx", "/api/v5/market/books?instId=BTC-USDT&sz=20")
    [b] = books["data"]
    assert len(b["bids"]) == len(b["asks"]) == 20 and float(b["bids"][0][0]) < float(b["asks"][0][0])
    assert (await get("okx", "/api/v5/market/books?instId=X-Y"))["code"] == "51001"
    assert (await get("okx", "/api/v5/market/books?instId=BTC-USDT&sz=401"))["code"] == "51000"


async def test_idle_connection_is_closed(http) -> None:
    timings = VenueTimings(okx_idle_timeout=0.4)
    async with Simulator({"okx": ["BTCUSDT"]}, seed=1, timings=timings) as s:
        ws = await connect(http, s)
        msg = await asyncio.wait_for(ws.receive(), 4.0)  # nothing subscribed, no ping
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
