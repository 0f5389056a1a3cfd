"""OKX v5: the documented messages (tests/fixtures/okx_docs.py) through the normalizer, the
checksum's worked examples, the seqId/prevSeqId rule on the documented sequence, checksum
verification in the book sync (a property: a book kept from any update stream verifies
every checksum; a dropped update is always caught), instruments, subscriptions."""

from __future__ import annotations

import zlib

import msgspec
import pytest
from fixtures import okx_docs as docs
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.instruments import InstrumentsError
from ttxt_mp.connectors.normalizer import Instrument, MalformedFrame, Stream, SymbolMap
from ttxt_mp.connectors.okx.checksum import okx_checksum, signed32
from ttxt_mp.connectors.okx.instruments import contract_values, okx_instruments
from ttxt_mp.connectors.okx.normalizer import OkxDenormalizer, OkxNormalizer
from ttxt_mp.connectors.okx.sync import OkxBookSync
from ttxt_mp.events import (
    BookTicker,
    Kline,
    Liquidation,
    MarketTrades,
    MarkPrice,
    OpenInterest,
    Orderbook,
    Side,
)

SPOT = Instrument(native="BTC-USDT", base="BTC", quote="USDT")
PERP = Instrument(native="BTC-USDT-SWAP", base="BTC", quote="USDT", kind="linear", settle="USDT")
BCH = Instrument(native="BCH-USDT-SWAP", base="BCH", quote="USDT", kind="linear", settle="USDT")
IOST = Instrument(native="IOST-USDT-SWAP", base="IOST", quote="USDT", kind="linear",
                  settle="USDT")  # fmt: skip
INVERSE = Instrument(native="BTC-USD-SWAP", base="BTC", quote="USD", kind="inverse", settle="BTC")
DATED = Instrument(native="LTC-USD-190628", base="LTC", quote="USD", kind="inverse", settle="LTC",
                   expiry="190628")  # fmt: skip
MS = 1_000_000


def spot(**kw) -> OkxNormalizer:
    return OkxNormalizer(SymbolMap([SPOT], exchange="okx"), **kw)


def swaps(**kw) -> OkxNormalizer:
    return OkxNormalizer(SymbolMap([PERP, BCH, IOST, INVERSE, DATED], exchange="okx"), **kw)


# ------------------------------------------------------------------ checksum


@pytest.mark.parametrize(("bids", "asks", "expected"), docs.CHECKSUM_VECTORS)
def test_checksum_worked_examples(bids, asks, expected) -> None:
    assert okx_checksum(bids, asks) == expected


def test_checksum_string_is_the_documented_interleaving() -> None:
    for text, (_, _, expected) in zip(docs.CHECKSUM_STRINGS, docs.CHECKSUM_VECTORS, strict=True):
        assert signed32(zlib.crc32(text.encode())) == expected


def test_checksum_counts_25_levels_only() -> None:
    bids = [f"{100 - i}:1" for i in range(40)]
    asks = [f"{101 + i}:2" for i in range(30)]
    assert okx_checksum(bids, asks) == okx_checksum(bids[:25], asks[:25])
    assert okx_checksum(bids, asks) != okx_checksum(bids[:24], asks[:25])


# ------------------------------------------------------------------ books


def test_books_snapshot_doc_message() -> None:
    n = spot()
    [ev] = n.normalize(docs.OKX_BOOKS_SNAPSHOT.frame, 7)
    assert isinstance(ev, Orderbook) and ev.is_snapshot and ev.symbol == "BTC/USDT"
    assert (ev.last_update_id, ev.prev_update_id, ev.exch_ts) == (123456, -1, 1597026383085 * MS)
    assert ev.asks[:2] == ((8476.98, 415.0), (8477.0, 7.0)) and ev.bids[-1] == (8446.0, 95.0)
    assert n.texts == {}  # checksum 0: no text kept
    [ev] = n.normalize(docs.OKX_BOOKS_SNAPSHOT.frame.replace(b'"checksum": 0', b'"checksum": 5'))
    text = n.texts["BTC/USDT"]
    assert text.checksum == 5 and text.asks[1] == ("8477", "7", "0", "2")


def test_books_update_doc_message_chains_on_the_snapshot() -> None:
    n = spot()
    sync = OkxBookSync("BTC/USDT")
    [snap] = n.normalize(docs.OKX_BOOKS_SNAPSHOT.frame)
    assert sync.on_event(snap, n.texts.pop("BTC/USDT", None)) == [snap]
    [upd] = n.normalize(docs.OKX_BOOKS_UPDATE.frame)
    assert not upd.is_snapshot and (upd.prev_update_id, upd.last_update_id) == (123456, 123457)
    assert sync.on_event(upd, n.texts.pop("BTC/USDT", None)) == [upd]
    assert sync.book.update_id == 123457 and sync.checked == 0  # checksum 0: nothing to verify


