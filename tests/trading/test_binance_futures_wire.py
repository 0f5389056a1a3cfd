"""Binance USDⓈ-M futures trading wire: documented messages
(tests/fixtures/trading/binance_futures.json, each citing its page) -> OrderUpdate / Wallet /
PositionUpdate; futures order requests (reduceOnly, positionSide, GTX, PUT modify);
SetLeverage as marginType then leverage, each answer one OrderAck; bad input one line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fixtures.fake_rest import FakeRest

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.binance.futures_denormalizer import BinanceFuturesOrderDenormalizer
from ttxt_mp.connectors.binance.futures_private import BinanceFuturesPrivateNormalizer
from ttxt_mp.connectors.binance.futures_trading import BinanceFuturesTrading
from ttxt_mp.connectors.instruments import Instrument, InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.trading import UnknownOutcome
from ttxt_mp.events import (
    AmendOrder,
    Balance,
    CancelOrder,
    CreateOrder,
    MarginMode,
    OrderAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    SetLeverage,
    Side,
    TimeInForce,
)
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.web import RESTError

DOC = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "trading"
                  / "binance_futures.json").read_text())  # fmt: skip
SYM = "BTC/USDT:USDT"


def enc(x: Any) -> bytes:
    return msgspec.json.encode(x)


@pytest.fixture
def book() -> InstrumentBook:
    return InstrumentBook("binance", [Instrument(
        exchange="binance", native_symbol="BTCUSDT", base="BTC", quote="USDT", kind="linear",
        settle="USDT", tick_size=Decimal("0.1"), step_size=Decimal("0.001"), price_precision=1,
        qty_precision=3)])  # fmt: skip


@pytest.fixture
def fp(book) -> BinanceFuturesPrivateNormalizer:
    return BinanceFuturesPrivateNormalizer(book)


def test_order_trade_update_doc_example(fp):
    (u,) = fp.normalize(enc(DOC["order_trade_update"]), 1)
    assert u == OrderUpdate(exchange="binance", symbol=SYM, exch_ts=1568879465651_000_000,
                            local_ts=1, client_order_id="TEST", order_id="8886774", side=Side.SELL,
                            order_type=OrderType.MARKET, tif=TimeInForce.GTC,
                            status=OrderStatus.NEW, qty=0.001)  # fmt: skip


def test_order_trade_update_fill_and_post_only(fp):
    msg = DOC["order_trade_update"]
    o = {**msg["o"], "o": "LIMIT", "f": "GTX", "p": "7000", "x": "TRADE", "X": "PARTIALLY_FILLED",
         "l": "0.0004", "L": "7000.5", "z": "0.0004", "ap": "7000.5", "n": "0.0014", "t": 12}
    (u,) = fp.normalize(enc({**msg, "o": o}), 1)
    assert (u.order_type, u.tif, u.status) == (OrderType.LIMIT, TimeInForce.POST_ONLY,
                                               OrderStatus.PARTIALLY_FILLED)  # fmt: skip
    assert (u.last_fill_qty, u.last_fill_price, u.fee, u.fee_asset, u.trade_id, u.avg_price) == (
        0.0004, 7000.5, 0.0014, "USDT", "12", 7000.5)
    del o["n"], o["N"]  # "will not push if no commission"
    (u,) = fp.normalize(enc({**msg, "o": o}), 1)
    assert (u.fee, u.fee_asset) == (0.0, "")


def test_account_update_doc_example(fp):
    w, *ps = fp.normalize(enc(DOC["account_update"]), 1)
    assert w.balances == (Balance("USDT", 122624.12345678, 0.0), Balance("BUSD", 1.0, 0.0))
    assert w.exch_ts == 1564745798939_000_000
    assert [(p.symbol, p.size, p.entry_price, p.unrealized_pnl) for p in ps] == [
        (SYM, 0.0, 0.0, 0.0), (SYM, 20.0, 6563.665, 2850.212), (SYM, -10.0, 6563.86, -1423.156)]
    funding = {**DOC["account_update"], "a": {"m": "FUNDING_FEE", "B": DOC["account_update"]["a"]["B"][:1]}}
    (w,) = fp.normalize(enc(funding), 1)  # cross funding: the balance only
    assert w.balances == (Balance("USDT", 122624.12345678, 0.0),)


def test_leverage_from_position_risk_and_config_update(fp):
    assert fp.normalize(enc(DOC["account_config_update"]), 1) == []  # no position seen yet
    assert fp.parse_positions(enc(DOC["position_risk"]), 1) == []  # flat: not an open position
    (p,) = fp.parse_positions(enc(DOC["position_risk"]), 1, symbol=SYM)
    assert p == PositionUpdate(exchange="binance", symbol=SYM, local_ts=1, size=0.0,
                               entry_price=0.0, mark_price=6679.50671178, leverage=10.0)  # fmt: skip
    (p,) = fp.normalize(enc(DOC["account_config_update"]), 2)
    assert (p.symbol, p.leverage, p.exch_ts) == (SYM, 25.0, 1611646737479_000_000)
    (_, p, *_) = fp.normalize(enc(DOC["account_update"]), 3)
    assert p.leverage == 25.0


def test_rest_balance_and_open_orders(fp):
    w = fp.parse_account(enc(DOC["balance"]), 1)
    assert w.balances == (Balance("USDT", 122607.35137903, 0.0),)
    (o,) = fp.parse_open_orders(enc(DOC["open_orders"]), 1)
    assert (o.client_order_id, o.order_id, o.side, o.order_type, o.qty, o.status) == (
        "abc", "1917641", Side.BUY, OrderType.MARKET, 0.4, OrderStatus.NEW)


@pytest.mark.parametrize("bad, why", [
    (b'{"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT"}}', "user data"),
    (b'{"e": "NEW_THING", "E": 1}', "unknown user data event 'NEW_THING'"),
    (b"not json", "user data"),
])
def test_bad_frames_are_one_line(fp, bad, why):
    with pytest.raises(MalformedFrame, match=why) as e:
        fp.normalize(bad, 1)
    assert "\n" not in str(e.value)


def test_bad_rest_bodies_and_values(fp):
    o = {**DOC["order_trade_update"]["o"], "o": "ICEBERG"}
    with pytest.raises(MalformedFrame, match="unknown futures order type 'ICEBERG'"):
        fp.normalize(enc({**DOC["order_trade_update"], "o": o}), 1)
    with pytest.raises(MalformedFrame, match="positionRisk"):
        fp.parse_positions(b'{"code": -1022}', 1)
    with pytest.raises(MalformedFrame, match="field positionAmt is not a number"):
        fp.parse_positions(enc([{**DOC["position_risk"][0], "positionAmt": "lots"}]), 1)
    with pytest.raises(MalformedFrame, match="/fapi/v2/balance"):
        fp.parse_account(b"[{}]", 1)
    assert fp.normalize(b'{"e": "MARGIN_CALL", "E": 1}', 1) == []


def test_futures_order_requests(book):
    d = BinanceFuturesOrderDenormalizer(book)
    cmd = CreateOrder(exchange="binance", symbol=SYM, local_ts=1, client_order_id="c-1",
                      side=Side.SELL, qty=0.01, price=30000.0, tif=TimeInForce.POST_ONLY,
                      reduce_only=True)  # fmt: skip
    req = d.create(cmd)
    assert (req.method, req.path) == ("POST", "/fapi/v1/order")
    assert req.params == {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.010",
                          "price": "30000.0", "newClientOrderId": "c-1", "newOrderRespType": "ACK",
                          "timeInForce": "GTX", "reduceOnly": "true"}  # fmt: skip
    hedge = d.create(msgspec.structs.replace(cmd, reduce_only=False, tif=TimeInForce.GTC,
                                             position_side=PositionSide.SHORT))  # fmt: skip
    assert hedge.params["positionSide"] == "SHORT" and "reduceOnly" not in hedge.params
    cancel = d.cancel(CancelOrder(exchange="binance", symbol=SYM, local_ts=2, client_order_id="c-1"))
    assert (cancel.method, cancel.path, cancel.params) == (
        "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "c-1"})
    amend = AmendOrder(exchange="binance", symbol=SYM, local_ts=3, client_order_id="c-1",
                       new_price=29990.0)  # fmt: skip
    assert d.amend(amend, None).accepted is False  # the modify needs side/qty/price
    cur = OrderUpdate(exchange="binance", symbol=SYM, client_order_id="c-1", order_id="77",
                      side=Side.SELL, status=OrderStatus.NEW, price=30000.0, qty=0.01)  # fmt: skip
    req = d.amend(amend, cur)
    assert (req.method, req.path, req.params) == ("PUT", "/fapi/v1/order", {
        "symbol": "BTCUSDT", "orderId": "77", "side": "SELL", "quantity": "0.010",
        "price": "29990.0"})
    ack = d.parse_ack(req, 200, enc({"orderId": 77, "clientOrderId": "c-1", "status": "NEW"}), 5)
    assert ack.accepted and ack.order_id == "77" and ack.action == OrderAction.AMEND


def venue(book: InstrumentBook, answers: list[Any]) -> tuple[BinanceFuturesTrading, FakeRest]:
    cfg = ConnectorConfig(exchange="binance", market="linear", symbols=[SYM])
    v = BinanceFuturesTrading(cfg, Credentials(api_key=Secret("k"), api_secret=Secret("s")))
    v.instruments = book
    v.rest = FakeRest(answers)  # type: ignore[assignment]
    return v, v.rest  # type: ignore[return-value]


def lev(leverage: float = 0.0, mode: MarginMode = MarginMode.UNCHANGED) -> SetLeverage:
    return SetLeverage(exchange="binance", symbol=SYM, local_ts=1, client_order_id="r-1",
                       leverage=leverage, margin_mode=mode)  # fmt: skip


def err(code: int, msg: str) -> RESTError:
    return RESTError(400, code, msg, "POST", "/fapi/v1/x")


async def test_set_leverage_requests_and_answers(book):
    v, rest = venue(book, [DOC["margin_type"], DOC["leverage"]])
    ack = await v.set_leverage(lev(21, MarginMode.ISOLATED))
    assert ack.accepted and ack.action == OrderAction.SET_LEVERAGE
    assert rest.sent == [("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}),
                         ("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "21"})]
    v, _ = venue(book, [err(-4046, "No need to change margin type."), DOC["leverage"]])
    assert (await v.set_leverage(lev(21, MarginMode.CROSS))).accepted
    v, _ = venue(book, [err(-4048, "Margin type cannot be changed if there exists position.")])
    ack = await v.set_leverage(lev(21, MarginMode.CROSS))
    assert (ack.accepted, ack.code) == (False, "-4048")
    v, _ = venue(book, [err(-4028, "Leverage 200 is not valid")])
    ack = await v.set_leverage(lev(200))
    assert (ack.accepted, ack.code, ack.message) == (False, "-4028", "Leverage 200 is not valid")
    v, rest = venue(book, [])
    assert not (await v.set_leverage(lev(2.5))).accepted and not rest.sent  # integers only
    v, _ = venue(book, [RESTError(None, None, "timeout", "POST", "/fapi/v1/leverage")])
    with pytest.raises(UnknownOutcome):
        await v.set_leverage(lev(5))
    v, _ = venue(book, [b"<html>"])
    with pytest.raises(UnknownOutcome):
        await v.set_leverage(lev(5))
