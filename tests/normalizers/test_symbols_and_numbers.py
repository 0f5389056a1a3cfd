"""Symbol mapping and decimal-string -> float exactness, shared by every venue."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttxt_mp.connectors.binance.normalizer import BinanceNormalizer
from ttxt_mp.connectors.bybit.normalizer import BybitNormalizer
from ttxt_mp.connectors.normalizer import SymbolMap, UnknownSymbol


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("BTCUSDT", "BTC/USDT"), ("ETHBTC", "ETH/BTC"), ("BTCFDUSD", "BTC/FDUSD"),
     ("BTCUSDC", "BTC/USDC"), ("btcusdt", "BTC/USDT"), ("SOLEUR", "SOL/EUR")],
)  # fmt: skip
def test_quote_suffix_fallback(native, symbol):
    smap = SymbolMap()
    assert smap.normalized(native) == symbol
    assert smap.native(symbol) == native.upper()


def test_no_suffix_match_is_an_error_naming_the_symbol():
    with pytest.raises(UnknownSymbol, match="unknown symbol 'XYZ'"):
        SymbolMap(exchange="binance").normalized("XYZ")
    with pytest.raises(UnknownSymbol):
        SymbolMap().normalized("USDT")  # a quote alone has no base


def test_coerce_forms():
    assert SymbolMap.coerce(["BTC/USDT"]).normalized("BTCUSDT") == "BTC/USDT"
    assert SymbolMap.coerce({"XBTUSD": "BTC/USD"}).normalized("XBTUSD") == "BTC/USD"
    assert SymbolMap.coerce({"XBTUSD": "BTC/USD"}).native("BTC/USD") == "XBTUSD"
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        SymbolMap.coerce(["BTCUSDT"])
    with pytest.raises(TypeError):
        SymbolMap.coerce("BTC/USDT")


decimals = st.builds(
    lambda digits, exp: Decimal(digits).scaleb(exp),
    st.integers(min_value=0, max_value=10**15 - 1).map(str),
    st.integers(min_value=-12, max_value=6),
)


@given(price=decimals, qty=decimals)
def test_decimal_strings_with_15_digits_round_trip_exactly(price, qty):
    """A price with <= 15 significant digits decodes to the float nearest to it, so the
    float's shortest repr is the same decimal (no Decimal needed)."""
    p, q = format(price, "f"), format(qty, "f")
    frame = f'{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["{p}","{q}"]],"a":[]}}'
    (ev,) = BinanceNormalizer().normalize(frame, 0)
    ((bp, bq),) = ev.bids
    assert bp == float(p) and bq == float(q)
    assert Decimal(repr(bp)) == price and Decimal(repr(bq)) == qty
    bybit = (
        '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
        f'"data":{{"s":"BTCUSDT","b":[],"a":[["{p}","{q}"]],"u":5,"seq":1}}}}'
    )
    (ev,) = BybitNormalizer().normalize(bybit, 0)
    assert ev.asks == ((float(p), float(q)),)
