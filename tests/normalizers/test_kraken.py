"""Kraken v2: the documentation's example messages through the normalizer, the book checksum
against the guide's worked example, the AssetPairs instrument list, subscription frames,
and the book sync (truncation + checksum) as a property against a model of the venue."""

from __future__ import annotations

import zlib

import msgspec
import pytest
from fixtures import kraken_docs as docs
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.instruments import InstrumentsError
from ttxt_mp.connectors.kraken.checksum import BookChecksum, checksum, level_text
from ttxt_mp.connectors.kraken.instruments import kraken_instruments
from ttxt_mp.connectors.kraken.normalizer import KrakenDenormalizer, KrakenNormalizer
from ttxt_mp.connectors.kraken.sync import KrakenBookSync
from ttxt_mp.connectors.kraken.timestamps import rfc3339_ns
from ttxt_mp.connectors.normalizer import MalformedFrame, Stream
from ttxt_mp.events import BookTicker, Kline, MarketTrades, Orderbook, Side
from ttxt_mp.orderbook import OrderBook

SYMS = ["BTC/USD", "MATIC/USD", "ALGO/USD", "ETH/BTC"]


def norm() -> KrakenNormalizer:
    return KrakenNormalizer({s: s for s in SYMS})


# ------------------------------------------------------------------ checksum


def test_checksum_of_the_guides_worked_example():
    [book] = norm().normalize(docs.CHECKSUM_SNAPSHOT.frame, 1)
    assert isinstance(book, Orderbook) and book.is_snapshot
    pd, qd = docs.CHECKSUM_PRECISION
    asks_text = "".join(level_text(p, pd) + level_text(q, qd) for p, q in book.asks)
    assert asks_text == docs.CHECKSUM_ASKS_TEXT
    assert level_text(45285.2, 1) == "452852" and level_text(0.001, 8) == "100000"
    assert checksum(book.asks, book.bids, pd, qd) == docs.CHECKSUM_VALUE
    assert BookChecksum(pd, qd).of(list(book.asks), list(book.bids)) == docs.CHECKSUM_VALUE


def test_checksum_covers_only_the_top_ten_levels():
    [book] = norm().normalize(docs.CHECKSUM_SNAPSHOT.frame, 1)
    deeper = [*book.asks, (45300.0, 1.0), (45301.0, 2.0)]
    assert BookChecksum(1, 8).of(deeper, list(book.bids)) == docs.CHECKSUM_VALUE


def test_sync_checks_the_documented_snapshot_and_refuses_a_wrong_one():
    n = norm()
    [book] = n.normalize(docs.CHECKSUM_SNAPSHOT.frame, 1)
    sync = KrakenBookSync("BTC/USD", 10, BookChecksum(1, 8))
    assert sync.on_event(book, n.checksums["BTC/USD"]) == [book]
    assert not sync.needs_resync
    bad = KrakenBookSync("BTC/USD", 10, BookChecksum(1, 8))
    assert bad.on_event(book, docs.CHECKSUM_VALUE + 1) == []
    assert bad.needs_resync and bad.resyncs == 1 and "checksum mismatch" in bad.last_gap
    off = KrakenBookSync("BTC/USD", 10, None)  # checksum = false
    assert off.on_event(book, 12345) == [book] and not off.needs_resync


# ------------------------------------------------------------------ normalizer


def test_book_update_example():
    n = norm()
    [ev] = n.normalize(docs.BOOK_UPDATE.frame, 7)
    assert ev == Orderbook(exchange="kraken", symbol="MATIC/USD", local_ts=7,
                           exch_ts=rfc3339_ns("2023-10-06T17:35:55.440295Z"),
                           bids=((0.5657, 1098.3947558),), asks=())  # fmt: skip
    assert n.checksums["MATIC/USD"] == 2114181697


def test_trades_ticker_ohlc_examples():
    n = norm()
    [mt] = n.normalize(docs.TRADE_SNAPSHOT.frame, 1)
    assert isinstance(mt, MarketTrades) and mt.symbol == "MATIC/USD"
    assert [(t.id, t.price, t.qty, t.side) for t in mt.trades] == [
        ("4665846", 0.5147, 6423.46326, Side.BUY), ("4665847", 0.5147, 1136.19677815, Side.BUY)]
    assert mt.trades[0].ts == rfc3339_ns("2023-09-25T07:48:36.925533Z") == 1695628116925533000
    [t] = n.normalize(docs.TICKER_SNAPSHOT.frame, 1)
    assert isinstance(t, BookTicker) and (t.symbol, t.bid, t.bid_qty, t.ask, t.ask_qty) == (
        "ALGO/USD", 0.10025, 740.0, 0.10036, 1361.44813783)
    k1, k2 = n.normalize(docs.OHLC_SNAPSHOT.frame, 1)
    assert isinstance(k2, Kline) and k2.interval == "5m" and k2.trades == 13
    assert (k2.open, k2.high, k2.low, k2.close, k2.volume) == (0.09875, 0.0988, 0.09875,
                                                               0.09875, 16255.46368)
    assert k2.open_ts == rfc3339_ns("2023-10-04T15:30:00.000000000Z")
    assert k2.close_ts == k2.open_ts + 5 * 60 * 10**9 - 1 and k1.open_ts < k2.open_ts


