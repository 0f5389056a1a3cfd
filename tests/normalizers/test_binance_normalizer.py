"""Binance normalizer on messages copied from the Binance API documentation."""

from __future__ import annotations

import json

import msgspec
import pytest
from fixtures import exchange_docs as docs

from ttxt_mp.codec import layout_for
from ttxt_mp.connectors.binance.normalizer import (
    BinanceDenormalizer,
    BinanceNormalizer,
    symbols_from_exchange_info,
)
from ttxt_mp.connectors.normalizer import Control, MalformedFrame, Stream, UnknownSymbol
from ttxt_mp.events import BookTicker, Kline, MarketTrades, Orderbook, Side, Trade

MS = 1_000_000


def one(events):
    assert len(events) == 1
    return events[0]


def combined(stream: str, frame: bytes) -> bytes:
    return b'{"stream":"' + stream.encode() + b'","data":' + frame + b"}"


def test_depth_update_doc_message():
    ev = one(BinanceNormalizer().normalize(docs.BINANCE_DEPTH_UPDATE.frame, local_ts=42))
    assert ev == Orderbook(
        exchange="binance",
        symbol="BNB/BTC",
        exch_ts=1672515782136 * MS,
        local_ts=42,
        is_snapshot=False,
        bids=((0.0024, 10.0),),
        asks=((0.0026, 100.0),),
        first_update_id=157,
        last_update_id=160,
        prev_update_id=-1,
        seq=-1,
    )


def test_combined_stream_wrapper_and_str_input_give_the_same_event():
    n = BinanceNormalizer()
    raw = docs.BINANCE_DEPTH_UPDATE.frame
    expected = one(n.normalize(raw, 1))
    assert one(n.normalize(combined("bnbbtc@depth@100ms", raw), 1)) == expected
    assert one(n.normalize(raw.decode(), 1)) == expected
    assert one(n.normalize(combined("bnbbtc@depth", raw).decode(), 1)) == expected
    assert one(n.normalize(memoryview(raw), 1)) == expected


def test_futures_depth_update_keeps_pu_and_event_time():
    ev = one(BinanceNormalizer().normalize(docs.BINANCE_FUTURES_DEPTH_UPDATE.frame, 7))
    assert (ev.symbol, ev.first_update_id, ev.last_update_id, ev.prev_update_id) == (
        "BTC/USDT", 157, 160, 149,
    )  # fmt: skip
    assert ev.exch_ts == 123456789 * MS
    assert ev.bids == ((0.0024, 10.0),) and ev.asks == ((0.0026, 100.0),)


def test_trade_doc_message_buyer_is_maker_means_taker_sold():
    ev = one(BinanceNormalizer().normalize(docs.BINANCE_TRADE.frame, 5))
    assert isinstance(ev, MarketTrades)
    assert (ev.exchange, ev.symbol, ev.exch_ts, ev.local_ts) == (
        "binance", "BNB/BTC", 1672515782136 * MS, 5,
    )  # fmt: skip
    (t,) = ev.trades
    assert (t.id, t.price, t.qty, t.side, t.ts) == ("12345", 0.001, 100.0, Side.SELL,
                                                    1672515782136 * MS)  # fmt: skip


def test_trade_buyer_taker_is_buy():
    frame = docs.BINANCE_TRADE.frame.replace(b'"m": true', b'"m": false')
    assert one(BinanceNormalizer().normalize(frame, 5)).trades[0].side is Side.BUY


def test_kline_doc_message():
    ev = one(BinanceNormalizer().normalize(docs.BINANCE_KLINE.frame, 3))
    assert ev == Kline(
        exchange="binance",
        symbol="BNB/BTC",
        exch_ts=1672515782136 * MS,
        local_ts=3,
        interval="1m",
        open_ts=1672515780000 * MS,
        close_ts=1672515839999 * MS,
        open=0.0010,
        high=0.0025,
        low=0.0015,
        close=0.0020,
        volume=1000.0,
        quote_volume=1.0,
        trades=100,
        closed=False,
    )


