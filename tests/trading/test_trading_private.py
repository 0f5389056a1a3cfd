"""Private streams and REST reconciliation bodies from the docs -> events."""

from __future__ import annotations

import msgspec
import pytest

from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.binance.private import BinancePrivateNormalizer
from ttxt_mp.connectors.bybit.private import BybitPrivateNormalizer
from ttxt_mp.connectors.instruments import InstrumentBook
from ttxt_mp.connectors.normalizer import MalformedFrame
from ttxt_mp.events import (
    Balance,
    ConnectorState,
    ConnectorStatus,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionUpdate,
    Side,
    TimeInForce,
    Wallet,
)

enc = msgspec.json.encode


@pytest.fixture
def bnp(binance_doc) -> BinancePrivateNormalizer:
    book = InstrumentBook("binance", binance_instruments(enc(binance_doc["exchange_info"])))
    return BinancePrivateNormalizer(book)


def test_execution_report_new(bnp, binance_doc):
    (u,) = bnp.normalize(enc(binance_doc["user_execution_report"]), local_ts=7)
    assert u == OrderUpdate(
        exchange="binance", symbol="ETH/BTC", exch_ts=1499405658658_000_000, local_ts=7,
        client_order_id="mUvoqJxFIILMdfAW5iGSOW", order_id="4293153", side=Side.BUY,
        order_type=OrderType.LIMIT, tif=TimeInForce.GTC, status=OrderStatus.NEW,
        price=0.1026441, qty=1.0,
    )  # fmt: skip


def _report(doc, **changes) -> bytes:
    msg = dict(doc["user_execution_report"])
    msg.update(changes)
    return enc(msg)


def test_execution_report_trade_fill_and_fee(bnp, binance_doc):
    frame = _report(binance_doc, x="TRADE", X="PARTIALLY_FILLED", l="0.40000000", L="0.10264410",
                    z="0.40000000", Z="0.04105764", n="0.00040000", N="ETH", t=12345)  # fmt: skip
    (u,) = bnp.normalize(frame, 1)
    assert u.status == OrderStatus.PARTIALLY_FILLED
    assert (u.last_fill_qty, u.last_fill_price, u.filled_qty) == (0.4, 0.1026441, 0.4)
    assert (u.fee, u.fee_asset, u.trade_id) == (0.0004, "ETH", "12345")
    assert u.avg_price == pytest.approx(0.1026441)


def test_execution_report_cancel_uses_original_client_id(bnp, binance_doc):
    frame = _report(binance_doc, x="CANCELED", X="CANCELED", c="cancelReq1", C="mUvoqJxFIILMdfAW5iGSOW")
    (u,) = bnp.normalize(frame, 1)
    assert u.client_order_id == "mUvoqJxFIILMdfAW5iGSOW" and u.status == OrderStatus.CANCELED
    assert u.fee == 0.0 and u.trade_id == ""


def test_limit_maker_is_post_only(bnp, binance_doc):
    (u,) = bnp.normalize(_report(binance_doc, o="LIMIT_MAKER", f="GTC"), 1)
    assert (u.order_type, u.tif) == (OrderType.LIMIT, TimeInForce.POST_ONLY)


def test_ws_api_wrapped_event_and_responses(bnp, binance_doc):
    wrapped = enc({"subscriptionId": 0, "event": binance_doc["user_execution_report"]})
    assert bnp.normalize(wrapped, 1) == bnp.normalize(enc(binance_doc["user_execution_report"]), 1)
    assert bnp.normalize(b'{"id": "x", "status": 200, "result": {"subscriptionId": 0}}', 1) == []


def test_account_position_and_balance_update(bnp, binance_doc):
    assert bnp.normalize(enc(binance_doc["user_balance_update"]), 1) == []  # BTC unknown yet
    (w,) = bnp.normalize(enc(binance_doc["user_account_position"]), 1)
    assert w == Wallet(exchange="binance", exch_ts=1564034571105_000_000, local_ts=1,
                       balances=(Balance("ETH", 10000.0, 0.0),))  # fmt: skip
    acct = bnp.parse_account(enc(binance_doc["account"]), 2)
    assert acct.balances == (Balance("BTC", 4723846.89208129, 0.0), Balance("LTC", 4763368.68006011, 0.0))
    (w,) = bnp.normalize(enc(binance_doc["user_balance_update"]), 3)
    assert w.balances == (Balance("BTC", 4723946.89208129, 0.0),)