def test_bbo_tbt_is_a_book_ticker_and_a_level_1_book() -> None:
    [t] = swaps(book_depth=400, book_ticker=True).normalize(docs.OKX_BBO_TBT.frame, 3)
    assert t == BookTicker(exchange="okx", symbol="BCH/USDT:USDT", exch_ts=1670324386802 * MS,
                           local_ts=3, bid=111.05, bid_qty=57745.0, ask=111.06, ask_qty=55154.0,
                           update_id=363996337)  # fmt: skip
    book, ticker = swaps(book_depth=1, book_ticker=True).normalize(docs.OKX_BBO_TBT.frame, 3)
    assert book.is_snapshot and book.bids == ((111.05, 57745.0),) and ticker == t


def test_books5_is_a_snapshot() -> None:
    [b] = swaps(book_depth=5).normalize(docs.OKX_BOOKS5.frame)
    assert b.is_snapshot and len(b.bids) == len(b.asks) == 5 and b.last_update_id == 363996337
    assert swaps(book_depth=400).normalize(docs.OKX_BOOKS5.frame) == []  # not the book asked for


def test_documented_sequence_ids_apply_keepalive_and_reset() -> None:
    """Snapshot 10; update 10->15; no update 15->15; reset 15->3; update 3->5."""
    sync = OkxBookSync("BTC/USDT")

    def ev(prev: int, seq: int, bids=(), snapshot=False) -> Orderbook:
        return Orderbook(exchange="okx", symbol="BTC/USDT", is_snapshot=snapshot, bids=bids,
                         first_update_id=seq, last_update_id=seq, prev_update_id=prev)  # fmt: skip

    assert sync.on_event(ev(-1, 10, ((1.0, 1.0),), True))
    assert sync.on_event(ev(10, 15, ((2.0, 1.0),)))
    assert sync.on_event(ev(15, 15)) == []  # keep-alive: applied, nothing to publish
    assert sync.on_event(ev(15, 3, ((3.0, 1.0),)))
    assert sync.on_event(ev(3, 5, ((1.0, 0.0),)))
    assert sync.book.update_id == 5 and sync.book.bids() == [(3.0, 1.0), (2.0, 1.0)]
    assert sync.on_event(ev(5, 0)) and sync.book.update_id == 0  # 0 is the smallest id
    assert sync.on_event(ev(0, 4)) and sync.resyncs == 0
    assert sync.on_event(ev(7, 9)) == [] and sync.needs_resync and sync.resyncs == 1
    assert "prevSeqId=7 after seqId=4" in sync.last_gap


# ------------------------------------------------------------------ other channels


def test_trades_doc_message() -> None:
    [mt] = spot().normalize(docs.OKX_TRADES.frame, 1)
    assert isinstance(mt, MarketTrades) and mt.symbol == "BTC/USDT"
    [t] = mt.trades
    assert (t.id, t.price, t.qty, t.side, t.ts) == ("130639474", 42219.9, 0.12060306, Side.BUY,
                                                    1630048897897 * MS)  # fmt: skip


def test_candle_doc_message() -> None:
    n = spot()
    assert n.normalize(docs.OKX_CANDLE.frame) == []  # candle1D: Hong Kong days, not ours
    assert n.controls[-1].kind == "unsupported"
    frame = docs.OKX_CANDLE.frame.replace(b'"candle1D"', b'"candle1Dutc"')
    [k] = n.normalize(frame, 2)
    assert isinstance(k, Kline) and k.interval == "1d" and not k.closed
    assert (k.open, k.high, k.low, k.close, k.volume, k.quote_volume) == (
        8533.02, 8553.74, 8527.17, 8548.26, 45247.0, 5529.5858061)
    assert k.open_ts == 1597026383085 * MS and k.close_ts == k.open_ts + (86_400_000 - 1) * MS