def test_microsecond_time_unit():
    ev = one(BinanceNormalizer(time_unit="us").normalize(docs.BINANCE_TRADE.frame, 1))
    assert ev.exch_ts == 1672515782136 * 1000
    with pytest.raises(ValueError, match="time_unit"):
        BinanceNormalizer(time_unit="s")


def test_rest_depth_snapshot_doc_body():
    n = BinanceNormalizer()
    ev = n.normalize_snapshot(docs.BINANCE_DEPTH_SNAPSHOT.frame, "BNBBTC", local_ts=9)
    assert ev == Orderbook(
        exchange="binance",
        symbol="BNB/BTC",
        exch_ts=9,  # spot's body has no time: the local receive time, never 0 (1970)
        local_ts=9,
        is_snapshot=True,
        bids=((4.0, 431.0),),
        asks=((4.000002, 12.0),),
        first_update_id=1027024,
        last_update_id=1027024,
    )
    assert n.normalize_snapshot(docs.BINANCE_DEPTH_SNAPSHOT.frame, "BNB/BTC", 9) == ev


def test_rest_error_body_is_named():
    body = b'{"code": -1121, "msg": "Invalid symbol."}'
    with pytest.raises(MalformedFrame, match=r"code -1121: Invalid symbol"):
        BinanceNormalizer().normalize_snapshot(body, "BNBBTC")


def test_exchange_info_doc_body_builds_the_symbol_map():
    smap = symbols_from_exchange_info(docs.BINANCE_EXCHANGE_INFO.frame)
    assert smap.normalized("ETHBTC") == "ETH/BTC"
    assert smap.native("ETH/BTC") == "ETHBTC"
    # no PRICE_FILTER: the quote asset precision, as trading reads the same list
    assert smap.instruments["ETHBTC"].tick_size == 1e-8
    info = json.loads(docs.BINANCE_EXCHANGE_INFO.frame)
    info["symbols"][0]["filters"] = [json.loads(docs.BINANCE_PRICE_FILTER.frame)]
    smap = symbols_from_exchange_info(json.dumps(info))
    assert smap.instruments["ETHBTC"].tick_size == 0.000001


def test_exchange_info_map_overrides_the_suffix_rule():
    info = json.loads(docs.BINANCE_EXCHANGE_INFO.frame)
    info["symbols"][0].update(symbol="ABCUSDT", baseAsset="ABCUSD", quoteAsset="T")
    n = BinanceNormalizer(symbols=symbols_from_exchange_info(json.dumps(info)))
    frame = docs.BINANCE_TRADE.frame.replace(b'"BNBBTC"', b'"ABCUSDT"')
    assert one(n.normalize(frame, 1)).symbol == "ABCUSD/T"


def test_control_frames_return_nothing_and_are_recorded():
    n = BinanceNormalizer()
    assert n.normalize(docs.BINANCE_SUBSCRIBE_RESPONSE.frame) == []
    assert n.controls[-1] == Control("binance", "ack", True, "1", "")
    assert n.normalize(docs.BINANCE_LIST_SUBSCRIPTIONS_RESPONSE.frame) == []
    assert n.controls[-1].id == "3" and "btcusdt@aggTrade" in n.controls[-1].message
    assert n.normalize(docs.BINANCE_ERROR_MESSAGE.frame) == []
    err = n.controls[-1]
    assert (err.kind, err.ok) == ("error", False)
    assert err.message == "code 2: Invalid request: property name must be a string"


def test_unsupported_stream_event_is_counted_not_raised():
    n = BinanceNormalizer()
    assert n.normalize(docs.BINANCE_MINI_TICKER.frame) == []
    assert n.normalize(combined("bnbbtc@miniTicker", docs.BINANCE_MINI_TICKER.frame)) == []
    assert n.unsupported == 2
    assert n.controls[-1] == Control("binance", "unsupported", True, "", "24hrMiniTicker")


def compact(frame: bytes) -> bytes:
    """A documented example as Binance sends it: no whitespace."""
    return msgspec.json.encode(msgspec.json.decode(frame))


BOOK_TICKER = BookTicker(exchange="binance", symbol="BNB/USDT", exch_ts=0, local_ts=42,
                         bid=25.3519, bid_qty=31.21, ask=25.3652, ask_qty=40.66,
                         update_id=400900217)  # fmt: skip