def test_ignored_and_ending_events(bnp, binance_doc):
    assert bnp.normalize(enc(binance_doc["user_list_status"]), 1) == []
    assert bnp.normalize(enc(binance_doc["user_external_lock_update"]), 1) == []
    for key in ("user_listen_key_expired", "user_event_stream_terminated"):
        (s,) = bnp.normalize(enc(binance_doc[key]), 1)
        assert isinstance(s, ConnectorStatus) and s.state == ConnectorState.DOWN


def test_open_orders_reconciliation(bnp, binance_doc):
    (o,) = bnp.parse_open_orders(enc(binance_doc["open_orders"]), 1)
    assert (o.symbol, o.client_order_id, o.order_id, o.status) == ("LTCBTC", "myOrder1", "1", OrderStatus.NEW)
    assert (o.price, o.qty, o.filled_qty, o.side) == (0.1, 1.0, 0.0, Side.BUY)


@pytest.mark.parametrize(
    "frame, cause",
    [
        (b"{not json", "binance: malformed frame: user data"),
        (b'{"e": "mystery"}', "unknown user data event 'mystery'"),
        (b'{"foo": 1}', "without an event type"),
        (b'{"e": "executionReport", "E": 1}', "user data"),
    ],
)  # fmt: skip
def test_binance_malformed_names_venue_and_cause(bnp, frame, cause):
    with pytest.raises(MalformedFrame, match=cause) as ei:
        bnp.normalize(frame, 1)
    assert ei.value.exchange == "binance"


def test_binance_bad_enum_and_number(bnp, binance_doc):
    with pytest.raises(MalformedFrame, match="unknown side 'UP'"):
        bnp.normalize(_report(binance_doc, S="UP"), 1)
    with pytest.raises(MalformedFrame, match="field q is not a number"):
        bnp.normalize(_report(binance_doc, q="abc"), 1)
    with pytest.raises(MalformedFrame, match="openOrders"):
        bnp.parse_open_orders(b'{"code": -1022}', 1)


# ----------------------------------------------------------------------------- Bybit


@pytest.fixture
def bbp() -> BybitPrivateNormalizer:
    return BybitPrivateNormalizer()


def test_bybit_order_topic(bbp, bybit_doc):
    (u,) = bbp.normalize(enc(bybit_doc["ws_order"]), 9)
    assert u == OrderUpdate(
        exchange="bybit", symbol="ETH-30DEC22-1400-C", exch_ts=1672364262457_000_000, local_ts=9,
        client_order_id="", order_id="5cf98598-39a7-459e-97bf-76ca765ee020", side=Side.SELL,
        order_type=OrderType.MARKET, tif=TimeInForce.IOC, status=OrderStatus.FILLED,
        price=72.5, qty=1.0, filled_qty=1.0, avg_price=75.0,
    )  # fmt: skip


def test_bybit_execution_topic_is_a_fill(bbp, bybit_doc):
    (u,) = bbp.normalize(enc(bybit_doc["ws_execution"]), 1)
    assert (u.status, u.filled_qty, u.last_fill_qty, u.last_fill_price) == (OrderStatus.FILLED, 25.0, 25.0, 0.3374)
    assert (u.fee, u.trade_id, u.price, u.qty) == (0.005061, "7e2ae69c-4edf-5800-a352-893d52b446aa", 0.3207, 25.0)
    msg = msgspec.json.decode(enc(bybit_doc["ws_execution"]))
    msg["data"][0].update(leavesQty="10", feeCurrency="USDT")
    (u,) = bbp.normalize(enc(msg), 1)
    assert u.status == OrderStatus.PARTIALLY_FILLED and u.filled_qty == 15.0 and u.fee_asset == "USDT"
    msg["data"][0]["execType"] = "Funding"
    assert bbp.normalize(enc(msg), 1) == []


