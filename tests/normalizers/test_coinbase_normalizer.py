"""Coinbase Advanced Trade normalizer, sequence check, book sync and instruments on the
documentation's example messages, plus properties (hypothesis) of the book sync."""

from __future__ import annotations

import msgspec
import pytest
from fixtures import coinbase_docs as docs
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp.connectors.coinbase.instruments import coinbase_instruments
from ttxt_mp.connectors.coinbase.normalizer import CoinbaseDenormalizer, CoinbaseNormalizer
from ttxt_mp.connectors.coinbase.sequence import ConnectionSequence
from ttxt_mp.connectors.coinbase.sync import CoinbaseBookSync
from ttxt_mp.connectors.coinbase.times import rfc3339_ns
from ttxt_mp.connectors.instruments import InstrumentsError
from ttxt_mp.connectors.normalizer import MalformedFrame, Stream
from ttxt_mp.events import BookTicker, Kline, MarketTrades, Orderbook, Side, Trade
from ttxt_mp.orderbook import OrderBook

S = 1_000_000_000


def norm() -> CoinbaseNormalizer:
    return CoinbaseNormalizer({"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"})


def one(events):
    assert len(events) == 1
    return events[0]


def test_rfc3339_nanoseconds_and_shorter_fractions():
    assert rfc3339_ns("2023-02-09T20:32:50.714964855Z") == 1675974770 * S + 714964855
    assert rfc3339_ns("2019-08-14T20:42:27.265Z") == 1565815347 * S + 265_000_000
    assert rfc3339_ns("1970-01-01T00:00:00Z") == 0
    for bad in ("2023-02-09 20:32", "2023-02-09T20:32:50.7x4Z", "yesterday at noon!!!"):
        with pytest.raises(ValueError):
            rfc3339_ns(bad)


def test_level2_snapshot_doc_message():
    ev = one(norm().normalize(docs.LEVEL2.frame, local_ts=7))
    assert ev == Orderbook(exchange="coinbase", symbol="BTC/USD", local_ts=7,
                           exch_ts=rfc3339_ns("2023-02-09T20:32:50.714964855Z"), is_snapshot=True,
                           bids=((21921.73, 0.06317902), (21921.3, 0.02)), asks=(),
                           first_update_id=0, last_update_id=0)  # fmt: skip


def test_level2_update_bid_and_offer_with_removal():
    frame = (b'{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.1Z",'
             b'"sequence_num":5,"events":[{"type":"update","product_id":"BTC-USD","updates":['
             b'{"side":"offer","event_time":"2023-02-09T20:32:50Z","price_level":"21922","new_quantity":"0"},'
             b'{"side":"bid","event_time":"2023-02-09T20:32:50Z","price_level":"21921","new_quantity":"1.5"}]}]}')  # fmt: skip
    ev = one(norm().normalize(frame, 1))
    assert not ev.is_snapshot and ev.bids == ((21921.0, 1.5),) and ev.asks == ((21922.0, 0.0),)
    assert ev.last_update_id == 5


def test_market_trades_side_is_the_makers_so_the_taker_is_the_other():
    ev = one(norm().normalize(docs.MARKET_TRADES.frame, 3))
    assert isinstance(ev, MarketTrades) and ev.symbol == "ETH/USD"
    assert ev.trades == (Trade("000000000", 1260.01, 0.3, Side.SELL,
                               rfc3339_ns("2019-08-14T20:42:27.265Z")),)  # fmt: skip
    sell = docs.MARKET_TRADES.frame.replace(b'"BUY"', b'"SELL"')
    assert one(norm().normalize(sell, 3)).trades[0].side is Side.BUY


def test_candles_doc_message_is_a_5m_kline():
    k = one(norm().normalize(docs.CANDLES.frame, 2))
    assert isinstance(k, Kline) and (k.symbol, k.interval) == ("ETH/USD", "5m")
    assert (k.open, k.high, k.low, k.close, k.volume) == (1867.38, 1867.72, 1865.63, 1866.81,
                                                         0.20269406)  # fmt: skip
    assert k.open_ts == 1688998200 * S and k.close_ts == (1688998200 + 300) * S - 1_000_000
    assert not k.closed


def test_ticker_doc_message_is_a_book_ticker():
    t = one(norm().normalize(docs.TICKER.frame, 2))
    assert t == BookTicker(exchange="coinbase", symbol="BTC/USD", local_ts=2,
                           exch_ts=rfc3339_ns("2023-02-09T20:30:37.167359596Z"), bid=21931.98,
                           bid_qty=8000.21, ask=21933.98, ask_qty=8038.07770938)  # fmt: skip


