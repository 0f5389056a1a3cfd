"""Every event kind through a ring, exact floats, a 5,000-level book, numpy batches."""

from __future__ import annotations

import decimal
import enum

import hypothesis.strategies as st
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings

from ttxt_mp import events as E
from ttxt_mp.codec import Array, Fixed, Text, encode, layout_for
from ttxt_mp.shm import ShmQueue

KINDS = [
    E.Orderbook, E.MarketTrades, E.Kline, E.BookTicker, E.MarkPrice, E.OpenInterest, E.Liquidation,
    E.CreateOrder, E.CancelOrder, E.AmendOrder, E.SetLeverage,
    E.OrderAck, E.OrderUpdate, E.Wallet, E.PositionUpdate, E.ConnectorStatus, E.GapNotice,
]  # fmt: skip

floats = st.floats(allow_nan=False)
ints = st.integers(-(2**63), 2**63 - 1)


def text(width: int | None):
    s = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))
    return s if width is None else s.filter(lambda x: len(x.encode()) <= width)


def _value(dtype: str, enum_cls: type[enum.IntEnum] | None):
    if enum_cls is not None:
        return st.sampled_from(list(enum_cls))
    if dtype.startswith("S"):
        return text(int(dtype[1:]))
    return {"f8": floats, "i8": ints, "?": st.booleans(), "u1": st.integers(0, 255)}[dtype]


def strategy(cls):
    """Any valid instance of an event class, derived from its binary layout."""
    kw = {}
    for part in layout_for(cls).parts:
        if isinstance(part, Fixed):
            kw[part.name] = _value(part.dtype, part.enum)
        elif isinstance(part, Text):
            kw[part.name] = text(None)
        else:
            item = st.tuples(*(_value(dt, part.enums.get(n)) for n, dt in part.fields))
            if part.item is not None:
                item = item.map(lambda t, c=part.item: c(*t))
            kw[part.name] = st.lists(item, max_size=20).map(tuple)
    return st.builds(cls, **kw)


def test_every_library_kind_is_covered():
    from ttxt_mp import codec

    library = {k for k in codec._BY_KIND if k < codec.USER_KIND_MIN}
    assert {layout_for(c).kind for c in KINDS} == library


@pytest.fixture(scope="module")
def ring(request):
    from .conftest import Names

    name = Names(f"rt{id(request)}")()
    p = ShmQueue.create(name, capacity=1024, slot_size=256)
    c = ShmQueue.attach(name)
    yield p, c
    c.close()
    p.close()
    p.unlink()


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.__name__)
def test_every_kind_roundtrips_through_the_ring(ring, cls):
    p, c = ring

    @settings(max_examples=40, deadline=None)
    @given(strategy(cls))
    def check(ev):
        p.put(ev)
        assert c.get(timeout=1) == ev
        p.put_raw(*encode(ev))
        kind, payload = c.get_raw(timeout=1)
        assert (kind, payload) == encode(ev)

    check()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**15) + 1, 10**15 - 1).filter(lambda m: m % 10 != 0 or m == 0),
    st.integers(-20, 10),
)
def test_decimal_floats_with_15_digits_roundtrip_exactly(ring, mantissa, exp):
    p, c = ring
    s = f"{mantissa}e{exp}"
    x = float(s)
    p.put(E.MarketTrades(exchange="b", symbol="S/T", trades=(E.Trade("1", x, x, E.Side.BUY, 0),)))
    got = c.get(timeout=1).trades[0]
    assert got.price == x and got.qty == x
    assert decimal.Decimal(format(got.price, ".15g")) == decimal.Decimal(s)


def test_5000_level_snapshot_roundtrips(ring):
    p, c = ring
    bids = tuple((50_000.0 - i * 0.01, 0.001 * (i + 1)) for i in range(5000))
    asks = tuple((50_000.5 + i * 0.01, 0.002 * (i + 1)) for i in range(5000))
    book = E.Orderbook(exchange="binance", symbol="BTC/USDT", is_snapshot=True, bids=bids,
                       asks=asks, last_update_id=123)  # fmt: skip
    assert layout_for(E.Orderbook).size(book) > 80_000 * 2 - 1000  # ~160 KB: 700+ slots
    p.put(book)
    got = c.get(timeout=1)
    assert got == book and len(got.bids) == len(got.asks) == 5000


class Tick(msgspec.Struct, frozen=True):
    """A user-registered kind (kind >= 1000) through a ring created for it."""

    px: float
    note: str


def test_user_kind_and_numpy_batches(names):
    from ttxt_mp import register_event

    register_event(1077, Tick, (Fixed("px", "f8"), Text("note")))
    name = names()
    with ShmQueue.create(name, capacity=64, kinds=[1077]) as p, ShmQueue.attach(name) as c:
        p.put(Tick(1.5, "hello"))
        assert c.get(timeout=1) == Tick(1.5, "hello")
        trades = layout_for(E.MarketTrades)
        with pytest.raises(Exception, match="kind 2 is not one of them"):
            p.put(E.MarketTrades(exchange="x"))
        with pytest.raises(Exception, match="kind 2 is not one of them"):
            p.put_many(np.zeros((1, trades.header_size), np.uint8), kind=2)
        hdr = np.zeros(10, layout_for(Tick).header_dtype)
        hdr["px"] = np.arange(10)
        p.put_many(hdr, kind=1077)
        recs = c.get_batch(100)
        assert len(recs) == 10 and (recs["kind"] == 1077).all()
        assert list(layout_for(1077).view(recs["payload"])["px"]) == list(range(10))


def test_get_batch_views_trades_without_python_objects(names):
    name = names()
    lay = layout_for(E.MarketTrades)
    evs = [E.MarketTrades(exchange="bx", symbol="A/B", exch_ts=i,
                          trades=(E.Trade(str(i), 1.0 + i, 2.0, E.Side.BUY, i),))
           for i in range(300)]  # fmt: skip
    rows = np.frombuffer(b"".join(lay.encode(e) for e in evs), np.uint8).reshape(300, -1)
    with ShmQueue.create(name, capacity=256, slot_size=192) as p, ShmQueue.attach(name) as c:
        p.put_many(rows[:200], kind=lay.kind)
        a = c.get_batch(150)
        b = c.get_batch(150)
        assert (len(a), len(b)) == (150, 50)
        heads = lay.view(np.concatenate([a, b])["payload"])
        assert list(heads["exch_ts"]) == list(range(200))
        items = np.concatenate([a, b])["payload"][:, lay.header_size :]
        trades = np.ascontiguousarray(items[:, : lay.item_dtypes["trades"].itemsize]).view(
            lay.item_dtypes["trades"]
        )[:, 0]
        assert list(trades["price"]) == [1.0 + i for i in range(200)]
        # the same records come back as Structs through get()
        p.put_many(rows[200:], kind=lay.kind)
        assert [c.get(timeout=1) for _ in range(100)] == evs[200:]


def test_array_layouts_are_covered_by_strategies():
    """Guard: a new library part type would need a strategy above."""
    for cls in KINDS:
        for part in layout_for(cls).parts:
            assert isinstance(part, Fixed | Array | Text)
