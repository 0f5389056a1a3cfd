"""Bybit v5 normalizer on messages copied from the Bybit API documentation."""

from __future__ import annotations

import msgspec
import pytest
from fixtures import exchange_docs as docs

from ttxt_mp.connectors.bybit.normalizer import (
    BybitDenormalizer,
    BybitNormalizer,
    symbols_from_exchange_info,
)
from ttxt_mp.connectors.normalizer import Control, MalformedFrame, Stream
from ttxt_mp.events import BookTicker, Kline, MarketTrades, Orderbook, Side, Trade

MS = 1_000_000


def one(events):
    assert len(events) == 1
    return events[0]


def test_orderbook_snapshot_doc_message():
    ev = one(BybitNormalizer().normalize(docs.BYBIT_ORDERBOOK_SNAPSHOT.frame, local_ts=8))
    assert ev == Orderbook(
        exchange="bybit",
        symbol="BTC/USDT",
        exch_ts=1672304484978 * MS,
        local_ts=8,
        is_snapshot=True,
        bids=((16493.50, 0.006), (16493.00, 0.100)),
        asks=((16611.00, 0.029), (16612.00, 0.213)),
        first_update_id=18521288,
        last_update_id=18521288,
        seq=7961638724,
    )


def test_orderbook_delta_doc_message():
    ev = one(BybitNormalizer().normalize(docs.BYBIT_ORDERBOOK_DELTA.frame, local_ts=8))
    assert (ev.symbol, ev.is_snapshot, ev.last_update_id, ev.seq, ev.exch_ts) == (
        "BTC/USDT", False, 177400507, 66544703342, 1687940967466 * MS,
    )  # fmt: skip
    assert ev.bids == (
        (30247.20, 30.028), (30245.40, 0.224), (30242.10, 1.593), (30240.30, 1.305),
        (30240.00, 0.0),
    )  # fmt: skip
    assert ev.asks == (
        (30248.70, 0.0), (30249.30, 0.892), (30249.50, 1.778), (30249.60, 0.0),
        (30251.90, 2.947), (30252.20, 0.659), (30252.50, 4.591),
    )  # fmt: skip


def test_u_equal_1_is_a_snapshot_after_a_service_restart():
    frame = docs.BYBIT_ORDERBOOK_DELTA.frame.replace(b'"u": 177400507', b'"u": 1')
    ev = one(BybitNormalizer().normalize(frame, 1))
    assert ev.is_snapshot and ev.last_update_id == 1


def test_trade_doc_message():
    ev = one(BybitNormalizer().normalize(docs.BYBIT_TRADE.frame, 4))
    assert ev == MarketTrades(
        exchange="bybit",
        symbol="BTC/USDT",
        exch_ts=1672304486868 * MS,
        local_ts=4,
        trades=(
            Trade("20f43950-d8dd-5b31-9112-a178eb6023af", 16578.50, 0.001, Side.BUY,
                  1672304486865 * MS),
        ),
    )  # fmt: skip
    sell = docs.BYBIT_TRADE.frame.replace(b'"Buy"', b'"Sell"')
    assert one(BybitNormalizer().normalize(sell, 4)).trades[0].side is Side.SELL


def test_kline_doc_message():
    ev = one(BybitNormalizer().normalize(docs.BYBIT_KLINE.frame, 2))
    assert ev == Kline(
        exchange="bybit",
        symbol="BTC/USDT",
        exch_ts=1672324988882 * MS,
        local_ts=2,
        interval="5m",
        open_ts=1672324800000 * MS,
        close_ts=1672325099999 * MS,
        open=16649.5,
        high=16677.0,
        low=16608.0,
        close=16677.0,
        volume=2.081,
        quote_volume=34666.4005,
        trades=0,
        closed=False,
    )


def test_rest_orderbook_doc_body():
    ev = BybitNormalizer().normalize_snapshot(docs.BYBIT_REST_ORDERBOOK.frame, "BTCUSDT", 6)
    assert ev == Orderbook(
        exchange="bybit",
        symbol="BTC/USDT",
        exch_ts=1672765737733 * MS,
        local_ts=6,
        is_snapshot=True,
        bids=((16638.27, 0.305749),),
        asks=((16638.64, 0.008479),),
        first_update_id=5277055,
        last_update_id=5277055,
    )


def test_rest_error_reply_is_named():
    body = b'{"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}}'
    with pytest.raises(MalformedFrame, match="retCode 10001: params error"):
        BybitNormalizer().normalize_snapshot(body, "BTCUSDT")