@pytest.mark.parametrize("msg", [docs.HEARTBEATS, docs.HEARTBEATS_ASYNCAPI])
def test_heartbeats_string_or_integer_counter(msg):
    n = norm()
    assert n.normalize(msg.frame, 1) == [] and n.heartbeats == 1 and n.heartbeat_counter == 3049


def test_subscriptions_and_errors_are_controls():
    n = norm()
    frame = (b'{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50Z",'
             b'"sequence_num":0,"events":[{"subscriptions":{"level2":["BTC-USD"],"heartbeats":["heartbeats"]}}]}')  # fmt: skip
    assert n.normalize(frame, 1) == [] and n.controls[-1].ok and "level2: BTC-USD" in n.controls[-1].message
    assert n.normalize(b'{"type":"error","message":"failure to subscribe"}', 1) == []
    assert not n.controls[-1].ok and n.controls[-1].message == "failure to subscribe"


def test_sequence_gap_is_counted_and_old_messages_ignored():
    n = norm()
    frames = [docs.TICKER.frame.replace(b'"sequence_num": 0', f'"sequence_num": {i}'.encode())
              for i in (0, 1, 3, 2, 4)]  # fmt: skip
    out = [n.normalize(f, 1) for f in frames]
    assert [len(x) for x in out] == [1, 1, 1, 0, 1]  # 2 came after 3: ignored
    assert (n.sequence.gaps, n.sequence.lost, n.sequence.stale) == (1, 1, 1)
    assert "sequence_num 3 after 1" in n.sequence.last_gap
    n.sequence.reset()  # a new connection starts over at 0
    assert n.normalize(frames[0], 1) and n.sequence.gaps == 1


@pytest.mark.parametrize("frame", [
    b'{"channel":"l2_data","timestamp":"2023-02-09T20:32:50Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"ask","price_level":"1","new_quantity":"1"}]}]}',
    b'{"channel":"l2_data","timestamp":"2023-02-09T20:32:50Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","price_level":"-1","new_quantity":"1"}]}]}',
    b'{"channel":"market_trades","timestamp":"2023-02-09T20:32:50Z","sequence_num":0,"events":[{"type":"update","trades":[{"trade_id":"1","product_id":"BTC-USD","price":"1","size":"1","side":"HOLD","time":"2023-02-09T20:32:50Z"}]}]}',
    b'{"channel":"ticker","timestamp":"noon","sequence_num":0,"events":[]}',
    b'{"unexpected":[1,2,3],"data":"not-an-object"}',
    b'{"channel":"l2_data"',
    b'[1,2]',
])  # fmt: skip
def test_bad_inputs_raise_one_line_malformed_frame(frame):
    with pytest.raises(MalformedFrame) as err:
        norm().normalize(frame, 1)
    assert "\n" not in str(err.value) and str(err.value).startswith("coinbase: malformed frame")


def test_product_book_rest_snapshot():
    ev = norm().normalize_snapshot(docs.PRODUCT_BOOK.frame, "BTC-USD", local_ts=4)
    assert ev.is_snapshot and ev.symbol == "BTC/USD"
    assert ev.bids == ((140.21, 0.5),) and ev.asks == ((140.23, 0.2),)
    with pytest.raises(MalformedFrame):
        norm().normalize_snapshot(b'{"error":"NOT_FOUND"}', "BTC-USD")


def test_products_list_to_instruments():
    (i,) = coinbase_instruments(docs.PRODUCTS_LIST.frame)
    assert (i.native_symbol, i.symbol, i.kind) == ("BTC-USD", "BTC/USD", "spot")
    assert str(i.tick_size) == "0.01" and str(i.step_size) == "1E-8"  # price_increment, base_increment
    assert str(i.min_qty) == "1E-8" and str(i.max_qty) == "1000"
    assert str(i.min_notional) == "1E-8" and str(i.max_notional) == "1000" and i.trading
    body = msgspec.json.decode(docs.PRODUCTS_LIST.frame)
    body["products"][0]["product_type"] = "FUTURE"
    assert coinbase_instruments(msgspec.json.encode(body)) == []
    body["products"][0].update(product_type="SPOT", status="offline")
    assert not coinbase_instruments(msgspec.json.encode(body))[0].trading
    with pytest.raises(InstrumentsError, match="coinbase: malformed products list"):
        coinbase_instruments(b'{"products": 3}')