def test_bybit_wallet_topic(bbp, bybit_doc):
    (w,) = bbp.normalize(enc(bybit_doc["ws_wallet"]), 1)
    assert w.balances == (Balance("USDC", 0.0, 0.0), Balance("BTC", 0.0, 0.0), Balance("USDT", 106.03036732, 0.0))
    msg = msgspec.json.decode(enc(bybit_doc["ws_wallet"]))
    msg["data"][0]["coin"][2]["locked"] = "6.03036732"
    (w,) = bbp.normalize(enc(msg), 1)
    assert w.balances[2] == Balance("USDT", 100.0, 6.03036732)


def test_bybit_position_topic(bbp, bybit_doc):
    (p,) = bbp.normalize(enc(bybit_doc["ws_position"]), 1)
    assert p == PositionUpdate(exchange="bybit", symbol="BTCUSDT", exch_ts=1697682317038_000_000,
                               local_ts=1, size=0.0, entry_price=0.0, mark_price=28184.5,
                               unrealized_pnl=0.0, leverage=10.0)  # fmt: skip
    msg = msgspec.json.decode(enc(bybit_doc["ws_position"]))
    msg["data"][0].update(side="Sell", size="0.5", entryPrice="27000")
    (p,) = bbp.normalize(enc(msg), 1)
    assert (p.size, p.entry_price) == (-0.5, 27000.0)


def test_bybit_symbols_are_normalized_with_a_book(bybit_doc):
    from ttxt_mp.connectors.bybit.instruments import bybit_instruments

    book = InstrumentBook("bybit", bybit_instruments(enc(bybit_doc["instruments_linear"])))
    (p,) = BybitPrivateNormalizer(book).normalize(enc(bybit_doc["ws_position"]), 1)
    assert p.symbol == "BTC/USDT:USDT"  # a linear perpetual, never confused with spot BTC/USDT


def test_bybit_op_replies(bbp):
    assert bbp.normalize(b'{"success": true, "ret_msg": "", "op": "auth", "conn_id": "c"}', 1) == []
    with pytest.raises(MalformedFrame, match="op 'auth' failed: Invalid sign"):
        bbp.normalize(b'{"success": false, "ret_msg": "Invalid sign", "op": "auth"}', 1)


def test_bybit_reconciliation(bbp, bybit_doc):
    (o,) = bbp.parse_open_orders(enc(bybit_doc["order_realtime"]), 1)
    assert (o.client_order_id, o.status, o.price, o.qty, o.side) == ("test-000005", OrderStatus.NEW, 1600.0, 0.1, Side.BUY)
    w = bbp.parse_wallet_balance(enc(bybit_doc["wallet_balance"]), 1)
    assert w.balances == (Balance("BTC", 0.805994, 0.0),)
    with pytest.raises(MalformedFrame, match="10002"):
        bbp.parse_wallet_balance(enc(bybit_doc["error_recv_window"]), 1)


@pytest.mark.parametrize(
    "frame, cause",
    [
        (b"[]", "private stream"),
        (b'{"topic": "greeks", "data": []}', "unsupported private topic 'greeks'"),
        (b'{"topic": "order"}', "without data"),
        (b'{"topic": "order", "data": [{"symbol": "X"}]}', "private stream"),
        (b'{"topic": "order", "data": [{"symbol": "X", "orderId": "1", "side": "Up", '
         b'"orderType": "Limit", "orderStatus": "New"}]}', "unknown side 'Up'"),
        (b'{"topic": "wallet", "data": [{"coin": [{"coin": "BTC", "walletBalance": "x"}]}]}',
         "walletBalance is not a number"),
        (b'{"hello": 1}', "without topic or op"),
    ],
)  # fmt: skip
def test_bybit_malformed_names_venue_and_cause(bbp, frame, cause):
    with pytest.raises(MalformedFrame, match=cause) as ei:
        bbp.normalize(frame, 1)
    assert ei.value.exchange == "bybit"
