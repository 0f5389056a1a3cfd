"""Bybit v5 linear market data: the documented messages (tests/fixtures/exchange_docs.py)
through the normalizer, the ticker delta merge (a property), liquidation sides, topics."""

from __future__ import annotations

import msgspec
import pytest
from fixtures import exchange_docs as docs
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.bybit.normalizer import BybitDenormalizer, BybitNormalizer
from ttxt_mp.connectors.normalizer import Instrument, MalformedFrame, Stream, SymbolMap
from ttxt_mp.events import Liquidation, MarketTrades, MarkPrice, OpenInterest, Orderbook, Side

PERP = Instrument(native="BTCUSDT", base="BTC", quote="USDT", kind="linear", settle="USDT")
ROSE = Instrument(native="ROSEUSDT", base="ROSE", quote="USDT", kind="linear", settle="USDT")
DATED = Instrument(native="BTC-26DEC25", base="BTC", quote="USDT", kind="linear", settle="USDT",
                   expiry="251226")  # fmt: skip


def linear(**kw) -> BybitNormalizer:
    kw.setdefault("mark_price", True)
    kw.setdefault("open_interest", True)
    return BybitNormalizer(SymbolMap([PERP, ROSE, DATED], exchange="bybit"), **kw)


def test_linear_instruments_doc_body_is_a_perpetual():
    [i] = bybit_instruments(docs.BYBIT_INSTRUMENTS_LINEAR.frame)
    assert (i.native_symbol, i.symbol, i.kind, i.settle, i.expiry) == (
        "BTCUSDT", "BTC/USDT:USDT", "linear", "USDT", "")
    assert (float(i.tick_size), float(i.step_size), float(i.min_qty)) == (0.1, 0.001, 0.001)


def test_ticker_snapshot_doc_message_gives_mark_price_and_open_interest():
    n = linear()
    mp, oi = n.normalize(docs.BYBIT_TICKER_LINEAR_PERPETUAL.frame, 5)
    assert mp == MarkPrice(exchange="bybit", symbol="BTC/USDT:USDT", exch_ts=1760325052630 * 10**6,
                           local_ts=5, mark_price=66666.6, index_price=115418.19,
                           funding_rate=-0.005, next_funding_ts=1760342400000 * 10**6)  # fmt: skip
    assert oi == OpenInterest(exchange="bybit", symbol="BTC/USDT:USDT", exch_ts=mp.exch_ts,
                              local_ts=5, open_interest=492373.72,
                              open_interest_value=32824881841.75)  # fmt: skip


def test_dated_future_ticker_has_no_funding():
    """LinearFutures: "nextFundingTime": "", "fundingRate": "" -> 0 (no funding)."""
    mp, oi = linear().normalize(docs.BYBIT_TICKER_LINEAR_FUTURES.frame, 1)
    assert mp.symbol == "BTC/USDT:USDT-251226"
    assert (mp.mark_price, mp.index_price, mp.funding_rate, mp.next_funding_ts) == (
        121144.63, 114132.51, 0.0, 0)
    assert (oi.open_interest, oi.open_interest_value) == (6.622, 802219.74)


def test_a_delta_of_best_bid_ask_only_publishes_nothing():
    """v3 contract docs: snapshot, then a delta with only bid1/ask1 fields."""
    n = linear()
    assert len(n.normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame)) == 2
    assert n.normalize(docs.BYBIT_TICKER_CONTRACT_DELTA.frame) == []
    assert n.tickers.state["BTC/USDT:USDT"][0] == 17247.73  # the snapshot's mark is kept


def _delta(**fields: object) -> bytes:
    return msgspec.json.encode({"topic": "tickers.BTCUSDT", "type": "delta",
                                "data": {"symbol": "BTCUSDT", **fields}, "cs": 2, "ts": 7})


def test_a_delta_publishes_only_the_kind_whose_fields_changed():
    n = linear()
    n.normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame)
    [mp] = n.normalize(_delta(markPrice="17250.00"), 9)
    assert (mp.mark_price, mp.index_price, mp.funding_rate) == (17250.0, 17261.71, -0.000231)
    assert mp.exch_ts == 7 * 10**6 and mp.next_funding_ts == 1673280000000 * 10**6
    [oi] = n.normalize(_delta(openInterest="1", openInterestValue="17250"))
    assert (oi.open_interest, oi.open_interest_value) == (1.0, 17250.0)
    assert n.normalize(_delta(markPrice="17250.00")) == []  # the same value: no change


def test_only_the_asked_kind_is_published():
    n = linear(open_interest=False)
    [mp] = n.normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame)
    assert isinstance(mp, MarkPrice)
    assert n.normalize(_delta(openInterest="5")) == []
    [oi] = linear(mark_price=False).normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame)
    assert isinstance(oi, OpenInterest)


