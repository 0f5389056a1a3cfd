"""Commands -> venue requests (shapes from the docs), responses -> OrderAck."""

from __future__ import annotations

import msgspec
import pytest

from ttxt_mp.connectors.binance.denormalizer import BinanceOrderDenormalizer
from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.bybit.denormalizer import BybitOrderDenormalizer
from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.instruments import (
    InstrumentBook,
    VenueRequest,
)
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)

enc = msgspec.json.encode


@pytest.fixture
def bn(binance_doc) -> BinanceOrderDenormalizer:
    return BinanceOrderDenormalizer(
        InstrumentBook("binance", binance_instruments(enc(binance_doc["exchange_info"])))
    )


@pytest.fixture
def bb(bybit_doc) -> BybitOrderDenormalizer:
    return BybitOrderDenormalizer(
        InstrumentBook("bybit", bybit_instruments(enc(bybit_doc["instruments_spot"])))
    )


def create(exchange="binance", symbol="ETH/BTC", **kw) -> CreateOrder:
    base = dict(exchange=exchange, symbol=symbol, client_order_id="my-order_1", side=Side.BUY,
                qty=1.0, price=0.1 + 0.2)  # fmt: skip
    base.update(kw)
    return CreateOrder(**base)


# ----------------------------------------------------------------------------- Binance


def test_binance_limit_order_shape(bn):
    req = bn.create(create())
    assert isinstance(req, VenueRequest)
    assert (req.method, req.path, req.action) == ("POST", "/api/v3/order", OrderAction.CREATE)
    assert req.params == {
        "symbol": "ETHBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "1.000", "price": "0.300000", "newClientOrderId": "my-order_1",
        "newOrderRespType": "ACK",
    }  # fmt: skip


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(order_type=OrderType.MARKET, price=0.0, side=Side.SELL),
         {"type": "MARKET", "side": "SELL"}),
        (dict(tif=TimeInForce.POST_ONLY), {"type": "LIMIT_MAKER"}),
        (dict(tif=TimeInForce.IOC), {"type": "LIMIT", "timeInForce": "IOC"}),
        (dict(tif=TimeInForce.FOK), {"type": "LIMIT", "timeInForce": "FOK"}),
    ],
)  # fmt: skip
def test_binance_order_types(bn, kw, expect):
    req = bn.create(create(**kw))
    assert isinstance(req, VenueRequest)
    for k, v in expect.items():
        assert req.params[k] == v
    if expect["type"] in ("MARKET", "LIMIT_MAKER"):
        assert "timeInForce" not in req.params
    if expect["type"] == "MARKET":
        assert "price" not in req.params


@pytest.mark.parametrize(
    "cmd, reason",
    [
        (create(client_order_id="bad id!"), "does not match Binance's pattern"),
        (create(client_order_id=""), "client_order_id is required"),
        (create(price=0.1234567), "not on the tick size"),
        (create(symbol="BTC/USDT"), "unknown symbol"),
    ],
)  # fmt: skip
def test_binance_local_rejections_are_acks(bn, cmd, reason):
    ack = bn.create(cmd)
    assert isinstance(ack, OrderAck)
    assert not ack.accepted and ack.code == "LOCAL" and reason in ack.message
    assert ack.client_order_id == cmd.client_order_id and ack.action == OrderAction.CREATE


def test_binance_cancel_by_order_id_or_client_id(bn):
    r = bn.cancel(CancelOrder(exchange="binance", symbol="ETH/BTC", client_order_id="a", order_id="42"))
    assert (r.method, r.path, r.params) == ("DELETE", "/api/v3/order", {"symbol": "ETHBTC", "orderId": "42"})
    r = bn.cancel(CancelOrder(exchange="binance", symbol="ETH/BTC", client_order_id="a"))
    assert r.params == {"symbol": "ETHBTC", "origClientOrderId": "a"}


def current(**kw) -> OrderUpdate:
    base = dict(exchange="binance", symbol="ETH/BTC", client_order_id="a", order_id="7",
                side=Side.SELL, status=OrderStatus.PARTIALLY_FILLED, price=0.05, qty=2.0,
                filled_qty=0.5)  # fmt: skip
    base.update(kw)
    return OrderUpdate(**base)


def amend(**kw) -> AmendOrder:
    base = dict(exchange="binance", symbol="ETH/BTC", client_order_id="a")
    base.update(kw)
    return AmendOrder(**base)


def test_binance_qty_decrease_keeps_priority(bn):
    r = bn.amend(amend(new_qty=1.5), current())
    assert (r.method, r.path) == ("PUT", "/api/v3/order/amend/keepPriority")
    assert r.params == {"symbol": "ETHBTC", "origClientOrderId": "a", "newClientOrderId": "a",
                        "newQty": "1.500"}  # fmt: skip
    # without known state a qty-only amend is still sent (the venue checks the decrease)
    assert bn.amend(amend(new_qty=1.5)).path == "/api/v3/order/amend/keepPriority"


