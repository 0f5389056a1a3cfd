"""Bybit v5 linear trading wire: documented messages (tests/fixtures/trading/bybit_linear.json
and bybit.json, each citing its page) -> PositionUpdate / OrderUpdate; orders with
reduceOnly and positionIdx; SetLeverage as set-margin-mode then set-leverage, each answer
(including the documented failure) becoming one OrderAck."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fixtures.fake_rest import FakeRest

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.bybit.denormalizer import BybitOrderDenormalizer
from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.bybit.private import BybitPrivateNormalizer, BybitPrivateStream
from ttxt_mp.connectors.bybit.trading import BybitTrading
from ttxt_mp.connectors.instruments import Instrument, InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.connectors.trading import UnknownOutcome
from ttxt_mp.events import (
    CreateOrder,
    MarginMode,
    OrderAction,
    OrderType,
    PositionSide,
    PositionUpdate,
    SetLeverage,
    Side,
)
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.web import RESTError

DOC = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "trading"
                  / "bybit_linear.json").read_text())  # fmt: skip
SYM = "BTC/USDT:USDT"


def enc(x: Any) -> bytes:
    return msgspec.json.encode(x)


@pytest.fixture
def book(bybit_doc) -> InstrumentBook:
    insts = list(bybit_instruments(enc(bybit_doc["instruments_linear"])))
    insts.append(Instrument(exchange="bybit", native_symbol="XRPUSDT", base="XRP", quote="USDT",
                            kind="linear", settle="USDT", tick_size=Decimal("0.0001"),
                            step_size=Decimal(1)))  # fmt: skip
    return InstrumentBook("bybit", insts)


def test_position_list_doc_example():
    (p,) = BybitPrivateNormalizer().parse_positions(enc(DOC["position_list"]), 1)
    assert p == PositionUpdate(exchange="bybit", symbol="BTCUSD", exch_ts=1697673600012_000_000,
                               local_ts=1, size=-300.0, entry_price=27464.50441675,
                               mark_price=28224.5, unrealized_pnl=-0.00029413, leverage=10.0)  # fmt: skip


def test_position_list_errors_are_one_line(bybit_doc):
    n = BybitPrivateNormalizer()
    with pytest.raises(MalformedFrame, match="GET /v5/position/list failed: 10002"):
        n.parse_positions(enc(bybit_doc["error_recv_window"]), 1)
    with pytest.raises(MalformedFrame, match="GET /v5/position/list"):
        n.parse_positions(b'{"retCode": 0, "result": {"list": [{"side": "Buy"}]}}', 1)


def test_linear_execution_fee_is_in_the_settle_coin(bybit_doc, book):
    """The documented linear execution has no feeCurrency (a spot field)."""
    (u,) = BybitPrivateStream(book).normalize(enc(bybit_doc["ws_execution"]), 1)
    assert (u.symbol, u.last_fill_qty, u.fee, u.fee_asset) == ("XRP/USDT:USDT", 25.0, 0.005061, "USDT")
    (u,) = BybitPrivateNormalizer(book).normalize(enc(bybit_doc["ws_execution"]), 1)
    assert u.fee_asset == "USDT"
    (u,) = BybitPrivateNormalizer().normalize(enc(bybit_doc["ws_execution"]), 1)
    assert u.fee_asset == ""  # no instrument: unknown, never guessed


def test_linear_order_body_has_position_idx_and_reduce_only(book):
    d = BybitOrderDenormalizer(book)
    cmd = CreateOrder(exchange="bybit", symbol=SYM, local_ts=1, client_order_id="c-1",
                      side=Side.SELL, order_type=OrderType.MARKET, qty=0.01, reduce_only=True,
                      position_side=PositionSide.SHORT)  # fmt: skip
    body = json.loads(d.create(cmd).body)
    assert body == {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market",
                    "qty": "0.010", "timeInForce": "IOC", "orderLinkId": "c-1", "reduceOnly": True,
                    "positionIdx": 2}  # fmt: skip


def venue(book: InstrumentBook, answers: list[Any]) -> tuple[BybitTrading, FakeRest]:
    cfg = ConnectorConfig(exchange="bybit", market="linear", symbols=[SYM])
    v = BybitTrading(cfg, Credentials(api_key=Secret("k"), api_secret=Secret("s")))
    v.instruments = book
    v.rest = FakeRest(answers)  # type: ignore[assignment]
    return v, v.rest  # type: ignore[return-value]


def lev(leverage: float = 0.0, mode: MarginMode = MarginMode.UNCHANGED, sym: str = SYM) -> SetLeverage:
    return SetLeverage(exchange="bybit", symbol=sym, local_ts=1, client_order_id="r-1",
                       leverage=leverage, margin_mode=mode)  # fmt: skip


async def test_set_leverage_sends_margin_mode_then_leverage(book):
    v, rest = venue(book, [{"retCode": 0, "retMsg": "OK", "result": {"reasons": []}},
                           DOC["set_leverage"]])  # fmt: skip
    ack = await v.set_leverage(lev(12.5, MarginMode.ISOLATED))
    assert ack.accepted and ack.action == OrderAction.SET_LEVERAGE and ack.client_order_id == "r-1"
    assert rest.sent == [
        ("POST", "/v5/account/set-margin-mode", {"setMarginMode": "ISOLATED_MARGIN"}),
        ("POST", "/v5/position/set-leverage", {"category": "linear", "symbol": "BTCUSDT",
                                               "buyLeverage": "12.5", "sellLeverage": "12.5"}),
    ]  # fmt: skip


async def test_set_leverage_answers(book):
    v, _ = venue(book, [DOC["set_margin_mode_failed"]])
    ack = await v.set_leverage(lev(5, MarginMode.CROSS))
    assert (ack.accepted, ack.code, ack.message) == (False, "3400045", "Set margin mode failed")
    v, _ = venue(book, [{"retCode": 110043, "retMsg": "Set leverage not modified", "result": {}}])
    assert (await v.set_leverage(lev(10))).accepted  # already at that leverage
    v, _ = venue(book, [{"retCode": 110013, "retMsg": "Due to risk limit, cannot set leverage"}])
    ack = await v.set_leverage(lev(500))
    assert (ack.accepted, ack.code) == (False, "110013")
    v, rest = venue(book, [])
    ack = await v.set_leverage(lev(5, sym="NOPE/USDT:USDT"))
    assert not ack.accepted and "unknown symbol" in ack.message and not rest.sent
    ack = await v.set_leverage(lev(float("nan")))
    assert not ack.accepted and not rest.sent
    v, _ = venue(book, [RESTError(None, None, "timeout", "POST", "/v5/position/set-leverage")])
    with pytest.raises(UnknownOutcome):
        await v.set_leverage(lev(5))
    v, _ = venue(book, [b"not json"])
    with pytest.raises(UnknownOutcome):
        await v.set_leverage(lev(5))