def test_mark_price_combines_mark_funding_and_index() -> None:
    n = swaps()
    mark = docs.OKX_MARK_PRICE.frame
    assert n.normalize(docs.OKX_FUNDING_RATE.frame) == []  # no mark price yet: nothing
    [mp] = n.normalize(mark, 4)
    assert mp == MarkPrice(exchange="okx", symbol="LTC/USD:LTC-190628",
                           exch_ts=1597026383085 * MS, local_ts=4, mark_price=0.1)  # fmt: skip
    perp = mark.replace(b"LTC-USD-190628", b"BTC-USDT-SWAP")
    n.normalize(perp)
    fr = docs.OKX_FUNDING_RATE.frame.replace(b"BTC-USD-SWAP", b"BTC-USDT-SWAP")
    [mp] = n.normalize(fr)
    assert (mp.funding_rate, mp.next_funding_ts) == (0.0001875391284828, 1700726400000 * MS)
    [mp] = n.normalize(docs.OKX_INDEX_TICKERS.frame)  # BTC-USDT: the index of BTC-USDT-SWAP
    assert (mp.symbol, mp.mark_price, mp.index_price, mp.funding_rate) == (
        "BTC/USDT:USDT", 0.1, 0.1, 0.0001875391284828)


def test_open_interest_doc_message() -> None:
    [oi] = swaps().normalize(docs.OKX_OPEN_INTEREST.frame, 5)
    assert oi == OpenInterest(exchange="okx", symbol="BTC/USDT:USDT", exch_ts=1743041250440 * MS,
                              local_ts=5, open_interest=2216113.01000000309,
                              open_interest_value=1939251795.54769270396321)  # fmt: skip


def test_liquidations_doc_message_filtered_to_the_symbols_asked_for() -> None:
    [liq] = swaps().normalize(docs.OKX_LIQUIDATIONS.frame, 6)
    assert liq == Liquidation(exchange="okx", symbol="IOST/USDT:USDT", exch_ts=1692266434010 * MS,
                              local_ts=6, side=Side.BUY, price=0.007831, qty=13.0)  # fmt: skip
    assert swaps(liquidation_symbols=["BTC-USDT-SWAP"]).normalize(docs.OKX_LIQUIDATIONS.frame) == []


def test_replies_and_pong_are_controls() -> None:
    n = spot()
    assert n.normalize(docs.OKX_BOOKS_SUBSCRIBED.frame) == []
    assert (n.controls[-1].kind, n.controls[-1].id, n.controls[-1].ok) == ("ack", "1512", True)
    assert n.normalize(docs.OKX_BOOKS_FAILURE.frame) == []
    err = n.controls[-1]
    assert not err.ok and err.message.startswith("code 60012: Invalid request")
    assert n.normalize(b"pong") == [] and n.controls[-1].kind == "pong"


