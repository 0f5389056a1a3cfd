"""Simulated Bybit v5 linear (bybit_linear): orders with reduceOnly, positions, leverage,
margin mode, funding, over real HTTP/WS on 127.0.0.1 signed with the project's BybitSigner.
Shapes and codes from the v5 docs ("Place Order", "Get Position Info", "Set Leverage",
"Set Margin Mode", WebSocket "Position", "Error Codes")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import yarl
from st_helpers import FAST, KEY, SECRET, D, creds, drain, recv_json

from ttxt_mp.connectors.binance.auth import encode_query
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.sim import Rates, Simulator

SYM = "BTCUSDT"
VENUE = "bybit_linear"


@pytest.fixture
async def lsim() -> AsyncIterator[Simulator]:
    async with Simulator({VENUE: [SYM]}, seed=5, rates=Rates(levels=200, max_levels=1000),
                         timings=FAST, paused=True,
                         accounts={KEY: (SECRET, {"USDT": "10000"})}) as s:  # fmt: skip
        yield s


class Client:
    def __init__(self, http: aiohttp.ClientSession, sim: Simulator) -> None:
        urls = sim.urls.venues[VENUE]  # type: ignore[union-attr]
        self.http, self.base, self.ws_base = http, urls.rest, urls.ws
        self.signer = BybitSigner(creds(KEY, SECRET))

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(body)
        headers = {**self.signer.headers(raw), "Content-Type": "application/json"}
        async with self.http.post(self.base + path, data=raw, headers=headers) as r:
            return await r.json()

    async def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        q = encode_query(params)
        async with self.http.get(yarl.URL(f"{self.base}{path}?{q}", encoded=True),
                                 headers=self.signer.headers(q)) as r:  # fmt: skip
            return await r.json()

    async def private(self, topics: list[str]) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(f"{self.ws_base}/v5/private")
        await ws.send_json(self.signer.ws_auth(req_id="a"))
        assert (await recv_json(ws))["success"] is True
        await ws.send_json({"op": "subscribe", "args": topics})
        assert (await recv_json(ws))["success"] is True
        return ws

    async def order(self, side: str, qty: str, **kw: Any) -> dict[str, Any]:
        body = {"category": "linear", "symbol": SYM, "side": side, "orderType": "Market",
                "qty": qty, **kw}  # fmt: skip
        return await self.post("/v5/order/create", body)


def usdt(msg: dict) -> dict[str, str]:
    return {c["coin"]: c for c in msg["data"][0]["coin"]}["USDT"]


async def test_open_and_close_a_long_with_position_and_wallet_pushes(
        lsim: Simulator, http: aiohttp.ClientSession) -> None:  # fmt: skip
    c = Client(http, lsim)
    ws = await c.private(["order", "execution", "position", "wallet"])
    r = await c.order("Buy", "0.01", orderLinkId="l-1")
    assert r["retCode"] == 0, r
    msgs = await drain(ws)
    assert [m["topic"] for m in msgs] == ["execution", "order", "position", "wallet"]
    by = {m["topic"]: m for m in msgs}
    pos = by["position"]["data"][0]
    assert (pos["symbol"], pos["side"], pos["size"], pos["positionIdx"], pos["category"]) == (
        SYM, "Buy", "0.01", 0, "linear")
    ex = by["execution"]["data"][0]
    assert ex["category"] == "linear" and "feeCurrency" not in ex and ex["closedSize"] == "0"
    entry = D(pos["entryPrice"])
    fee1 = D(ex["execFee"])
    assert fee1 == (entry * D("0.01") * D("0.001")).quantize(Decimal("1e-8"))
    w = usdt(by["wallet"])
    assert D(w["walletBalance"]) == D(10000) - fee1
    assert D(w["totalPositionIM"]) == D(pos["positionIM"]) == entry * D("0.01") / 10
    # reduce-only close, larger than the position: filled up to the position only
    r = await c.order("Sell", "0.05", orderLinkId="l-2", reduceOnly=True)
    assert r["retCode"] == 0, r
    by = {m["topic"]: m for m in await drain(ws)}
    pos = by["position"]["data"][0]
    assert (pos["side"], pos["size"]) == ("", "0")
    ex = by["execution"]["data"][0]
    assert ex["execQty"] == "0.01" and ex["closedSize"] == "0.01"
    pnl = D(ex["execPnl"])
    assert pnl == (D(ex["execPrice"]) - entry) * D("0.01")
    o = by["order"]["data"][0]
    assert o["reduceOnly"] is True and o["orderStatus"] == "PartiallyFilledCanceled"
    w = usdt(by["wallet"])
    assert D(w["walletBalance"]) == D(10000) - fee1 - D(ex["execFee"]) + pnl
    assert D(pos["cumRealisedPnl"]) == pnl
    lst = await c.get("/v5/position/list", {"category": "linear", "symbol": SYM})
    assert lst["retCode"] == 0 and lst["result"]["list"][0]["size"] == "0"
    await ws.close()


async def test_reduce_only_without_position_and_insufficient_margin(
        lsim: Simulator, http: aiohttp.ClientSession) -> None:  # fmt: skip
    c = Client(http, lsim)
    r = await c.order("Sell", "0.01", reduceOnly=True, orderLinkId="ro")
    assert (r["retCode"], r["retMsg"]) == (110017, "Reduce-only rule not satisfied")
    r = await c.order("Buy", "50", orderLinkId="big")  # notional far above 10000 x 10
    assert (r["retCode"], r["retMsg"]) == (110007, "Insufficient available balance")
    r = await c.order("Buy", "0.01", positionIdx=1)
    assert r["retCode"] == 10001 and "position idx" in r["retMsg"]
    r = await c.order("Buy", "0.01", category="spot")
    assert r["retCode"] == 10001


async def test_set_leverage_codes_and_margin_mode(lsim: Simulator, http: aiohttp.ClientSession) -> None:
    c = Client(http, lsim)
    ws = await c.private(["position"])
    body = {"category": "linear", "symbol": SYM, "buyLeverage": "10", "sellLeverage": "10"}
    r = await c.post("/v5/position/set-leverage", body)
    assert (r["retCode"], r["retMsg"]) == (110043, "Set leverage not modified")
    r = await c.post("/v5/position/set-leverage", {**body, "buyLeverage": "5"})
    assert r["retCode"] == 10001  # one-way mode: buy == sell
    r = await c.post("/v5/position/set-leverage", {**body, "buyLeverage": "101", "sellLeverage": "101"})
    assert (r["retCode"], r["retMsg"]) == (110013, "Due to risk limit, cannot set leverage")
    r = await c.post("/v5/position/set-leverage", {**body, "buyLeverage": "25", "sellLeverage": "25"})
    assert r["retCode"] == 0 and r["result"] == {}
    (m,) = await drain(ws)
    assert m["topic"] == "position" and m["data"][0]["leverage"] == "25"
    r = await c.post("/v5/account/set-margin-mode", {"setMarginMode": "ISOLATED_MARGIN"})
    assert r["retCode"] == 0 and r["result"] == {"reasons": []}
    assert lsim.trading[VENUE].position(KEY, SYM).margin_mode == "ISOLATED"
    assert (await c.order("Buy", "0.01"))["retCode"] == 0
    r = await c.post("/v5/account/set-margin-mode", {"setMarginMode": "REGULAR_MARGIN"})
    assert r["retCode"] == 3400045 and r["result"]["reasons"][0]["reasonMsg"].startswith("positions")
    r = await c.post("/v5/account/set-margin-mode", {"setMarginMode": "NOPE"})
    assert r["retCode"] == 10001
    await ws.close()


async def test_funding_moves_the_wallet_and_pushes_position(
        lsim: Simulator, http: aiohttp.ClientSession) -> None:  # fmt: skip
    c = Client(http, lsim)
    assert (await c.order("Sell", "0.02"))["retCode"] == 0
    ws = await c.private(["position", "wallet"])
    core = lsim.trading[VENUE]
    before = sum(core.wallet(KEY)["USDT"])
    mark = core.mark(SYM)
    core.fund_now(rate="0.0005")  # shorts receive
    by = {m["topic"]: m for m in await drain(ws)}
    got = D("0.02") * mark * D("0.0005")
    assert sum(core.wallet(KEY)["USDT"]) == before + got.quantize(Decimal("1e-8"))
    assert D(usdt(by["wallet"])["walletBalance"]) == before + got.quantize(Decimal("1e-8"))
    assert by["position"]["data"][0]["side"] == "Sell"
    await ws.close()
