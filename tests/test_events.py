"""Codec properties: every event kind round-trips through its fixed binary layout."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttxt_mp
from ttxt_mp import codec
from ttxt_mp import events as ev

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ts = st.integers(min_value=0, max_value=2**62)
finite = st.floats(allow_nan=False)
printable = st.characters(min_codepoint=33, max_codepoint=126)
short = st.text(alphabet=printable, max_size=8)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-_0123456789", max_size=16)
ids = st.text(alphabet=printable, max_size=36)


def decimal_strings():
    """Decimals with <= 15 significant digits, as exchanges send them."""
    return st.builds(
        lambda digits, exp: f"{digits}e{exp}",
        st.integers(min_value=0, max_value=10**15 - 1),
        st.integers(min_value=-20, max_value=10),
    )


levels = st.lists(st.tuples(finite, finite), max_size=30).map(tuple)
base = {"exchange": names, "symbol": names, "exch_ts": ts, "local_ts": ts}

EVENT_STRATEGIES = {
    ev.Orderbook: st.builds(
        ev.Orderbook, **base, is_snapshot=st.booleans(), bids=levels, asks=levels,
        first_update_id=ints, last_update_id=ints, prev_update_id=ints, seq=ints,
    ),
    ev.MarketTrades: st.builds(
        ev.MarketTrades, **base,
        trades=st.lists(
            st.builds(ev.Trade, ids, finite, finite, st.sampled_from(ev.Side), ts), max_size=5
        ).map(tuple),
    ),
    ev.Kline: st.builds(
        ev.Kline, **base, interval=st.sampled_from(["1s", "1m", "1h", "1d"]), open_ts=ts,
        close_ts=ts, open=finite, high=finite, low=finite, close=finite, volume=finite,
        quote_volume=finite, trades=ints, closed=st.booleans(),
    ),
    ev.BookTicker: st.builds(
        ev.BookTicker, **base, bid=finite, bid_qty=finite, ask=finite, ask_qty=finite,
        update_id=ints,
    ),
    ev.MarkPrice: st.builds(
        ev.MarkPrice, **base, mark_price=finite, index_price=finite, funding_rate=finite,
        next_funding_ts=ts,
    ),
    ev.OpenInterest: st.builds(
        ev.OpenInterest, **base, open_interest=finite, open_interest_value=finite
    ),
    ev.Liquidation: st.builds(
        ev.Liquidation, **base, side=st.sampled_from(ev.Side), price=finite, qty=finite
    ),
    ev.CreateOrder: st.builds(
        ev.CreateOrder, **base, client_order_id=ids, side=st.sampled_from(ev.Side),
        order_type=st.sampled_from(ev.OrderType), qty=finite, price=finite,
        tif=st.sampled_from(ev.TimeInForce), reduce_only=st.booleans(),
        position_side=st.sampled_from(ev.PositionSide),
    ),
    ev.SetLeverage: st.builds(
        ev.SetLeverage, **base, client_order_id=ids, leverage=finite,
        margin_mode=st.sampled_from(ev.MarginMode),
    ),
    ev.CancelOrder: st.builds(ev.CancelOrder, **base, client_order_id=ids, order_id=ids),
    ev.AmendOrder: st.builds(
        ev.AmendOrder, **base, client_order_id=ids, order_id=ids, new_price=finite,
        new_qty=finite,
    ),
    ev.OrderAck: st.builds(
        ev.OrderAck, **base, client_order_id=ids, action=st.sampled_from(ev.OrderAction),
        accepted=st.booleans(), order_id=ids, code=short, message=st.text(max_size=300),
    ),
    ev.OrderUpdate: st.builds(
        ev.OrderUpdate, **base, client_order_id=ids, order_id=ids,
        side=st.sampled_from(ev.Side), order_type=st.sampled_from(ev.OrderType),
        tif=st.sampled_from(ev.TimeInForce), status=st.sampled_from(ev.OrderStatus),
        price=finite, qty=finite, filled_qty=finite, avg_price=finite, last_fill_price=finite,
        last_fill_qty=finite, fee=finite, fee_asset=short, trade_id=ids,
    ),
    ev.Wallet: st.builds(
        ev.Wallet, **base,
        balances=st.lists(st.builds(ev.Balance, short, finite, finite), max_size=5).map(tuple),
    ),
    ev.PositionUpdate: st.builds(
        ev.PositionUpdate, **base, size=finite, entry_price=finite, mark_price=finite,
        unrealized_pnl=finite, leverage=finite,
    ),
    ev.ConnectorStatus: st.builds(
        ev.ConnectorStatus, **base, state=st.sampled_from(ev.ConnectorState),
        message=st.text(max_size=500), reconnects=ints, gaps=ints,
    ),
    ev.GapNotice: st.builds(ev.GapNotice, **base, lost=ints),
}  # fmt: skip


def test_every_event_kind_has_a_strategy():
    registered = {layout.cls for layout in codec._BY_KIND.values() if layout.kind < 1000}
    assert registered == set(EVENT_STRATEGIES)


@settings(max_examples=60)
@given(st.one_of(*EVENT_STRATEGIES.values()))
def test_round_trip_every_kind(event):
    kind, payload = codec.encode(event)
    assert len(payload) == codec.layout_for(kind).size(event)
    assert codec.decode(kind, payload) == event


@settings(max_examples=200)
@given(EVENT_STRATEGIES[ev.BookTicker])
def test_book_ticker_round_trips_in_a_fixed_size_record(event):
    """Library kind 4: the common fields, then bid, bid_qty, ask, ask_qty (f8) and the
    venue's update id (i8); no variable part, so every record has the same size."""
    kind, payload = codec.encode(event)
    assert kind == 4 == codec.kind_of("BookTicker")
    assert codec.event_class(4) is ev.BookTicker is ttxt_mp.BookTicker
    lay = codec.layout_for(ev.BookTicker)
    assert len(payload) == lay.header_dtype.itemsize == 16 + 32 + 8 + 8 + 4 * 8 + 8
    assert list(lay.header_dtype.names) == ["exchange", "symbol", "exch_ts", "local_ts", "bid",
                                            "bid_qty", "ask", "ask_qty", "update_id"]  # fmt: skip
    assert codec.decode(kind, payload) == event
    row = lay.view(np.frombuffer(payload, dtype=np.uint8).reshape(1, -1))[0]
    assert (row["bid"], row["ask"], row["update_id"]) == (event.bid, event.ask, event.update_id)