def test_binance_price_change_is_cancel_replace_for_the_remainder(bn):
    r = bn.amend(amend(new_price=0.06, order_id="7"), current())
    assert (r.method, r.path) == ("POST", "/api/v3/order/cancelReplace")
    assert r.params == {
        "symbol": "ETHBTC", "side": "SELL", "cancelReplaceMode": "STOP_ON_FAILURE",
        "type": "LIMIT", "timeInForce": "GTC", "quantity": "1.500", "price": "0.060000",
        "cancelOrderId": "7", "newClientOrderId": "a", "newOrderRespType": "ACK",
    }  # fmt: skip
    r = bn.amend(amend(new_qty=3.0), current(order_id="", tif=TimeInForce.POST_ONLY))
    assert r.path == "/api/v3/order/cancelReplace"
    assert r.params["type"] == "LIMIT_MAKER" and r.params["quantity"] == "2.500"
    assert r.params["cancelOrigClientOrderId"] == "a"


def test_binance_price_change_without_state_is_refused_locally(bn):
    ack = bn.amend(amend(new_price=0.06))
    assert isinstance(ack, OrderAck) and not ack.accepted and "current state" in ack.message
    ack = bn.amend(amend(new_qty=0.5, new_price=0.06), current(filled_qty=0.5))
    assert isinstance(ack, OrderAck) and "does not exceed the filled qty" in ack.message


@pytest.mark.parametrize("key", ["order_ack", "order_result", "order_full"])
def test_binance_create_ack_from_doc_responses(bn, binance_doc, key):
    req = bn.create(create(client_order_id="6gCrw2kRUAF9CvJDGP16IP"))
    ack = bn.parse_ack(req, 200, enc(binance_doc[key]), local_ts=5)
    assert ack.accepted and ack.order_id == "28" and ack.client_order_id == "6gCrw2kRUAF9CvJDGP16IP"
    assert (ack.exchange, ack.symbol, ack.action, ack.local_ts) == ("binance", "ETH/BTC", OrderAction.CREATE, 5)


def test_binance_ack_client_id_mismatch_is_an_error(bn, binance_doc):
    req = bn.create(create(client_order_id="other"))
    with pytest.raises(ValueError, match="does not match"):
        bn.parse_ack(req, 200, enc(binance_doc["order_ack"]))


def test_binance_cancel_and_amend_acks(bn, binance_doc):
    req = bn.cancel(CancelOrder(exchange="binance", symbol="ETH/BTC", client_order_id="myOrder1"))
    assert bn.parse_ack(req, 200, enc(binance_doc["order_cancel"])).order_id == "4"
    req = bn.amend(amend(new_qty=1.0))
    ack = bn.parse_ack(req, 200, enc(binance_doc["order_amend_keep_priority"]))
    assert ack.accepted and ack.order_id == "33" and ack.action == OrderAction.AMEND
    req = bn.amend(amend(new_price=0.06), current())
    ack = bn.parse_ack(req, 200, enc(binance_doc["order_cancel_replace"]))
    assert ack.accepted and ack.order_id == "10"


@pytest.mark.parametrize(
    "key, code, text",
    [
        ("error_insufficient_balance", "-2010", "insufficient balance"),
        ("error_unknown_order", "-2011", "Unknown order sent."),
        ("error_bad_signature", "-1022", "Signature for this request is not valid."),
        ("error_recv_window", "-1021", "outside of the recvWindow"),
        ("error_price_filter", "-1013", "PRICE_FILTER"),
        ("error_invalid_symbol", "-1121", "Invalid symbol."),
    ],
)  # fmt: skip
def test_binance_error_bodies_become_rejected_acks(bn, binance_doc, key, code, text):
    req = bn.create(create())
    ack = bn.parse_ack(req, 400, enc(binance_doc[key]))
    assert not ack.accepted and ack.code == code and text in ack.message
    assert ack.client_order_id == "my-order_1"


def test_binance_cancel_replace_errors_say_what_happened(bn, binance_doc):
    req = bn.amend(amend(new_price=0.06), current())
    ack = bn.parse_ack(req, 409, enc(binance_doc["error_cancel_replace_new_failed"]))
    assert not ack.accepted and ack.code == "-2021"
    assert "-2010 Order would immediately match and take." in ack.message
    assert "original order was canceled" in ack.message
    ack = bn.parse_ack(req, 400, enc(binance_doc["error_cancel_replace_cancel_failed"]))
    assert ack.code == "-2022" and "-2011 Unknown order sent." in ack.message
    assert "original order was canceled" not in ack.message