@pytest.mark.parametrize(("frame", "needle"), [
    (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":', "truncated"),
    (b'{"unexpected":[1,2,3]}', "neither 'arg' nor 'event'"),
    (docs.OKX_BOOKS_SNAPSHOT.frame.replace(b'"8477"', b'"-8477"'), "book level"),
    (docs.OKX_BOOKS_SNAPSHOT.frame.replace(b'"snapshot"', b'"partial"'), "action must be"),
    (docs.OKX_TRADES.frame.replace(b'"buy"', b'"up"'), "trades data"),
    (docs.OKX_BOOKS_SNAPSHOT.frame.replace(b'"BTC-USDT"', b'"NOPE-XYZ"'), "unknown symbol"),
])  # fmt: skip
def test_bad_frames_are_one_line_errors(frame: bytes, needle: str) -> None:
    with pytest.raises(MalformedFrame) as e:
        spot().normalize(frame)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_books_without_text_decode_numbers() -> None:
    [ev] = spot(keep_text=False).normalize(docs.OKX_BOOKS_SNAPSHOT.frame)
    assert ev.asks[0] == (8476.98, 415.0)
    with pytest.raises(MalformedFrame):
        spot(keep_text=False).normalize(docs.OKX_BOOKS_SNAPSHOT.frame.replace(b'"8477"', b'"nan"'))


def test_rest_order_book() -> None:
    # "GET / Order book" response example (www.okx.com/docs-v5/en/#order-book-trading-market-data-get-order-book)
    body = (b'{"code":"0","msg":"","data":[{"asks":[["41006.8","0.60038921","0","1"]],'
            b'"bids":[["41006.3","0.30178218","0","2"]],"ts":"1629966436396","seqId":3235851742}]}')
    ev = spot().normalize_snapshot(body, "BTC-USDT", 1)
    assert (ev.symbol, ev.is_snapshot, ev.bids, ev.asks, ev.last_update_id) == (
        "BTC/USDT", True, ((41006.3, 0.30178218),), ((41006.8, 0.60038921),), 3235851742)
    with pytest.raises(MalformedFrame, match="code 51001"):
        spot().normalize_snapshot(b'{"code":"51001","msg":"Instrument ID does not exist",'
                                  b'"data":[]}', "BTC/USDT")  # fmt: skip


# ------------------------------------------------------------------ instruments, requests

SWAP_BODY = msgspec.json.encode({"code": "0", "msg": "", "data": [
    # built from the documented fields of "Get instruments" for instType SWAP
    {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "uly": "BTC-USDT", "instFamily": "BTC-USDT",
     "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT", "ctVal": "0.01", "ctValCcy": "BTC",
     "ctType": "linear", "tickSz": "0.1", "lotSz": "0.01", "minSz": "0.01", "state": "live"},
    {"instType": "SWAP", "instId": "BTC-USD-SWAP", "uly": "BTC-USD", "instFamily": "BTC-USD",
     "settleCcy": "BTC", "ctVal": "100", "ctValCcy": "USD", "ctType": "inverse",
     "tickSz": "0.1", "lotSz": "1", "minSz": "1", "state": "live"},
]})  # fmt: skip


def test_instruments_doc_body_and_swaps() -> None:
    [i] = okx_instruments(docs.OKX_INSTRUMENTS_SPOT.frame)
    assert (i.native_symbol, i.symbol, i.kind, str(i.tick_size), str(i.step_size)) == (
        "BTC-USDT", "BTC/USDT", "spot", "0.1", "1E-8")
    assert float(i.min_qty) == 0.00001 and i.trading
    [s] = okx_instruments(SWAP_BODY)  # the inverse swap is not the linear market's
    assert (s.symbol, s.kind, s.settle, float(s.step_size)) == ("BTC/USDT:USDT", "linear", "USDT", 0.01)
    assert contract_values(SWAP_BODY) == {"BTC-USDT-SWAP": 0.01, "BTC-USD-SWAP": 100.0}
    with pytest.raises(InstrumentsError, match="code 51000"):
        okx_instruments(b'{"code":"51000","msg":"Parameter instType error","data":[]}')
    with pytest.raises(InstrumentsError, match="malformed"):
        okx_instruments(b'{"code":')


def test_subscriptions() -> None:
    d = OkxDenormalizer(SymbolMap([PERP], exchange="okx"))
    streams = [Stream("book", "BTC/USDT:USDT", depth=400), Stream("trades", "BTC/USDT:USDT"),
               Stream("mark_price", "BTC/USDT:USDT"), Stream("liquidations", "BTC/USDT:USDT"),
               Stream("liquidations", "ETH/USDT:USDT")]  # fmt: skip
    [frame] = d.subscribe(streams, 7)
    assert msgspec.json.decode(frame) == {"id": "7", "op": "subscribe", "args": [
        {"channel": "books", "instId": "BTC-USDT-SWAP"},
        {"channel": "trades", "instId": "BTC-USDT-SWAP"},
        {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
        {"channel": "index-tickers", "instId": "BTC-USDT"},
        {"channel": "liquidation-orders", "instType": "SWAP"}]}  # fmt: skip
    assert d.args(Stream("kline", "BTC/USDT:USDT", interval="1M")) == [
        {"channel": "candle1Mutc", "instId": "BTC-USDT-SWAP"}]
    assert d.endpoint(Stream("kline", "X/USDT")) == "business" != d.endpoint(streams[0])
    with pytest.raises(ValueError, match="no book of 50 levels"):
        d.args(Stream("book", "BTC/USDT:USDT", depth=50))
    many = [Stream("trades", f"C{i:05d}/USDT") for i in range(3000)]
    frames = d.subscribe(many, "x")
    assert len(frames) > 1 and all(len(f) <= 64 * 1024 for f in frames)
    assert sum(len(msgspec.json.decode(f)["args"]) for f in frames) == 3000


# ------------------------------------------------------------------ checksum in the sync


def _frame(action: str, bids, asks, prev: int, seq: int, checksum: int) -> bytes:
    return msgspec.json.encode({"arg": {"channel": "books", "instId": "BTC-USDT"},
                                "action": action, "data": [{
                                    "asks": [[p, q, "0", "1"] for p, q in asks],
                                    "bids": [[p, q, "0", "1"] for p, q in bids],
                                    "ts": "1", "checksum": checksum, "prevSeqId": prev,
                                    "seqId": seq}]})  # fmt: skip


class Venue:
    """A reference book kept as text, as OKX would send it."""

    def __init__(self) -> None:
        self.bids: dict[int, str] = {}
        self.asks: dict[int, str] = {}
        self.seq = 100

    @staticmethod
    def px(tick: int) -> str:
        return f"{tick / 4:g}"

    def checksum(self) -> int:
        b = [f"{self.px(t)}:{self.bids[t]}" for t in sorted(self.bids, reverse=True)]
        a = [f"{self.px(t)}:{self.asks[t]}" for t in sorted(self.asks)]
        return okx_checksum(b, a)

    def snapshot(self) -> bytes:
        return _frame("snapshot", [(self.px(t), q) for t, q in sorted(self.bids.items())],
                      [(self.px(t), q) for t, q in self.asks.items()], -1, self.seq,
                      self.checksum())  # fmt: skip

    def update(self, changes, step: int) -> bytes:
        bids, asks = [], []
        for is_bid, tick, lots in changes:
            side, out = (self.bids, bids) if is_bid else (self.asks, asks)
            if lots:
                side[tick] = str(lots)
            else:
                side.pop(tick, None)
            out.append((self.px(tick), str(lots)))
        prev, self.seq = self.seq, self.seq + step
        return _frame("update", bids, asks, prev, self.seq, self.checksum())


_change = st.tuples(st.booleans(), st.integers(1, 80), st.integers(0, 9))
_update = st.tuples(st.lists(_change, max_size=6), st.integers(0, 50))


def _wrong(frame: bytes, checksum: int | None = None) -> bytes:
    """The frame with another checksum (default: the right one + 1)."""
    msg = msgspec.json.decode(frame)
    d = msg["data"][0]
    d["checksum"] = d["checksum"] + 1 if checksum is None else checksum
    return msgspec.json.encode(msg)


def _feed(n: OkxNormalizer, sync: OkxBookSync, frame: bytes) -> list:
    [ev] = n.normalize(frame)
    return sync.on_event(ev, n.texts.pop(ev.symbol, None))


@settings(max_examples=60, deadline=None)
@given(st.lists(_change, max_size=60), st.lists(_update, min_size=1, max_size=40))
def test_any_update_stream_verifies_every_checksum(start, updates) -> None:
    venue = Venue()
    venue.update(start, 1)
    n, sync = spot(), OkxBookSync("BTC/USDT")
    _feed(n, sync, venue.snapshot())
    for changes, step in updates:
        _feed(n, sync, venue.update(changes, step))
    assert sync.checksum_errors == 0 and sync.resyncs == 0 and not sync.needs_resync
    assert sync.book.bids() == [(t / 4, float(q)) for t, q in sorted(venue.bids.items(),
                                                                     reverse=True)]  # fmt: skip
    assert sync.book.asks() == [(t / 4, float(q)) for t, q in sorted(venue.asks.items())]


@settings(max_examples=60, deadline=None)
@given(st.lists(_update, min_size=2, max_size=30), st.data())
def test_a_dropped_update_is_always_caught(updates, data) -> None:
    venue = Venue()
    n, sync = spot(), OkxBookSync("BTC/USDT")
    _feed(n, sync, venue.snapshot())
    drop = data.draw(st.integers(0, len(updates) - 2))
    for i, (changes, step) in enumerate(updates):
        frame = venue.update(changes, step if i != drop else max(step, 1))
        if i != drop:
            _feed(n, sync, frame)
    assert sync.resyncs >= 1 and (sync.needs_resync or sync.book.snapshots > 1)


def test_a_wrong_checksum_resyncs_and_is_counted_a_right_one_is_checked() -> None:
    venue = Venue()
    venue.update([(True, 10, 1), (False, 12, 2)], 1)
    n, sync = spot(), OkxBookSync("BTC/USDT")
    assert _feed(n, sync, venue.snapshot())
    assert _feed(n, sync, venue.update([(True, 11, 3)], 2)) and sync.checked == 2
    bad = _wrong(venue.update([(False, 13, 1)], 2))
    assert _feed(n, sync, bad) == [] and sync.checksum_errors == 1 and sync.needs_resync
    assert "checksum mismatch" in sync.last_gap and sync.book.gaps == 1
    assert _feed(n, sync, venue.update([(False, 14, 1)], 1)) == []  # waits for a snapshot
    assert _feed(n, sync, venue.snapshot()) and not sync.needs_resync


def test_checksum_off_or_zero_is_never_a_mismatch() -> None:
    venue = Venue()
    venue.update([(True, 10, 1)], 1)
    off = OkxBookSync("BTC/USDT", verify=False)
    n = spot()
    _feed(n, off, venue.snapshot())
    assert _feed(n, off, _wrong(venue.update([(True, 9, 1)], 1))) and off.checked == 0
    zero = OkxBookSync("BTC/USDT")
    _feed(n, zero, _wrong(venue.snapshot(), 0))
    assert _feed(n, zero, _wrong(venue.update([(True, 8, 2)], 1), 0))
    assert zero.checked == 0 and zero.text is None
