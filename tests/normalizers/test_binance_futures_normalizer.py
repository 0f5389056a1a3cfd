"""Binance USDⓈ-M futures messages (tests/fixtures/binance_futures_docs.py, each citing its
documentation page) through the Binance normalizer, the instrument parser and the
denormalizer; every bad input is a one-line MalformedFrame / InstrumentsError."""

from __future__ import annotations

import json

import msgspec
import pytest
from fixtures import binance_futures_docs as fut

from ttxt_mp.codec import layout_for
from ttxt_mp.connectors.binance.instruments import binance_linear_instruments
from ttxt_mp.connectors.binance.normalizer import BinanceDenormalizer, BinanceNormalizer
from ttxt_mp.connectors.instruments import InstrumentsError
from ttxt_mp.connectors.normalizer import MalformedFrame, Stream, SymbolMap
from ttxt_mp.events import (
    BookTicker,
    Kline,
    Liquidation,
    MarketTrades,
    MarkPrice,
    OpenInterest,
    Orderbook,
    Side,
    Trade,
)

MS = 1_000_000
PERPS = SymbolMap.from_instruments(binance_linear_instruments(json.dumps({"symbols": [
    {"symbol": s, "baseAsset": s[:-4], "quoteAsset": "USDT", "marginAsset": "USDT",
     "contractType": "PERPETUAL", "deliveryDate": 4133404800000}
    for s in ("BTCUSDT", "BNBUSDT")]})))  # fmt: skip


def one(events):
    assert len(events) == 1
    return events[0]


def layouts(stream: str, frame: bytes) -> list:
    """The raw payload and the combined wrapper, as bytes and as str."""
    wrapped = b'{"stream":"' + stream.encode() + b'","data":' + frame + b"}"
    return [frame, wrapped, frame.decode(), wrapped.decode()]


def normalize_all(stream: str, doc) -> list:
    n = BinanceNormalizer(PERPS)
    evs = [one(n.normalize(f, 7)) for f in layouts(stream, doc.frame)]
    assert all(e == evs[0] for e in evs), evs
    return evs[0]


def test_diff_depth_doc_message_keeps_pu():
    assert normalize_all("btcusdt@depth@100ms", fut.DEPTH_UPDATE) == Orderbook(
        exchange="binance", symbol="BTC/USDT:USDT", exch_ts=123456789 * MS, local_ts=7,
        bids=((0.0024, 10.0),), asks=((0.0026, 100.0),), first_update_id=157,
        last_update_id=160, prev_update_id=149,
    )  # fmt: skip


def test_agg_trade_doc_message():
    assert normalize_all("btcusdt@aggTrade", fut.AGG_TRADE) == MarketTrades(
        exchange="binance", symbol="BTC/USDT:USDT", exch_ts=123456789 * MS, local_ts=7,
        trades=(Trade("5933014", 0.001, 100.0, Side.SELL, 123456785 * MS),),  # m: maker buyer
    )  # fmt: skip


def test_kline_doc_message():
    k = normalize_all("btcusdt@kline_1m", fut.KLINE)
    assert isinstance(k, Kline) and k.symbol == "BTC/USDT:USDT" and k.interval == "1m"
    assert (k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.trades, k.closed) == (
        0.001, 0.0025, 0.0015, 0.002, 1000.0, 1.0, 100, False)
    assert (k.open_ts, k.close_ts) == (1638747660000 * MS, 1638747719999 * MS)


def test_book_ticker_doc_message_has_an_event_time():
    assert normalize_all("bnbusdt@bookTicker", fut.BOOK_TICKER) == BookTicker(
        exchange="binance", symbol="BNB/USDT:USDT", exch_ts=1568014460893 * MS, local_ts=7,
        bid=25.3519, bid_qty=31.21, ask=25.3652, ask_qty=40.66, update_id=400900217,
    )  # fmt: skip


def test_mark_price_doc_message():
    assert normalize_all("btcusdt@markPrice@1s", fut.MARK_PRICE) == MarkPrice(
        exchange="binance", symbol="BTC/USDT:USDT", exch_ts=1562305380000 * MS, local_ts=7,
        mark_price=11794.15, index_price=11784.62659091, funding_rate=0.00038167,
        next_funding_ts=1562306400000 * MS,
    )  # fmt: skip