def test_instruments_info_doc_body():
    smap = symbols_from_exchange_info(docs.BYBIT_INSTRUMENTS_SPOT.frame)
    assert smap.normalized("BTCUSDT") == "BTC/USDT"
    assert smap.instruments["BTCUSDT"].tick_size == 0.1
    n = BybitNormalizer(symbols=smap)
    assert one(n.normalize(docs.BYBIT_TRADE.frame, 1)).symbol == "BTC/USDT"


def test_control_frames_return_nothing_and_are_recorded():
    n = BybitNormalizer()
    assert n.normalize(docs.BYBIT_SUBSCRIBE_ACK.frame) == []
    assert n.controls[-1] == Control("bybit", "ack", True, "10001", "subscribe: subscribe")
    assert n.normalize(docs.BYBIT_PONG.frame) == []
    assert n.controls[-1].kind == "pong"
    assert n.normalize(docs.BYBIT_PONG_PRIVATE.frame) == []
    assert n.controls[-1] == Control("bybit", "pong", True, "test", "")
    failed = (
        b'{"success": false, "ret_msg": "Invalid symbol :[orderbook.50.NOPE]", "op": "subscribe"}'
    )
    assert n.normalize(failed) == []
    assert n.controls[-1].kind == "error" and not n.controls[-1].ok
    assert "Invalid symbol" in n.controls[-1].message


def test_unsupported_topic_is_counted_not_raised():
    n = BybitNormalizer()
    assert n.normalize(docs.BYBIT_TICKER_SPOT.frame) == []
    assert n.unsupported == 1 and n.controls[-1].message == "tickers.BTCUSDT"


SNAP = docs.BYBIT_ORDERBOOK_SNAPSHOT.frame
TRADE = docs.BYBIT_TRADE.frame


@pytest.mark.parametrize(
    ("frame", "cause"),
    [
        (SNAP[:50], "truncated"),
        (SNAP.replace(b'"u": 18521288,', b""), "missing required field `u`"),
        (SNAP.replace(b'"0.006"', b'"-0.006"'), "`$.b[0][1]`"),
        (SNAP.replace(b'"type": "snapshot"', b'"type": "partial"'), "snapshot or delta"),
        (SNAP.replace(b'"ts": 1672304484978', b'"ts": "soon"'), "`$.ts`"),
        (TRADE.replace(b'"Buy"', b'"Hold"'), "publicTrade.BTCUSDT data"),
        (TRADE.replace(b'"p": "16578.50",', b""), "missing required field `p`"),
        (docs.BYBIT_KLINE.frame.replace(b"kline.5.", b"kline.7."), "kline interval '7'"),
        (b'{"ret_msg": "?"}', "neither 'topic' nor 'op'"),
        (b"[]", "Expected `object`, got `array`"),
    ],
)  # fmt: skip
def test_malformed_frames_name_the_cause(frame, cause):
    with pytest.raises(MalformedFrame) as ei:
        BybitNormalizer().normalize(frame)
    assert ei.value.exchange == "bybit"
    assert cause in ei.value.reason
    assert str(ei.value).startswith("bybit: malformed frame: ")


def test_denormalizer_topics_and_chunked_subscribe():
    d = BybitDenormalizer()
    assert d.topic(Stream("book", "BTC/USDT")) == "orderbook.50.BTCUSDT"
    assert d.topic(Stream("book", "BTC/USDT", depth=200)) == "orderbook.200.BTCUSDT"
    assert d.topic(Stream("trades", "ETH/USDT")) == "publicTrade.ETHUSDT"
    assert d.topic(Stream("kline", "ETH/USDT", interval="1h")) == "kline.60.ETHUSDT"
    streams = [Stream("trades", f"C{i}/USDT") for i in range(23)]
    frames = [msgspec.json.decode(f) for f in d.subscribe(streams, req_id="s")]
    assert [len(f["args"]) for f in frames] == [10, 10, 3]
    assert [f["req_id"] for f in frames] == ["s-0", "s-1", "s-2"]
    assert all(f["op"] == "subscribe" for f in frames)
    with pytest.raises(ValueError, match="no kline interval '2m'"):
        d.topic(Stream("kline", "ETH/USDT", interval="2m"))


def level1(frame: bytes = SNAP, symbol: str = "BTCUSDT") -> bytes:
    """The documented orderbook snapshot as its level-1 topic sends it: one level per side
    (the page gives no level-1 example; "level 1 data has snapshot message only")."""
    msg = msgspec.json.decode(frame)
    msg["topic"] = f"orderbook.1.{symbol}"
    msg["data"]["b"], msg["data"]["a"] = msg["data"]["b"][:1], msg["data"]["a"][:1]
    return msgspec.json.encode(msg)


