"""Instruments from documented bodies, exact formatting (hypothesis), local validation."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.instruments import (
    Instrument,
    InstrumentBook,
    InstrumentsError,
    OffGrid,
    format_price,
    format_qty,
    round_price,
    round_qty,
)
from ttxt_mp.events import AmendOrder, CancelOrder, CreateOrder, OrderType, Side, TimeInForce

enc = msgspec.json.encode


def test_binance_exchange_info_doc(binance_doc):
    (i,) = binance_instruments(enc(binance_doc["exchange_info"]))
    assert (i.exchange, i.native_symbol, i.symbol, i.kind) == ("binance", "ETHBTC", "ETH/BTC", "spot")
    assert i.tick_size == Decimal("0.000001") and i.price_precision == 6
    assert i.step_size == Decimal("0.001") and i.qty_precision == 3
    assert i.min_qty == Decimal("0.001") and i.max_qty == Decimal("100000")
    assert i.min_notional == Decimal("0.001") and i.trading


def test_binance_notional_filter_and_missing_filters(binance_doc):
    info = msgspec.json.decode(enc(binance_doc["exchange_info"]))
    sym = info["symbols"][0]
    sym["filters"].append({"filterType": "NOTIONAL", "minNotional": "10.00000000",
                           "applyMinToMarket": False, "maxNotional": "10000.00000000",
                           "applyMaxToMarket": False, "avgPriceMins": 5})  # fmt: skip
    (i,) = binance_instruments(enc(info))
    assert i.min_notional == Decimal(10) and i.max_notional == Decimal(10000)
    sym["filters"] = []
    sym["status"] = "HALT"
    (i,) = binance_instruments(enc(info))
    assert i.tick_size == Decimal("1E-8") and i.step_size == Decimal("1E-8") and not i.trading


def test_bybit_instruments_docs(bybit_doc):
    (s,) = bybit_instruments(enc(bybit_doc["instruments_spot"]))
    assert (s.symbol, s.kind, s.tick_size, s.step_size) == ("BTC/USDT", "spot", Decimal("0.1"), Decimal("0.000001"))
    assert s.min_notional == Decimal(5) and s.max_qty == Decimal(83)
    (lin,) = bybit_instruments(enc(bybit_doc["instruments_linear"]))
    assert (lin.kind, lin.step_size, lin.min_qty, lin.min_notional) == ("linear", Decimal("0.001"), Decimal("0.001"), Decimal(5))


@pytest.mark.parametrize(
    "body, match",
    [
        (b"not json", "binance: malformed"),
        (b'{"symbols": [{"symbol": "X"}]}', "binance: malformed"),
        (b'{"symbols": [{"symbol": "X", "baseAsset": "A", "quoteAsset": "B", "filters": '
         b'[{"filterType": "PRICE_FILTER", "tickSize": "abc"}]}]}', "not a decimal"),
    ],
)  # fmt: skip
def test_binance_malformed(body, match):
    with pytest.raises(InstrumentsError, match=match):
        binance_instruments(body)


def test_bybit_error_and_malformed():
    with pytest.raises(InstrumentsError, match="10001"):
        bybit_instruments(b'{"retCode": 10001, "retMsg": "params error", "result": {}}')
    with pytest.raises(InstrumentsError, match="bybit: malformed"):
        bybit_instruments(b'{"retCode": 0, "result": {"category": "spot", "list": [{}]}}')


def inst(tick="0.01", step="0.001", **kw) -> Instrument:
    base = dict(exchange="binance", native_symbol="BTCUSDT", base="BTC", quote="USDT",
                tick_size=Decimal(tick), step_size=Decimal(step),
                price_precision=max(0, -Decimal(tick).normalize().as_tuple().exponent),
                qty_precision=max(0, -Decimal(step).normalize().as_tuple().exponent))  # fmt: skip
    base.update(kw)
    return Instrument(**base)


def test_format_removes_float_artefacts():
    i = inst(tick="0.1", step="0.1")
    assert repr(0.1 + 0.2) == "0.30000000000000004"
    assert format_price(i, 0.1 + 0.2) == "0.3"
    assert format_qty(i, 0.1 * 3) == "0.3"
    assert format_price(inst(tick="0.00000100"), 0.102644) == "0.102644"
    with pytest.raises(OffGrid, match="not a multiple"):
        format_price(i, 0.35)
    assert round_price(i, 0.35) == "0.4" and round_qty(i, 0.39) == "0.3"
    assert format_price(inst(tick="1"), 28000.0) == "28000"
    assert "e" not in format_qty(inst(step="0.00000001"), 1e-7).lower()


TICKS = st.sampled_from(["0.1", "0.01", "0.05", "0.25", "0.00000100", "0.0001", "1", "5", "0.5"])


@given(tick=TICKS, k=st.integers(min_value=1, max_value=10**9))
def test_formatted_price_is_on_tick_and_parses_back(tick, k):
    i = inst(tick=tick)
    price = k * float(Decimal(tick))  # a float computation, with its rounding noise
    text = format_price(i, price)
    d = Decimal(text)
    assert d == k * Decimal(tick)
    assert d % i.tick_size == 0
    assert "e" not in text.lower()
    assert float(text) == pytest.approx(price, rel=1e-12)


@given(step=TICKS, k=st.integers(min_value=1, max_value=10**9), off=st.integers(1, 9))
def test_off_grid_values_are_refused_not_rounded(step, k, off):
    i = inst(step=step)
    value = Decimal(k) * Decimal(step) + Decimal(step) * off / 10
    with pytest.raises(OffGrid):
        format_qty(i, str(value))


BOOK = InstrumentBook(
    "binance",
    [inst(tick="0.01", step="0.001", min_qty=Decimal("0.001"), max_qty=Decimal("100"),
          min_price=Decimal("0.01"), max_price=Decimal("1000000"), min_notional=Decimal("5")),
     inst(native_symbol="ETHBTC", base="ETH", quote="BTC", status="BREAK", trading=False)],
)  # fmt: skip


def co(**kw) -> CreateOrder:
    base = dict(exchange="binance", symbol="BTC/USDT", client_order_id="c1", side=Side.BUY,
                qty=0.01, price=30000.0)  # fmt: skip
    base.update(kw)
    return CreateOrder(**base)


@pytest.mark.parametrize(
    "cmd, reason",
    [
        (co(), None),
        (co(symbol="DOGE/USDT"), "unknown symbol 'DOGE/USDT' on binance"),
        (co(symbol="ETH/BTC"), "not trading"),
        (co(qty=0.0), "qty must be a finite number > 0"),
        (co(qty=float("nan")), "qty must be a finite number > 0"),
        (co(qty=-1.0), "qty must be a finite number > 0"),
        (co(qty=0.0105), "not a multiple of the step size 0.001"),
        (co(qty=1000.0), "above the maximum 100"),
        (co(qty=0.001, price=100.0), "notional 0.1 USDT (price x qty) is below the minimum 5"),
        (co(price=0.0), "a limit order needs a price > 0"),
        (co(price=30000.005), "price 30000.005 is not on the tick size 0.01"),
        (co(price=2e6), "above the maximum"),
        (co(order_type=OrderType.MARKET), "a market order must not carry a price"),
        (co(order_type=OrderType.MARKET, price=0.0, tif=TimeInForce.POST_ONLY), "cannot be POST_ONLY"),
        (co(order_type=OrderType.MARKET, price=0.0, tif=TimeInForce.FOK), "cannot be FOK"),
        (co(order_type=OrderType.MARKET, price=0.0), None),
        (co(reduce_only=True), "reduce_only applies to derivatives"),
        (co(price=0.1 + 0.2, qty=100.0), None),  # float noise on the tick is fine
    ],
)  # fmt: skip
def test_validate_create(cmd, reason):
    got = BOOK.validate(cmd)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


def am(**kw) -> AmendOrder:
    base = dict(exchange="binance", symbol="BTC/USDT", client_order_id="c1")
    base.update(kw)
    return AmendOrder(**base)


@pytest.mark.parametrize(
    "cmd, reason",
    [
        (am(new_qty=0.002), None),
        (am(new_price=30000.01), None),
        (am(), "nothing to amend"),
        (am(client_order_id="", new_qty=1.0), "client_order_id or the order_id"),
        (am(new_price=1.001), "new price 1.001 is not on the tick size"),
        (am(new_qty=0.0001), "new qty 0.0001 is not a multiple"),
        (am(new_qty=0.001, new_price=10.0), "notional"),
        (am(symbol="X/Y", new_qty=1.0), "unknown symbol"),
    ],
)  # fmt: skip
def test_validate_amend(cmd, reason):
    got = BOOK.validate(cmd)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_validate_cancel():
    assert BOOK.validate(CancelOrder(exchange="binance", symbol="BTC/USDT", client_order_id="a")) is None
    assert "client_order_id or the order_id" in BOOK.validate(
        CancelOrder(exchange="binance", symbol="BTC/USDT", client_order_id="")
    )


def test_book_lookup_and_normalization():
    assert BOOK.get("BTCUSDT") is BOOK.get("BTC/USDT")
    assert BOOK.normalized("BTCUSDT") == "BTC/USDT" and BOOK.normalized("XYZ") == "XYZ"
    with pytest.raises(ValueError, match="bybit"):
        BOOK.add(inst(exchange="bybit"))