def test_control_frames():
    n = norm()
    for doc in (docs.HEARTBEAT, docs.STATUS, docs.PONG, docs.BOOK_ACK, docs.TRADE_ACK,
                docs.SUBSCRIBE_ERROR):  # fmt: skip
        assert n.normalize(doc.frame, 1) == [], doc.title
    assert n.heartbeats == 1 and n.system == "online"
    kinds = [(c.kind, c.ok) for c in n.controls]
    assert kinds == [("pong", True), ("ack", True), ("ack", True), ("error", False)]
    assert n.controls[-1].message == "subscribe XBT/USD: Currency pair not supported XBT/USD"
    assert n.controls[0].id == "101"


@pytest.mark.parametrize("frame", [
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD"}]}',
    b'{"channel":"book","type":"partial","data":[]}',
    b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"up"}]}',
    b'{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","open":1,"high":1,'
    b'"low":1,"close":1,"trades":1,"volume":1,"vwap":1,"interval_begin":"x","interval":5}]}',
    b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":-1,'
    b'"qty":1}],"asks":[],"checksum":1}]}',
    b'{"nothing":1}', b"[1,2", b'{"channel":"book","type":"update","data":[{"symbol":'
    b'"NOPE/XYZ","bids":[],"asks":[],"checksum":1}]}',
])  # fmt: skip
def test_bad_frames_are_malformed_in_one_line(frame: bytes):
    with pytest.raises(MalformedFrame) as err:
        norm().normalize(frame, 1)
    assert "\n" not in str(err.value) and str(err.value).startswith("kraken: malformed frame")


def test_unknown_channel_is_unsupported():
    n = norm()
    assert n.normalize(b'{"channel":"level3","type":"update","data":[]}', 1) == []
    assert n.unsupported == 1


# ------------------------------------------------------------------ subscriptions, instruments


def test_subscribe_frames_one_per_channel():
    d = KrakenDenormalizer()
    streams = [Stream("book", s, depth=25) for s in ("BTC/USD", "ETH/BTC")]
    streams += [Stream("book_ticker", "BTC/USD"), Stream("trades", "BTC/USD"),
                Stream("kline", "BTC/USD", interval="15d")]  # fmt: skip
    frames = [msgspec.json.decode(f) for f in d.subscribe(streams, 3)]
    assert frames == [
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/BTC"],
                                           "depth": 25, "snapshot": True}, "req_id": 3},
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"],
                                           "event_trigger": "bbo", "snapshot": True}, "req_id": 3},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"],
                                           "snapshot": False}, "req_id": 3},
        {"method": "subscribe", "params": {"channel": "ohlc", "symbol": ["BTC/USD"],
                                           "interval": 21600, "snapshot": False}, "req_id": 3},
    ]  # fmt: skip
    [un] = d.unsubscribe(streams[:1], 4)
    assert msgspec.json.decode(un) == {"method": "unsubscribe", "params": {
        "channel": "book", "symbol": ["BTC/USD"], "depth": 25}, "req_id": 4}
    with pytest.raises(ValueError, match="kline interval"):
        d.subscribe([Stream("kline", "BTC/USD", interval="3m")])


def test_asset_pairs_example_to_instruments():
    by = {i.symbol: i for i in kraken_instruments(docs.ASSET_PAIRS.frame)}
    assert set(by) == {"ETH/BTC", "BTC/USD"}  # XBT is BTC
    btc = by["BTC/USD"]
    assert (btc.native_symbol, btc.base, btc.quote) == ("BTC/USD", "BTC", "USD")
    assert (btc.price_precision, btc.qty_precision) == (1, 8)
    assert str(btc.tick_size) == "0.1" and str(btc.min_qty) == "0.0001" and btc.trading
    eth = by["ETH/BTC"]
    assert (eth.price_precision, eth.qty_precision, str(eth.min_notional)) == (5, 8, "0.00002")


@pytest.mark.parametrize("body", [b'{"error":["EGeneral:Internal error"]}', b"{",
                                  b'{"error":[],"result":{"X":{"altname":"X"}}}',
                                  b'{"error":[],"result":{"X":{"altname":"X","base":"A",'
                                  b'"quote":"B","pair_decimals":1,"lot_decimals":1,"wsname":"AB"}}}'])
def test_asset_pairs_refused_in_one_line(body: bytes):
    with pytest.raises(InstrumentsError) as err:
        kraken_instruments(body)
    assert "\n" not in str(err.value) and str(err.value).startswith("kraken: ")