def test_mark_price_of_a_delivery_contract_has_no_funding():
    """The page: "" for a delivery symbol's funding rate and 0 for its next funding time."""
    msg = json.loads(fut.MARK_PRICE.frame) | {"s": "BTCUSDT", "r": "", "T": 0}
    ev = one(BinanceNormalizer(PERPS).normalize(json.dumps(msg), 1))
    assert (ev.funding_rate, ev.next_funding_ts, ev.mark_price) == (0.0, 0, 11794.15)
    neg = one(BinanceNormalizer(PERPS).normalize(json.dumps(msg | {"r": "-0.00012"}), 1))
    assert neg.funding_rate == -0.00012  # funding is paid both ways


def test_force_order_doc_message_is_a_liquidation():
    """SELL: a long position was liquidated; price = average price, qty = filled qty."""
    assert normalize_all("btcusdt@forceOrder", fut.FORCE_ORDER) == Liquidation(
        exchange="binance", symbol="BTC/USDT:USDT", exch_ts=1568014460893 * MS, local_ts=7,
        side=Side.SELL, price=9910.0, qty=0.014,
    )  # fmt: skip
    o = json.loads(fut.FORCE_ORDER.frame)
    o["o"] |= {"S": "BUY", "p": "9920", "ap": "9915.5", "z": "0.010"}
    ev = one(BinanceNormalizer(PERPS).normalize(json.dumps(o), 1))
    assert (ev.side, ev.price, ev.qty) == (Side.BUY, 9915.5, 0.010)


def test_open_interest_doc_body():
    assert BinanceNormalizer(PERPS).normalize_open_interest(fut.OPEN_INTEREST.frame, 9) == (
        OpenInterest(exchange="binance", symbol="BTC/USDT:USDT", exch_ts=1589437530011 * MS,
                     local_ts=9, open_interest=10659.509, open_interest_value=0.0))  # fmt: skip


def test_futures_depth_snapshot_doc_body_takes_the_message_time():
    snap = BinanceNormalizer(PERPS).normalize_snapshot(fut.DEPTH_SNAPSHOT.frame, "BTCUSDT", 5)
    assert snap.is_snapshot and snap.last_update_id == 1027024 and snap.symbol == "BTC/USDT:USDT"
    assert snap.exch_ts == 1589436922972 * MS and snap.bids == ((4.0, 431.0),)


@pytest.mark.parametrize(("frame", "cause"), [
    ('{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","r":"abc","T":0}',
     "funding rate 'abc' is not a number"),
    ('{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","r":"nan","T":0}',
     "funding rate 'nan' is not a number"),
    ('{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"-1","r":"0","T":0}', "$.p"),
    ('{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","r":"0","T":0}', "missing required field `p`"),
    ('{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"LONG","q":"1","p":"1"}}', "$.o.S"),
    ('{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","p":"1"}}', "missing required field `q`"),
    ('{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1}}', "missing required field `o`"),
    ('{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"x","B":"1","a":"1","A":"1"}', "$.b"),
])  # fmt: skip
def test_malformed_futures_frames_name_the_cause(frame, cause):
    with pytest.raises(MalformedFrame) as info:
        BinanceNormalizer(PERPS).normalize(frame, 1)
    msg = str(info.value)
    assert cause in msg and "\n" not in msg, msg


@pytest.mark.parametrize(("body", "cause"), [
    (b'{"code":-1121,"msg":"Invalid symbol."}', "error reply code -1121: Invalid symbol."),
    (b'{"openInterest":"x","symbol":"BTCUSDT","time":1}', "$.openInterest"),
    (b'{"openInterest":"1","symbol":"BTCUSDT"}', "missing required field `time`"),
    (b"<html>502</html>", "malformed"),
])  # fmt: skip
def test_bad_open_interest_bodies_are_one_line(body, cause):
    with pytest.raises(MalformedFrame) as info:
        BinanceNormalizer(PERPS).normalize_open_interest(body)
    assert cause in str(info.value) and "\n" not in str(info.value)


