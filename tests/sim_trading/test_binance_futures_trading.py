"""Simulated Binance USDⓈ-M futures (binance_linear): signed endpoints and the user data
stream over real HTTP/WS on 127.0.0.1, signed with the project's BinanceSigner; shapes and
codes from the USDⓈ-M docs (see ttxt_mp/connectors/binance/sim_futures_trading.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import yarl
from st_helpers import FAST, KEY, SECRET, D, creds, drain

from ttxt_mp.connectors.binance.auth import BinanceSigner, encode_query
from ttxt_mp.sim import Rates, Simulator

SYM = "BTCUSDT"
VENUE = "binance_linear"


@pytest.fixture
async def fsim() -> AsyncIterator[Simulator]:
    async with Simulator({VENUE: [SYM]}, seed=9, rates=Rates(levels=200, max_levels=1000),
                         timings=FAST, paused=True,
                         accounts={KEY: (SECRET, {"USDT": "5000"})}) as s:  # fmt: skip
        yield s


class Client:
    def __init__(self, http: aiohttp.ClientSession, sim: Simulator) -> None:
        urls = sim.urls.venues[VENUE]  # type: ignore[union-attr]
        self.http, self.base, self.ws = http, urls.rest, urls.ws
        self.signer = BinanceSigner(creds(KEY, SECRET))

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None
                     ) -> tuple[int, Any]:  # fmt: skip
        p, _, headers = self.signer.sign(method, path, params or {}, None, {})
        url = yarl.URL(f"{self.base}{path}?{encode_query(p)}", encoded=True)
        async with self.http.request(method, url, headers=headers) as r:
            return r.status, await r.json()

    async def key_only(self, method: str, path: str) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base}{path}",
                                     headers=self.signer.api_key_headers()) as r:  # fmt: skip
            return r.status, await r.json()

    async def order(self, side: str, qty: str, **kw: str) -> tuple[int, Any]:
        return await self.signed("POST", "/fapi/v1/order", {"symbol": SYM, "side": side,
                                                             "type": "MARKET", "quantity": qty, **kw})

    async def stream(self) -> aiohttp.ClientWebSocketResponse:
        st, body = await self.key_only("POST", "/fapi/v1/listenKey")
        assert st == 200, body
        return await self.http.ws_connect(f"{self.ws}/ws/{body['listenKey']}")


def events(msgs: list[dict], kind: str) -> list[dict]:
    return [m for m in msgs if m["e"] == kind]


async def test_open_close_with_user_data_adding_up(fsim: Simulator, http: aiohttp.ClientSession) -> None:
    c = Client(http, fsim)
    ws = await c.stream()
    st, body = await c.order("BUY", "0.02", newClientOrderId="f-1", newOrderRespType="RESULT")
    assert st == 200 and body["status"] == "FILLED" and body["reduceOnly"] is False, body
    assert body["positionSide"] == "BOTH" and body["clientOrderId"] == "f-1"
    msgs = await drain(ws)
    (trade,) = [m["o"] for m in events(msgs, "ORDER_TRADE_UPDATE") if m["o"]["x"] == "TRADE"]
    assert (trade["N"], trade["rp"], trade["R"], trade["ps"]) == ("USDT", "0", False, "BOTH")
    (acct,) = events(msgs, "ACCOUNT_UPDATE")
    assert acct["a"]["m"] == "ORDER"
    (p,) = acct["a"]["P"]
    assert (p["s"], p["pa"], p["ps"], p["mt"]) == (SYM, "0.02", "BOTH", "cross")
    fee1 = D(trade["n"])
    assert D(acct["a"]["B"][0]["wb"]) == D(5000) - fee1
    # a reduce-only close larger than the position is capped at it
    st, body = await c.order("SELL", "0.05", reduceOnly="true", newOrderRespType="RESULT")
    assert st == 200 and D(body["executedQty"]) == D("0.02") and body["status"] == "EXPIRED", body
    msgs = await drain(ws)
    (trade,) = [m["o"] for m in events(msgs, "ORDER_TRADE_UPDATE") if m["o"]["x"] == "TRADE"]
    (acct,) = events(msgs, "ACCOUNT_UPDATE")
    assert acct["a"]["P"][0]["pa"] == "0"
    assert D(acct["a"]["B"][0]["wb"]) == D(5000) - fee1 - D(trade["n"]) + D(trade["rp"])
    st, risk = await c.signed("GET", "/fapi/v2/positionRisk", {"symbol": SYM})
    assert st == 200 and risk[0]["positionAmt"] == "0" and risk[0]["leverage"] == "20"
    st, bal = await c.signed("GET", "/fapi/v2/balance")
    assert st == 200 and D(bal[0]["balance"]) == D(acct["a"]["B"][0]["wb"])
    await ws.close()


async def test_order_errors(fsim: Simulator, http: aiohttp.ClientSession) -> None:
    c = Client(http, fsim)
    assert await c.order("SELL", "0.01", reduceOnly="true") == (
        400, {"code": -2022, "msg": "ReduceOnly Order is rejected."})
    assert await c.order("BUY", "100") == (400, {"code": -2019, "msg": "Margin is insufficient."})
    st, body = await c.order("BUY", "0.01", positionSide="LONG")
    assert (st, body["code"]) == (400, -4061)
    st, body = await c.order("BUY", "0.00001")
    assert (st, body["code"]) == (400, -4164)  # notional below 5 (not reduce-only)
    bid = D(fsim.truth(VENUE, SYM, 1).bids[0][0])
    st, body = await c.signed("POST", "/fapi/v1/order", {
        "symbol": SYM, "side": "SELL", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.01",
        "price": str(bid)})
    assert (st, body["code"]) == (400, -5022)  # post-only would take


async def test_modify_leverage_margin_type_and_listen_key(fsim: Simulator, http: aiohttp.ClientSession) -> None:
    c = Client(http, fsim)
    ws = await c.stream()
    bid = D(fsim.truth(VENUE, SYM, 1).bids[0][0])
    st, body = await c.signed("POST", "/fapi/v1/order", {
        "symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
        "price": str(bid - 50), "newClientOrderId": "m-1"})
    assert st == 200, body
    st, body = await c.signed("PUT", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "m-1",
                                                        "side": "BUY", "quantity": "0.02",
                                                        "price": str(bid - 60)})  # fmt: skip
    assert st == 200 and D(body["origQty"]) == D("0.02") and D(body["price"]) == bid - 60, body
    st, body = await c.signed("PUT", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "m-1",
                                                        "side": "BUY", "quantity": "0.02",
                                                        "price": str(bid - 60)})  # fmt: skip
    assert (st, body["code"]) == (400, -5027)
    st, body = await c.signed("POST", "/fapi/v1/marginType", {"symbol": SYM, "marginType": "ISOLATED"})
    assert (st, body["code"]) == (400, -4047)  # open orders
    st, body = await c.signed("DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "m-1"})
    assert st == 200 and body["status"] == "CANCELED"
    assert await c.signed("POST", "/fapi/v1/marginType", {"symbol": SYM, "marginType": "CROSSED"}) == (
        400, {"code": -4046, "msg": "No need to change margin type."})
    assert await c.signed("POST", "/fapi/v1/marginType", {"symbol": SYM, "marginType": "ISOLATED"}) == (
        200, {"code": 200, "msg": "success"})
    assert await c.signed("POST", "/fapi/v1/leverage", {"symbol": SYM, "leverage": "126"}) == (
        400, {"code": -4028, "msg": "Leverage 126 is not valid"})
    assert await c.signed("POST", "/fapi/v1/leverage", {"symbol": SYM, "leverage": "7"}) == (
        200, {"leverage": 7, "maxNotionalValue": "1000000", "symbol": SYM})
    msgs = await drain(ws)
    (cfg,) = events(msgs, "ACCOUNT_CONFIG_UPDATE")
    assert cfg["ac"] == {"s": SYM, "l": 7}
    assert [m["o"]["x"] for m in events(msgs, "ORDER_TRADE_UPDATE")] == ["NEW", "AMENDMENT", "CANCELED"]
    st, body = await c.key_only("PUT", "/fapi/v1/listenKey")  # "Parameters: None"
    assert st == 200 and body["listenKey"]
    # isolated funding: the balance and that position
    assert (await c.order("SELL", "0.01"))[0] == 200
    await drain(ws)
    core = fsim.trading[VENUE]
    core.fund_now(rate="0.001")
    (acct,) = events(await drain(ws), "ACCOUNT_UPDATE")
    assert acct["a"]["m"] == "FUNDING_FEE" and [p["s"] for p in acct["a"]["P"]] == [SYM]
    assert D(acct["a"]["B"][0]["wb"]) == sum(core.wallet(KEY)["USDT"], Decimal(0))
    await ws.close()


async def test_user_stream_json_is_parsed_by_the_connector_normalizer(
        fsim: Simulator, http: aiohttp.ClientSession) -> None:  # fmt: skip
    """Every frame the simulated venue sends is one the futures normalizer reads."""
    from ttxt_mp.connectors.binance.futures_private import BinanceFuturesPrivateNormalizer

    c = Client(http, fsim)
    ws = await c.stream()
    await c.order("BUY", "0.01")
    await c.signed("POST", "/fapi/v1/leverage", {"symbol": SYM, "leverage": "9"})
    await c.order("SELL", "0.01", reduceOnly="true")
    fsim.deposit(VENUE, KEY, "USDT", "1")
    n = BinanceFuturesPrivateNormalizer()
    out = [e for m in await drain(ws) for e in n.normalize(json.dumps(m).encode(), 1)]
    kinds = {type(e).__name__ for e in out}
    assert kinds == {"OrderUpdate", "Wallet", "PositionUpdate"}, kinds
    assert [e.size for e in out if type(e).__name__ == "PositionUpdate"][-1] == 0.0