def test_a_delta_before_any_snapshot_is_dropped_and_counted():
    n = linear()
    assert n.normalize(_delta(markPrice="1")) == [] and n.tickers.unsynced == 1


def test_tickers_without_mark_price_or_open_interest_is_unsupported():
    """Spot subscribes no tickers; its documented ticker stays an unsupported topic."""
    n = BybitNormalizer(SymbolMap([PERP], exchange="bybit"))
    assert n.normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame) == []
    assert n.unsupported == 1


@pytest.mark.parametrize(("frame", "cause"), [
    (_delta(markPrice="abc"), "markPrice is not a number"),
    (_delta(markPrice="-1"), "markPrice must be a finite non-negative number"),
    (_delta(openInterest="nan"), "openInterest must be a finite"),
    (_delta(fundingRate="inf"), "fundingRate must be a finite number"),
    (_delta(nextFundingTime="soon"), "nextFundingTime is not a time in ms"),
    (_delta(markPrice=[1]), "Expected `str`, got `array`"),
    (b'{"topic":"tickers.BTCUSDT","type":"update","data":{"symbol":"BTCUSDT"},"ts":1}',
     "ticker type must be snapshot or delta"),
    (b'{"topic":"tickers.BTCUSDT","type":"delta","data":{},"ts":1}', "missing required field"),
])  # fmt: skip
def test_malformed_ticker_messages_name_the_cause(frame, cause):
    n = linear()
    n.normalize(docs.BYBIT_TICKER_CONTRACT_SNAPSHOT.frame)
    before = list(n.tickers.state["BTC/USDT:USDT"])
    with pytest.raises(MalformedFrame, match=cause) as e:
        n.normalize(frame)
    assert "\n" not in str(e.value) and "tickers.BTCUSDT" in str(e.value)
    assert n.tickers.state["BTC/USDT:USDT"] == before, "a bad delta must change nothing"


def test_all_liquidation_doc_message():
    """S is the liquidated POSITION's side ("When you receive a Buy update, this means that
    a long position has been liquidated"): the documented Sell (a short) is a BUY order."""
    [liq] = linear().normalize(docs.BYBIT_ALL_LIQUIDATION.frame, 3)
    assert liq == Liquidation(exchange="bybit", symbol="ROSE/USDT:USDT",
                              exch_ts=1739502302929 * 10**6, local_ts=3, side=Side.BUY,
                              price=0.04499, qty=20000.0)  # fmt: skip
    assert "a long position has been liquidated" in docs.BYBIT_ALL_LIQUIDATION_SIDE[2]


def test_a_long_liquidated_is_a_sell_and_a_batch_gives_one_event_each():
    frame = msgspec.json.encode({"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 9,
                                 "data": [{"T": 1, "s": "BTCUSDT", "S": "Buy", "v": "0.5",
                                           "p": "60000.1"},
                                          {"T": 2, "s": "BTCUSDT", "S": "Sell", "v": "2",
                                           "p": "61000"}]})  # fmt: skip
    a, b = BybitNormalizer(SymbolMap([PERP], exchange="bybit")).normalize(frame)
    assert (a.side, a.price, a.qty, a.exch_ts) == (Side.SELL, 60000.1, 0.5, 10**6)
    assert (b.side, b.price, b.qty, b.exch_ts) == (Side.BUY, 61000.0, 2.0, 2 * 10**6)


@pytest.mark.parametrize(("data", "cause"), [
    ('[{"T":1,"s":"BTCUSDT","S":"Long","v":"1","p":"1"}]', "Long"),
    ('[{"T":1,"s":"BTCUSDT","S":"Buy","v":"-1","p":"1"}]', r"Expected `float` >= 0.0"),
    ('[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1"}]', "missing required field `p`"),
    ('{"T":1}', "Expected `array`"),
])  # fmt: skip
def test_malformed_liquidations_name_the_cause(data, cause):
    frame = ('{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":' + data
             + "}").encode()  # fmt: skip
    with pytest.raises(MalformedFrame, match=cause):
        linear().normalize(frame)