def test_new_events_encode_into_a_ring_slot():
    n = BinanceNormalizer(PERPS)
    evs = [one(n.normalize(d.frame, 1)) for d in (fut.MARK_PRICE, fut.FORCE_ORDER)]
    evs.append(n.normalize_open_interest(fut.OPEN_INTEREST.frame, 1))
    buf = bytearray(4096)
    for ev in evs:
        lay = layout_for(type(ev))
        size = lay.pack_into(buf, 0, ev)
        assert lay.unpack_from(buf, 0) == (ev, size)


# ----------------------------------------------------------------- instruments


def test_exchange_info_doc_body_is_a_linear_perpetual():
    (ins,) = binance_linear_instruments(fut.EXCHANGE_INFO.frame)
    assert (ins.native_symbol, ins.symbol, ins.kind, ins.settle, ins.expiry) == (
        "BLZUSDT", "BLZ/USDT:USDT", "linear", "USDT", "")
    assert (str(ins.tick_size), str(ins.step_size), str(ins.min_notional)) == ("0.0001", "1", "5.0")
    assert (str(ins.min_qty), str(ins.max_qty), str(ins.max_price)) == ("1", "10000000", "300")


def _info(**sym) -> bytes:
    body = json.loads(fut.EXCHANGE_INFO.frame)
    body["symbols"][0] |= sym
    return json.dumps(body).encode()


def test_delivery_contract_carries_its_utc_delivery_date():
    (ins,) = binance_linear_instruments(_info(symbol="BTCUSDT_250627", baseAsset="BTC",
                                              contractType="CURRENT_QUARTER",
                                              deliveryDate=1751011200000))  # fmt: skip
    assert ins.symbol == "BTC/USDT:USDT-250627" and ins.expiry == "250627"
    (ins,) = binance_linear_instruments(_info(symbol="BTCUSDC", baseAsset="BTC",
                                              quoteAsset="USDC", marginAsset="USDC"))  # fmt: skip
    assert ins.symbol == "BTC/USDC:USDC"
    (ins,) = binance_linear_instruments(_info(contractType="PERPETUAL_DELIVERING",
                                              deliveryDate=1751011200000))  # fmt: skip
    assert ins.symbol == "BLZ/USDT:USDT"  # a delisting perpetual keeps its name


def test_perpetual_and_quarterly_of_one_pair_do_not_collide():
    body = json.loads(fut.EXCHANGE_INFO.frame)
    perp = body["symbols"][0] | {"symbol": "BTCUSDT", "baseAsset": "BTC"}
    body["symbols"] = [perp, perp | {"symbol": "BTCUSDT_250926", "contractType": "NEXT_QUARTER",
                                     "deliveryDate": 1758873600000}]  # fmt: skip
    smap = SymbolMap.from_instruments(binance_linear_instruments(json.dumps(body)))
    assert smap.normalized("BTCUSDT") == "BTC/USDT:USDT"
    assert smap.normalized("BTCUSDT_250926") == "BTC/USDT:USDT-250926"
    assert smap.native("BTC/USDT:USDT-250926") == "BTCUSDT_250926"


@pytest.mark.parametrize(("body", "cause"), [
    (b'{"symbols": 5}', "malformed exchangeInfo"),
    (b"not json", "malformed exchangeInfo"),
    (_info(contractType="CURRENT_QUARTER", deliveryDate=0), "has no deliveryDate"),
    (_info(filters=[{"filterType": "PRICE_FILTER", "tickSize": "abc"}]), "tickSize"),
])  # fmt: skip
def test_bad_exchange_info_is_one_line(body, cause):
    with pytest.raises(InstrumentsError) as info:
        binance_linear_instruments(body)
    assert cause in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------- subscriptions


def test_denormalizer_names_the_futures_streams():
    d = BinanceDenormalizer(PERPS)
    sym = "BTC/USDT:USDT"
    assert d.topic(Stream("mark_price", sym)) == "btcusdt@markPrice@1s"
    assert d.topic(Stream("liquidations", sym)) == "btcusdt@forceOrder"
    assert d.topic(Stream("agg_trades", sym)) == "btcusdt@aggTrade"
    with pytest.raises(ValueError, match="polled over REST"):
        d.topic(Stream("open_interest", sym))
    frame = msgspec.json.decode(one(d.subscribe([Stream("mark_price", sym)], 3)))
    assert frame == {"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 3}