L1_TICKER = BookTicker(exchange="bybit", symbol="BTC/USDT", exch_ts=1672304484978 * MS,
                       local_ts=3, bid=16493.50, bid_qty=0.006, ask=16611.00, ask_qty=0.029,
                       update_id=18521288)  # fmt: skip


def test_level1_messages_are_book_tickers_when_asked():
    assert docs.BYBIT_ORDERBOOK_LEVEL1_RULES[2].endswith("level 1 data has snapshot message only")
    frame = level1()
    n = BybitNormalizer(book_depth=50, book_ticker=True)
    assert n.normalize(frame, 3) == [L1_TICKER]  # the one-pass path
    pretty = SNAP.replace(b'"orderbook.50.BTCUSDT"', b'"orderbook.1.BTCUSDT"')
    assert n.normalize(pretty, 3) == [L1_TICKER]  # the envelope path: the best of each side
    again = n.normalize(frame.decode(), 4)  # a re-send after 3 s: same u, same ticker
    assert again == [msgspec.structs.replace(L1_TICKER, local_ts=4)]
    # the depth-50 topic is the book; no ticker from it
    assert [type(e) for e in n.normalize(SNAP, 3)] == [Orderbook]
    empty = frame.replace(b'"b":[["16493.50","0.006"]]', b'"b":[]')
    t = one(n.normalize(empty, 3))
    assert (t.bid, t.bid_qty, t.ask) == (0.0, 0.0, 16611.0)  # an empty side is 0


def test_a_depth_1_book_gives_the_book_and_the_ticker_from_each_message():
    n = BybitNormalizer(book_depth=1, book_ticker=True)
    book, ticker = n.normalize(level1(), 3)
    assert ticker == L1_TICKER
    assert (book.is_snapshot, book.bids, book.asks, book.last_update_id) == (
        True, ((16493.50, 0.006),), ((16611.00, 0.029),), 18521288)
    assert [type(e) for e in BybitNormalizer(book_depth=1).normalize(level1(), 3)] == [Orderbook]
    # without a book: level 1 gives only tickers; another depth's topic is not normalized
    n = BybitNormalizer(book_depth=0, book_ticker=True)
    assert n.normalize(level1(), 3) == [L1_TICKER]
    assert n.normalize(SNAP, 3) == [] and n.controls[-1].message == "orderbook.50.BTCUSDT"
    # a normalizer told nothing keeps every orderbook topic a book, as before
    assert [type(e) for e in BybitNormalizer().normalize(level1(), 3)] == [Orderbook]


@pytest.mark.parametrize(
    ("frame", "cause"),
    [
        (level1().replace(b'"0.029"', b'"-1"'), "`$.a[0][1]`"),
        (level1().replace(b'"type":"snapshot"', b'"type":"partial"'), "snapshot or delta"),
        (level1().replace(b"orderbook.1.", b"orderbook.x."), "bad orderbook depth 'x'"),
        (level1().replace(b',"u":18521288', b""), "missing required field `u`"),
    ],
)  # fmt: skip
def test_malformed_level1_messages_name_the_cause(frame, cause):
    with pytest.raises(MalformedFrame) as ei:
        BybitNormalizer(book_depth=50, book_ticker=True).normalize(frame)
    assert cause in ei.value.reason, ei.value.reason


def test_book_ticker_is_the_level1_topic_subscribed_once():
    d = BybitDenormalizer()
    assert d.topic(Stream("book_ticker", "BTC/USDT")) == "orderbook.1.BTCUSDT"
    both = [Stream("book", "BTC/USDT", depth=1), Stream("book_ticker", "BTC/USDT"),
            Stream("trades", "BTC/USDT")]  # fmt: skip
    (frame,) = d.subscribe(both, req_id=7)
    assert msgspec.json.decode(frame)["args"] == ["orderbook.1.BTCUSDT", "publicTrade.BTCUSDT"]


def test_compact_wire_frames_take_the_one_pass_path_with_the_same_result():
    n = BybitNormalizer()
    for doc in (docs.BYBIT_ORDERBOOK_SNAPSHOT, docs.BYBIT_ORDERBOOK_DELTA):
        wire = msgspec.json.encode(msgspec.json.decode(doc.frame))
        assert wire.startswith(b'{"topic":"orderbook.')
        assert n.normalize(wire, 1) == n.normalize(doc.frame, 1)
        assert n.normalize(wire.decode(), 1) == n.normalize(doc.frame, 1)
    bad = msgspec.json.encode(msgspec.json.decode(SNAP)).replace(b'"u":18521288', b'"u":"x"')
    with pytest.raises(MalformedFrame, match=r"orderbook.50.BTCUSDT data: .*`\$.u`"):
        n.normalize(bad)
