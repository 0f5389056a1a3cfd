"""One instrument model per venue: market data's SymbolMap is derived from the same
``instruments.Instrument`` list trading keeps in its InstrumentBook; normalized symbols are
unambiguous (spot, perpetual, dated), and two instruments with one symbol are refused."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.binance.normalizer import symbols_from_exchange_info as binance_map
from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.bybit.normalizer import symbols_from_exchange_info as bybit_map
from ttxt_mp.connectors.instruments import (
    InstrumentBook,
    SymbolCollision,
    instrument_symbol,
    make_instrument,
)
from ttxt_mp.connectors.normalizer import Instrument, MalformedFrame, SymbolMap

DOCS = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "trading" / "bybit.json").read_text()
)
BINANCE_DOCS = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "trading" / "binance.json").read_text()
)
DEC27_2024_MS = "1735286400000"  # 2024-12-27 08:00 UTC, a Bybit delivery time


def bybit_body(kind: str, **changes: str) -> bytes:
    body = copy.deepcopy(DOCS[f"instruments_{kind}"])
    body["result"]["list"][0].update(changes)
    return msgspec.json.encode(body)


def dated_body() -> bytes:
    return bybit_body("linear", symbol="BTCUSDT-27DEC24", contractType="LinearFutures",
                      deliveryTime=DEC27_2024_MS)  # fmt: skip


def test_symbols_are_unambiguous():
    assert instrument_symbol("BTC", "USDT") == "BTC/USDT"
    assert instrument_symbol("BTC", "USDT", "linear", "USDT") == "BTC/USDT:USDT"
    assert instrument_symbol("BTC", "USD", "inverse") == "BTC/USD:BTC"
    assert instrument_symbol("BTC", "USDT", "linear", "USDT", "241227") == "BTC/USDT:USDT-241227"
    (spot,) = bybit_instruments(bybit_body("spot"))
    (perp,) = bybit_instruments(bybit_body("linear"))
    (dated,) = bybit_instruments(dated_body())
    assert (spot.symbol, spot.settle, spot.expiry) == ("BTC/USDT", "", "")
    assert (perp.symbol, perp.settle, perp.expiry) == ("BTC/USDT:USDT", "USDT", "")
    assert (dated.native_symbol, dated.symbol) == ("BTCUSDT-27DEC24", "BTC/USDT:USDT-241227")
    book = InstrumentBook("bybit", [spot, dated])  # one list, no collision
    assert book.get("BTC/USDT") is spot and book.get("BTC/USDT:USDT-241227") is dated


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_the_symbol_map_is_derived_from_the_trading_instruments(venue):
    if venue == "binance":
        body = msgspec.json.encode(BINANCE_DOCS["exchange_info"])
        rules, smap = binance_instruments(body), binance_map(body)
    else:
        body = bybit_body("spot")
        rules, smap = bybit_instruments(body), bybit_map(body)
    book = InstrumentBook(venue, rules)
    assert smap.exchange == venue and len(smap) == len(book) == len(rules) > 0
    for r in rules:
        view = smap.instruments[r.native_symbol]
        assert view == Instrument.of(r)
        assert (view.symbol, view.tick_size) == (r.symbol, float(r.tick_size))
        assert smap.normalized(r.native_symbol) == r.symbol == book.normalized(r.native_symbol)
        assert smap.native(r.symbol) == r.native_symbol == book.get(r.symbol).native_symbol
    assert SymbolMap.from_instruments(rules).instruments == smap.instruments


def test_a_collision_is_refused_with_one_line():
    with pytest.raises(SymbolCollision) as e:
        SymbolMap.coerce({"BTCUSDT": "BTC/USDT", "BTCUSDT-27DEC24": "BTC/USDT"}, "bybit")
    msg = str(e.value)
    assert "\n" not in msg and "'BTCUSDT'" in msg and "'BTCUSDT-27DEC24'" in msg, msg
    assert msg.startswith("bybit: ") and "'BTC/USDT'" in msg, msg
    # a dated contract read without its expiry (a parser bug) cannot shadow spot BTC/USDT
    (spot,) = bybit_instruments(bybit_body("spot"))
    (dated,) = bybit_instruments(dated_body())
    shadow = msgspec.structs.replace(dated, kind="spot", settle="", expiry="")
    with pytest.raises(SymbolCollision, match="both map to 'BTC/USDT'"):
        SymbolMap.from_instruments([spot, shadow])
    with pytest.raises(SymbolCollision, match="both map to 'BTC/USDT'"):
        InstrumentBook("bybit", [spot, shadow])
    # one native name with two symbols is refused as well; the same one again is not
    smap = SymbolMap.from_instruments([spot, dated])
    smap.add(Instrument.of(spot))
    with pytest.raises(SymbolCollision, match="'BTCUSDT' maps to both"):
        smap.add(Instrument(native="BTCUSDT", base="BTC", quote="USDC"))


def test_a_refused_list_is_a_malformed_frame_for_market_data():
    with pytest.raises(MalformedFrame, match="instruments-info failed: 10001"):
        bybit_map(b'{"retCode": 10001, "retMsg": "params error", "result": {}}')
    dup = make_instrument("bybit", "X1", "BTC", "USDT", "spot", Decimal("0.1"), Decimal("1"))
    with pytest.raises(SymbolCollision):
        SymbolMap.from_instruments([dup, msgspec.structs.replace(dup, native_symbol="X2")])