def test_book_ticker_defaults_say_no_update_id():
    t = ev.BookTicker(exchange="binance", symbol="BTC/USDT")
    assert (t.bid, t.bid_qty, t.ask, t.ask_qty, t.update_id, t.exch_ts) == (0, 0, 0, 0, -1, 0)


DERIVATIVE_LAYOUTS = [
    (ev.MarkPrice, 5, ["mark_price", "index_price", "funding_rate", "next_funding_ts"]),
    (ev.OpenInterest, 6, ["open_interest", "open_interest_value"]),
    (ev.Liquidation, 7, ["side", "price", "qty"]),
]


@pytest.mark.parametrize(("cls", "kind", "fields"), DERIVATIVE_LAYOUTS,
                         ids=[c.__name__ for c, _, _ in DERIVATIVE_LAYOUTS])  # fmt: skip
@settings(max_examples=100)
@given(data=st.data())
def test_derivative_kinds_have_fixed_library_layouts(cls, kind, fields, data):
    """Library kinds 5-7 (perpetuals): the common fields then their own, fixed size, exported."""
    event = data.draw(EVENT_STRATEGIES[cls])
    k, payload = codec.encode(event)
    assert k == kind == codec.kind_of(cls.__name__)
    assert codec.event_class(kind) is cls is getattr(ttxt_mp, cls.__name__)
    lay = codec.layout_for(cls)
    assert list(lay.header_dtype.names) == ["exchange", "symbol", "exch_ts", "local_ts", *fields]
    assert len(payload) == lay.header_dtype.itemsize
    assert codec.decode(kind, payload) == event


@given(st.one_of(*EVENT_STRATEGIES.values()), st.integers(min_value=0, max_value=64))
def test_pack_at_any_offset_reports_exact_length(event, offset):
    layout = codec.layout_for(type(event))
    buf = bytearray(offset + layout.size(event) + 8)
    n = layout.pack_into(buf, offset, event)
    assert n == layout.size(event)
    decoded, used = layout.unpack_from(memoryview(buf), offset)
    assert (decoded, used) == (event, n)


@given(decimal_strings(), decimal_strings())
def test_decimal_strings_round_trip_exactly(price, qty):
    """Any decimal with <= 15 significant digits survives float64 and the codec."""
    book = ev.Orderbook(exchange="binance", symbol="BTC/USDT", bids=((float(price), float(qty)),))
    out = codec.decode(*codec.encode(book))
    p, q = out.bids[0]
    assert float(repr(p)) == float(price) and f"{p:.15g}" == f"{float(price):.15g}"
    assert float(f"{q:.15g}") == float(qty)