def test_binance_garbage_response_names_venue(bn):
    req = bn.create(create())
    with pytest.raises(msgspec.DecodeError, match="binance: unexpected response to POST /api/v3/order"):
        bn.parse_ack(req, 200, b"<html>")


# ----------------------------------------------------------------------------- Bybit


def test_bybit_limit_create_body(bb):
    req = bb.create(create("bybit", "BTC/USDT", qty=0.01, price=28000.0, tif=TimeInForce.POST_ONLY))
    assert (req.method, req.path, req.headers) == ("POST", "/v5/order/create", {"Content-Type": "application/json"})
    assert msgspec.json.decode(req.body) == {
        "category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
        "qty": "0.010000", "price": "28000.0", "timeInForce": "PostOnly", "orderLinkId": "my-order_1",
    }  # fmt: skip
    assert b" " not in req.body  # compact JSON: what is signed is what is sent


def test_bybit_market_create_is_sized_in_base(bb):
    req = bb.create(create("bybit", "BTC/USDT", qty=0.01, price=0.0, order_type=OrderType.MARKET, side=Side.SELL))
    body = msgspec.json.decode(req.body)
    assert body["orderType"] == "Market" and body["marketUnit"] == "baseCoin"
    assert body["timeInForce"] == "IOC" and "price" not in body and body["side"] == "Sell"


def test_bybit_cancel_and_amend_bodies(bb):
    r = bb.cancel(CancelOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="x1"))
    assert r.path == "/v5/order/cancel"
    assert msgspec.json.decode(r.body) == {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "x1"}
    r = bb.amend(AmendOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="x1", order_id="99",
                            new_price=27000.1))  # fmt: skip
    assert msgspec.json.decode(r.body) == {"category": "spot", "symbol": "BTCUSDT", "orderId": "99",
                                           "price": "27000.1"}  # fmt: skip
    r = bb.amend(AmendOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="x1", new_qty=0.5))
    assert msgspec.json.decode(r.body)["qty"] == "0.500000"


def test_bybit_local_rejections(bb):
    for cmd, text in (
        (create("bybit", "BTC/USDT", client_order_id="a" * 37, qty=0.01, price=28000.0), "orderLinkId"),
        (create("bybit", "BTC/USDT", qty=0.0001, price=28000.0), "notional"),
        (create("bybit", "BTC/USDT", qty=0.01, price=28000.05), "tick"),
    ):
        ack = bb.create(cmd)
        assert isinstance(ack, OrderAck) and not ack.accepted and ack.code == "LOCAL" and text in ack.message


def test_bybit_acks_from_doc_responses(bb, bybit_doc):
    req = bb.create(create("bybit", "BTC/USDT", client_order_id="spot-test-postonly", qty=0.01, price=28000.0))
    ack = bb.parse_ack(req, 200, enc(bybit_doc["create"]))
    assert ack.accepted and ack.order_id == "1321003749386327552" and ack.code == ""
    req = bb.cancel(CancelOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="linear-004"))
    assert bb.parse_ack(req, 200, enc(bybit_doc["cancel"])).order_id == "c6f055d9-7f21-4079-913d-e6523a9cfffa"
    req = bb.amend(AmendOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="linear-004", new_qty=0.5))
    assert bb.parse_ack(req, 200, enc(bybit_doc["amend"])).accepted


@pytest.mark.parametrize(
    "key, code", [("error_sign", "10004"), ("error_recv_window", "10002"), ("error_order_not_exist", "110001")]
)
def test_bybit_error_responses(bb, bybit_doc, key, code):
    req = bb.cancel(CancelOrder(exchange="bybit", symbol="BTC/USDT", client_order_id="x1"))
    ack = bb.parse_ack(req, 200, enc(bybit_doc[key]))
    assert not ack.accepted and ack.code == code and ack.message == bybit_doc[key]["retMsg"]
    assert ack.client_order_id == "x1" and ack.action == OrderAction.CANCEL


def test_http_level_rejection_ack(bn):
    req = bn.create(create())
    ack = req.rejected(-1022, "Signature for this request is not valid.", local_ts=3)
    assert (ack.exchange, ack.client_order_id, ack.action, ack.accepted, ack.code) == (
        "binance", "my-order_1", OrderAction.CREATE, False, "-1022")


def test_denormalizer_refuses_other_venues_book(binance_doc):
    book = InstrumentBook("binance", binance_instruments(enc(binance_doc["exchange_info"])))
    with pytest.raises(ValueError, match="not bybit"):
        BybitOrderDenormalizer(book)