def test_book_ticker_doc_message_in_every_layout():
    """Individual Symbol Book Ticker Streams: no event type and no time (exch_ts 0); raw or
    in the combined wrapper, compact (the wire) or as the page prints it, bytes or str."""
    n = BinanceNormalizer()
    doc = docs.BINANCE_BOOK_TICKER.frame
    wire = compact(doc)
    assert wire.startswith(b'{"u":400900217,')
    frames = [doc, wire, combined("bnbusdt@bookTicker", wire), combined("bnbusdt@bookTicker", doc),
              wire.decode(), combined("bnbusdt@bookTicker", wire).decode(),
              b'{"data":' + wire + b',"stream":"bnbusdt@bookTicker"}',
              b'{"s":"BNBUSDT","A":"40.66","a":"25.3652","B":"31.21","b":"25.3519","u":400900217}']
    for frame in frames:
        assert n.normalize(frame, local_ts=42) == [BOOK_TICKER], frame
    assert n.unsupported == 0 and not n.controls  # neither malformed nor unsupported


def test_agg_trade_doc_message_is_one_trade_with_the_aggregate_id():
    """Aggregate Trade Streams: ``a`` is the trade id; ``f``/``l`` (the trades it sums) are
    not kept; m=true: the buyer was the maker, the taker sold."""
    n = BinanceNormalizer()
    expected = MarketTrades(
        exchange="binance", symbol="BNB/BTC", exch_ts=1672515782136 * MS, local_ts=5,
        trades=(Trade("12345", 0.001, 100.0, Side.SELL, 1672515782136 * MS),),
    )  # fmt: skip
    doc = docs.BINANCE_AGG_TRADE.frame
    for frame in (doc, compact(doc), combined("bnbbtc@aggTrade", compact(doc))):
        assert n.normalize(frame, local_ts=5) == [expected]
    buyer_taker = compact(doc).replace(b'"m":true', b'"m":false')
    assert one(n.normalize(buyer_taker, 5)).trades[0].side == Side.BUY


DEPTH = docs.BINANCE_DEPTH_UPDATE.frame


@pytest.mark.parametrize(
    ("frame", "cause"),
    [
        (DEPTH[:40], "truncated"),
        (b"not json at all", "malformed"),
        (DEPTH.replace(b'"U": 157', b'"U": "abc"'), "`$.U`"),
        (DEPTH.replace(b'"u": 160,', b""), "missing required field `u`"),
        (DEPTH.replace(b'"10"', b'"-10"'), ">= 0.0 - at `$.b[0][1]`"),
        (DEPTH.replace(b'"0.0024"', b'"nan"'), "`$.b[0][0]`"),
        (DEPTH.replace(b'"0.0024"', b'"1e999"'), "`$.b[0][0]`"),
        (DEPTH.replace(b'"0.0024"', b'"twelve"'), "Expected `float`, got `str`"),
        (DEPTH.replace(b'"b": [', b'"b": 5, "x": ['), "`$.b`"),
        (combined("bnbbtc@depth", DEPTH.replace(b'"E": 1672515782136, ', b'"E": "x", ')),
         "`$.data.E`"),
        (b'[{"e": "depthUpdate"}]', "array"),
        (b'{"hello": "world"}', "missing required field `e`"),
    ],
)  # fmt: skip
def test_malformed_frames_name_the_cause(frame, cause):
    with pytest.raises(MalformedFrame) as ei:
        BinanceNormalizer().normalize(frame)
    e = ei.value
    assert e.exchange == "binance"
    assert cause in e.reason
    assert str(e).startswith("binance: malformed frame: ")
    assert e.excerpt == frame[:160].decode("utf-8", "replace") + ("..." if len(frame) > 160 else "")


TICKER = compact(docs.BINANCE_BOOK_TICKER.frame)