def test_subscriptions_one_channel_per_message_without_jwt():
    d = CoinbaseDenormalizer({"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"})
    streams = [Stream("book", "BTC/USD", depth=10000), Stream("book", "ETH/USD", depth=10000),
               Stream("trades", "BTC/USD"), Stream("kline", "ETH/USD", interval="5m"),
               Stream("book_ticker", "BTC/USD")]  # fmt: skip
    msgs = [msgspec.json.decode(f) for f in d.subscribe(streams, heartbeats=True)]
    assert msgs == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "candles"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "ticker"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    doc = msgspec.json.decode(docs.SUBSCRIBE.frame)  # the documented shape, less the jwt
    assert set(msgs[0]) == set(doc) - {"jwt"}
    assert msgspec.json.decode(d.unsubscribe(streams[:1])[0])["type"] == "unsubscribe"
    with pytest.raises(ValueError, match="5-minute"):
        d.subscribe([Stream("kline", "BTC/USD", interval="1m")])


# ------------------------------------------------------------------ properties

_levels = st.dictionaries(st.integers(1, 60), st.integers(0, 5), max_size=30)
_updates = st.lists(st.tuples(st.booleans(), st.integers(1, 60), st.integers(0, 5)), max_size=80)


def _event(seq: int, snapshot: bool, bids, asks) -> Orderbook:
    return Orderbook(exchange="coinbase", symbol="BTC/USD", is_snapshot=snapshot,
                     bids=tuple(bids), asks=tuple(asks), first_update_id=seq,
                     last_update_id=seq)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_levels, _levels, _updates, st.integers(0, 80))
def test_book_sync_equals_the_model_and_a_consumer_rebuilds_it(bids, asks, updates, lost_at):
    """Snapshot then updates (one per message, sequence_num increasing with holes for other
    products' messages): the synced book equals a dict model; a consumer applying only what
    the sync published has the same book; after :meth:`lost` nothing is published until a
    snapshot."""
    sync = CoinbaseBookSync("BTC/USD")
    consumer = OrderBook("coinbase", "BTC/USD")
    model = {True: {float(p): float(q) for p, q in bids.items() if q},
             False: {float(p): float(q) for p, q in asks.items() if q}}  # fmt: skip
    snap = _event(3, True, [(float(p), float(q)) for p, q in bids.items()],
                  [(float(p), float(q)) for p, q in asks.items()])  # fmt: skip
    published = sync.on_event(snap)
    seq = 3
    for i, (is_bid, p, q) in enumerate(updates):
        seq += 1 + i % 3  # other channels' and products' messages in between
        if i == lost_at:
            sync.lost()
        ev = _event(seq, False, [(float(p), float(q))] if is_bid else [],
                    [] if is_bid else [(float(p), float(q))])  # fmt: skip
        out = sync.on_event(ev)
        if i >= lost_at:
            assert out == []
            continue
        published += out
        side = model[is_bid]
        if q:
            side[float(p)] = float(q)
        else:
            side.pop(float(p), None)
    for ev in published:
        consumer.update(ev)
    if lost_at >= len(updates):
        assert dict(sync.book.bids()) == model[True] and dict(sync.book.asks()) == model[False]
    assert consumer.bids() == [(p, q) for p, q in sorted(model[True].items(), reverse=True)]
    assert consumer.asks() == sorted(model[False].items())
    assert sync.on_event(_event(seq, False, [(1.0, 1.0)], [])) == []  # not newer: stale or unsynced


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60))
def test_sequence_gaps_are_exactly_the_skipped_numbers(steps):
    """Numbers advancing by 1 (no loss) or more (losses): gaps counts the jumps, lost the
    numbers never seen."""
    seq = ConnectionSequence()
    n, jumps, missing = -1, 0, 0
    for s in steps:
        step = max(s, 1)
        n += step
        if n > 0 and step > 1:
            jumps += 1
            missing += step - 1
        assert seq.see(n)
    first_missing = steps[0] - 1 if steps[0] > 1 else 0  # before the first message: not a gap
    assert seq.gaps == jumps - (1 if steps[0] > 1 else 0)
    assert seq.lost == missing - first_missing
    assert not seq.see(n)  # a repeat is stale


@settings(max_examples=300, deadline=None)
@given(secs=st.integers(0, 4_102_444_799), frac=st.text("0123456789", max_size=12),
       z=st.sampled_from("Zz"))  # fmt: skip
def test_rfc3339_any_fraction_length_is_exact(secs, frac, z):
    """The short path (1-9 digits) and the general one (none, or more than 9: truncated)
    agree with a reference built from datetime and the digits themselves."""
    import datetime as dt

    head = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    text = head + (f".{frac}" if frac else "") + z
    want = secs * S + (int(frac[:9].ljust(9, "0")) if frac else 0)
    assert rfc3339_ns(text) == want