def test_linear_book_trade_and_level1_doc_messages_use_the_perpetual_symbol():
    """The Orderbook/Trade pages' examples (BTCUSDT, with the perps-only ``L``) on linear."""
    n = BybitNormalizer(SymbolMap([PERP], exchange="bybit"), book_depth=50)
    [book] = n.normalize(docs.BYBIT_ORDERBOOK_DELTA.frame)
    assert isinstance(book, Orderbook) and book.symbol == "BTC/USDT:USDT"
    assert book.last_update_id == 177400507 and not book.is_snapshot
    [mt] = n.normalize(docs.BYBIT_TRADE.frame)
    assert isinstance(mt, MarketTrades) and mt.symbol == "BTC/USDT:USDT"
    # "Futures (Level 1): the "ts" field appears before the "type" field"
    l1 = (b'{"topic":"orderbook.1.BTCUSDT","ts":1,"type":"snapshot","data":{"s":"BTCUSDT",'
          b'"b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],"u":5,"seq":7},"cts":1}')
    [t] = BybitNormalizer(SymbolMap([PERP], exchange="bybit"), book_depth=50,
                          book_ticker=True).normalize(l1)  # fmt: skip
    assert (t.symbol, t.bid, t.ask, t.update_id) == ("BTC/USDT:USDT", 16493.5, 16611.0, 5)


def test_linear_acks_and_pongs_are_controls():
    n = linear()
    assert n.normalize(docs.BYBIT_SUBSCRIBE_ACK_LINEAR.frame) == []
    assert n.normalize(docs.BYBIT_PONG_LINEAR.frame) == []
    assert [c.kind for c in n.controls] == ["ack", "pong"] and all(c.ok for c in n.controls)


def test_denormalizer_linear_topics_and_args_limits():
    d = BybitDenormalizer(SymbolMap([PERP], exchange="bybit"), max_args=None)
    streams = [Stream("mark_price", "BTC/USDT:USDT"), Stream("open_interest", "BTC/USDT:USDT"),
               Stream("liquidations", "BTC/USDT:USDT")]  # fmt: skip
    [frame] = d.subscribe(streams, 4)
    assert msgspec.json.decode(frame) == {"req_id": "4", "op": "subscribe",
                                          "args": ["tickers.BTCUSDT", "allLiquidation.BTCUSDT"]}
    # "No args limit for Futures", but an args array is at most 21,000 characters
    many = [Stream("trades", f"S{i:04d}/USDT") for i in range(2000)]
    frames = d.subscribe(many, 1)
    args = [a for f in frames for a in msgspec.json.decode(f)["args"]]
    assert len(args) == 2000 and len(frames) > 1
    assert all(len(msgspec.json.encode(msgspec.json.decode(f)["args"])) <= 21_000
               for f in frames)  # fmt: skip
    spot = BybitDenormalizer(SymbolMap([PERP], exchange="bybit"))  # spot: 10 args a request
    assert len(spot.subscribe(many[:25], 1)) == 3


# ----------------------------------------------------------------- the delta merge, a property

_NUM = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False).map(str)
_FIELDS = {
    "markPrice": _NUM, "indexPrice": _NUM, "openInterest": _NUM, "openInterestValue": _NUM,
    # "" as a dated future sends it: the text path (the others take the numeric one)
    "fundingRate": st.just("") | st.decimals(min_value=-1, max_value=1, places=6).map(str),
    "nextFundingTime": st.just("") | st.integers(0, 4 * 10**12).map(str),
    "bid1Price": _NUM, "lastPrice": _NUM,  # fields that change nothing normalized
}  # fmt: skip
_PARTIAL = st.fixed_dictionaries({}, optional=_FIELDS)
_FULL = st.fixed_dictionaries(_FIELDS)


@settings(max_examples=150, deadline=None)
@given(_FULL, st.lists(_PARTIAL, max_size=30))
def test_merging_partial_deltas_equals_the_full_state(snapshot, deltas):
    """Any snapshot and sequence of partial deltas: the last MarkPrice / OpenInterest
    published equal those of one snapshot of the fully merged state, and nothing is
    published for a delta that changes neither."""
    n, full = linear(), dict(snapshot)
    last = {type(e): e for e in n.normalize(_ticker("snapshot", snapshot), 1)}
    for d in deltas:
        before = dict(full)
        full.update(d)
        out = n.normalize(_ticker("delta", d), 1)
        kinds = {type(e) for e in out}
        mark_changed = any(_num(before[k]) != _num(full[k]) for k in
                           ("markPrice", "indexPrice", "fundingRate", "nextFundingTime"))
        oi_changed = any(_num(before[k]) != _num(full[k]) for k in
                         ("openInterest", "openInterestValue"))  # fmt: skip
        assert (MarkPrice in kinds, OpenInterest in kinds) == (mark_changed, oi_changed)
        last.update({type(e): e for e in out})
    expect = {type(e): e for e in linear().normalize(_ticker("snapshot", full), 1)}
    assert last == expect


def _num(text: str) -> float:
    return float(text) if text else 0.0


def _ticker(kind: str, fields: dict[str, str]) -> bytes:
    return msgspec.json.encode({"topic": "tickers.BTCUSDT", "type": kind, "ts": 1, "cs": 1,
                                "data": {"symbol": "BTCUSDT", **fields}})