# ------------------------------------------------------------------ book sync property

PD, QD = 2, 3  # the model instrument's price and quantity decimals


def _text(units: int, dp: int) -> str:
    s = str(units).rjust(dp + 1, "0")
    return f"{s[:-dp]}.{s[-dp:]}"


class Venue:
    """A model of the documented feed: a true book, a top-``depth`` view per message;
    updates carry changed levels and qty 0 for deleted ones, never for levels only pushed
    out of the window; checksums on the wire strings."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.vb: dict[int, int] = {}
        self.va: dict[int, int] = {}

    def view(self) -> tuple[dict[int, int], dict[int, int]]:
        b = dict(sorted(self.bids.items(), reverse=True)[: self.depth])
        a = dict(sorted(self.asks.items())[: self.depth])
        return b, a

    def crc(self, b: dict[int, int], a: dict[int, int]) -> int:
        parts = [_text(p, PD).replace(".", "").lstrip("0") + _text(q, QD).replace(".", "").lstrip("0")
                 for p, q in sorted(a.items())[:10] + sorted(b.items(), reverse=True)[:10]]
        return zlib.crc32("".join(parts).encode())

    def event(self, bids, asks, snap: bool) -> Orderbook:
        f = [(p / 10**PD, q / 10**QD) for p, q in bids]
        g = [(p / 10**PD, q / 10**QD) for p, q in asks]
        return Orderbook(exchange="kraken", symbol="X/Y", is_snapshot=snap, bids=tuple(f),
                         asks=tuple(g))  # fmt: skip

    def snapshot(self) -> tuple[Orderbook, int]:
        self.vb, self.va = self.view()
        return (self.event(sorted(self.vb.items(), reverse=True), sorted(self.va.items()), True),
                self.crc(self.vb, self.va))  # fmt: skip

    def apply(self, changes: list[tuple[bool, int, int]]) -> tuple[Orderbook, int]:
        for is_bid, p, q in changes:
            side = self.bids if is_bid else self.asks
            if q:
                side[p] = q
            else:
                side.pop(p, None)
        nb, na = self.view()
        db = [(p, q) for p, q in nb.items() if self.vb.get(p) != q]
        db += [(p, 0) for p in self.vb if p not in nb and p not in self.bids]
        da = [(p, q) for p, q in na.items() if self.va.get(p) != q]
        da += [(p, 0) for p in self.va if p not in na and p not in self.asks]
        self.vb, self.va = nb, na
        return self.event(db, da, False), self.crc(nb, na)


change = st.tuples(st.booleans(), st.integers(1, 60), st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.lists(change, max_size=40), st.lists(st.lists(change, max_size=6),
                                                                   max_size=30))
def test_sync_equals_the_venue_and_publishes_an_exact_stream(depth, start, batches):
    v = Venue(depth)
    for is_bid, p, q in start:  # an uncrossed book: bids below 100, asks above
        (v.bids if is_bid else v.asks)[p if is_bid else p + 100] = q or 1
    sync = KrakenBookSync("X/Y", depth, BookChecksum(PD, QD))
    consumer = OrderBook("kraken", "X/Y")
    for ev in sync.on_event(*v.snapshot()):
        consumer.update(ev)
    for batch in batches:
        moves = [(b, p if b else p + 100, q) for b, p, q in batch]
        for ev in sync.on_event(*v.apply(moves)):
            consumer.update(ev)
        assert sync.resyncs == 0, sync.last_gap
        nb, na = v.view()
        want_b = [(p / 10**PD, q / 10**QD) for p, q in sorted(nb.items(), reverse=True)]
        want_a = [(p / 10**PD, q / 10**QD) for p, q in sorted(na.items())]
        assert sync.book.bids() == want_b and sync.book.asks() == want_a
        assert consumer.bids() == want_b and consumer.asks() == want_a


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(change, min_size=1, max_size=6), min_size=2, max_size=10),
       st.integers(0, 8))
def test_a_lost_update_is_caught_by_a_later_checksum_or_harmless(batches, lost):
    """Kraken has no ids: a lost message shows only when the top 10 differ; until then the
    book may hold a wrong level below them, never above a mismatch that was checked."""
    v = Venue(10)
    sync = KrakenBookSync("X/Y", 10, BookChecksum(PD, QD))
    sync.on_event(*v.snapshot())
    for i, batch in enumerate(batches):
        msg = v.apply([(b, p if b else p + 100, q) for b, p, q in batch])
        if i == lost % len(batches):
            continue
        sync.on_event(*msg)
        if not sync.needs_resync:
            nb, na = v.view()  # depth 10: the checksum covers the whole book
            assert sync.book.bids() == [(p / 10**PD, q / 10**QD)
                                        for p, q in sorted(nb.items(), reverse=True)]