def test_5000_level_snapshot_round_trips_whole():
    rng = np.random.default_rng(1)
    bids = tuple((100.0 - i * 0.01, float(rng.integers(1, 1000))) for i in range(5000))
    asks = tuple((100.01 + i * 0.01, float(rng.integers(1, 1000))) for i in range(5000))
    book = ev.Orderbook(exchange="binance", symbol="BTC/USDT", is_snapshot=True, bids=bids, asks=asks)
    out = codec.decode(*codec.encode(book))
    assert len(out.bids) == 5000 and len(out.asks) == 5000
    assert out == book


def test_events_are_immutable():
    book = ev.Orderbook(exchange="binance", symbol="BTC/USDT", bids=((1.0, 2.0),))
    with pytest.raises(AttributeError):
        book.bids = ()  # type: ignore[misc]
    assert isinstance(book.bids, tuple)


def test_too_long_string_is_refused_naming_the_field():
    with pytest.raises(codec.LayoutError, match=r"Orderbook\.symbol.*holds 32"):
        codec.encode(ev.Orderbook(exchange="binance", symbol="X" * 40))


def test_wrong_type_is_refused_naming_the_kind():
    bad = ev.Kline(exchange="binance", symbol="BTC/USDT", open="1.5")  # type: ignore[arg-type]
    with pytest.raises(codec.LayoutError, match="Kline"):
        codec.encode(bad)


def test_unknown_kind_names_the_fix():
    with pytest.raises(codec.LayoutError, match="register_event"):
        codec.decode(999, b"")


class Funding(msgspec.Struct, frozen=True, kw_only=True):
    exchange: str
    symbol: str
    rate: float
    next_ts: int


def test_user_can_register_a_custom_kind():
    layout = ttxt_mp.register_event(
        1001,
        Funding,
        [
            ttxt_mp.Fixed("exchange", "S16"),
            ttxt_mp.Fixed("symbol", "S32"),
            ttxt_mp.Fixed("rate", "f8"),
            ttxt_mp.Fixed("next_ts", "i8"),
        ],
    )
    f = Funding(exchange="bybit", symbol="BTC/USDT", rate=0.0001, next_ts=5)
    assert codec.decode(*codec.encode(f)) == f
    assert layout.header_dtype.names == ("exchange", "symbol", "rate", "next_ts")


def test_custom_kind_rules_are_enforced():
    with pytest.raises(codec.LayoutError, match="reserved"):
        ttxt_mp.register_event(5, Funding, [ttxt_mp.Fixed(n, "i8") for n in ("exchange", "symbol", "rate", "next_ts")])
    with pytest.raises(codec.LayoutError, match="missing.*next_ts"):
        ttxt_mp.register_event(1002, Funding, [ttxt_mp.Fixed("exchange", "S16")])

    class Basis(msgspec.Struct, frozen=True):
        exchange: str
        value: float

    fields = [ttxt_mp.Fixed("exchange", "S16"), ttxt_mp.Fixed("value", "f8")]
    ttxt_mp.register_event(1003, Basis, fields)
    ttxt_mp.register_event(1003, Basis, fields)  # the same declaration again is harmless
    with pytest.raises(codec.LayoutError, match="already registered to Basis"):
        ttxt_mp.register_event(1003, Funding, [ttxt_mp.Fixed(n, "i8") for n in Funding.__struct_fields__])
    with pytest.raises(codec.LayoutError, match="Basis is already registered as kind 1003"):
        ttxt_mp.register_event(1004, Basis, fields)


def test_numpy_header_view_matches_struct_layout():
    trades = [
        ev.MarketTrades(exchange="bybit", symbol="ETH/USDT", exch_ts=i, local_ts=i + 1)
        for i in range(10)
    ]
    layout = codec.layout_for(ev.MarketTrades)
    rows = np.frombuffer(b"".join(layout.encode(t) for t in trades), dtype=np.uint8).reshape(10, -1)
    headers = layout.view(rows)
    assert list(headers["exch_ts"]) == list(range(10))
    assert headers["symbol"][0] == b"ETH/USDT"


def test_registry_hash_is_stable_and_sensitive():
    assert codec.registry_hash() == codec.registry_hash()
    assert codec.registry_hash([1]) != codec.registry_hash([2])