@pytest.mark.parametrize(
    ("frame", "cause"),
    [
        (TICKER.replace(b'"25.35190000"', b'"-1"'), "bookTicker: Expected `float` >= 0.0 - at `$.b`"),
        (TICKER.replace(b',"A":"40.66000000"', b""), "bookTicker: Object missing required field `A`"),
        (TICKER.replace(b'400900217', b'"x"'), "bookTicker: Expected `int`, got `str` - at `$.u`"),
        (combined("bnbusdt@bookTicker", TICKER.replace(b'"40.66000000"', b'"nan"')),
         "bookTicker: Expected `float` >= 0.0 - at `$.data.A`"),
        (combined("bnbusdt@bookTicker", b"[]"), "Expected `object`, got `array` - at `$.data`"),
        (TICKER[:30], "bookTicker: Input data was truncated"),
        (compact(docs.BINANCE_AGG_TRADE.frame).replace(b'"a":12345', b'"a":"x"'), "`$.a`"),
    ],
)  # fmt: skip
def test_malformed_book_tickers_and_agg_trades_name_the_cause(frame, cause):
    with pytest.raises(MalformedFrame) as ei:
        BinanceNormalizer().normalize(frame)
    assert ei.value.exchange == "binance" and cause in ei.value.reason, ei.value.reason


def test_unknown_symbol_is_refused_not_guessed():
    frame = DEPTH.replace(b'"BNBBTC"', b'"WHATEVER"')
    with pytest.raises(UnknownSymbol, match="unknown symbol 'WHATEVER'"):
        BinanceNormalizer().normalize(frame)


def test_excerpt_is_truncated():
    frame = b'{"e": "depthUpdate", "junk": "' + b"x" * 5000
    with pytest.raises(MalformedFrame) as ei:
        BinanceNormalizer().normalize(frame)
    assert len(ei.value.excerpt) == 163 and ei.value.excerpt.endswith("...")


def test_events_are_immutable_and_encode_into_a_ring_slot():
    n = BinanceNormalizer()
    buf = bytearray(4096)
    for fx in (docs.BINANCE_DEPTH_UPDATE, docs.BINANCE_TRADE, docs.BINANCE_KLINE,
               docs.BINANCE_AGG_TRADE, docs.BINANCE_BOOK_TICKER):
        ev = one(n.normalize(fx.frame, 11))
        with pytest.raises(AttributeError):
            ev.symbol = "X/Y"
        lay = layout_for(type(ev))
        size = lay.pack_into(buf, 0, ev)
        back, used = lay.unpack_from(buf, 0)
        assert used == size and back == ev


def test_denormalizer_builds_documented_subscribe_frames():
    d = BinanceDenormalizer()
    streams = [Stream("book", "BTC/USDT"), Stream("trades", "BTC/USDT"),
               Stream("kline", "BNB/BTC", interval="1m")]  # fmt: skip
    (frame,) = d.subscribe(streams, req_id=1)
    assert msgspec.json.decode(frame) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@depth@100ms", "btcusdt@trade", "bnbbtc@kline_1m"],
        "id": 1,
    }
    (frame,) = d.unsubscribe(streams[:1], req_id=312)
    assert msgspec.json.decode(frame)["method"] == "UNSUBSCRIBE"
    assert [d.topic(Stream(ch, "BNB/USDT")) for ch in ("book_ticker", "agg_trades")] == [
        "bnbusdt@bookTicker", "bnbusdt@aggTrade"]  # the documented stream names
    with pytest.raises(ValueError, match="depth=0"):
        d.topic(Stream("book", "BTC/USDT", depth=20))
    with pytest.raises(ValueError, match="unknown channel"):
        d.topic(Stream("ticker", "BTC/USDT"))


def test_combined_wrapper_in_any_layout():
    n = BinanceNormalizer()
    expected = one(n.normalize(DEPTH, 1))
    data_first = b'{"data":' + DEPTH + b',"stream":"bnbbtc@depth"}'
    spaced = b'{ "stream" : "bnbbtc@depth", "data" : ' + DEPTH + b"}"
    assert one(n.normalize(data_first, 1)) == expected
    assert one(n.normalize(spaced, 1)) == expected
    broken = b'{"data":' + DEPTH.replace(b'"u": 160', b'"u": "x"') + b',"stream":"s"}'
    with pytest.raises(MalformedFrame, match=r"`\$.data.u`"):
        n.normalize(broken)
