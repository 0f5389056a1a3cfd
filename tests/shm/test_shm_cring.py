"""The compiled ring ends (``ttxt_mp.shm.cring``) against the pure-Python ring (issue 11).

Differential: the same operations on a C ring end and on a pure one leave byte-identical
slots; each reads the other's writes as equal Structs and equal raw bytes; producer and
consumer processes of either implementation exchange a checksummed stream. The model
test (test_shm_model.py) runs against both too. Skipped without the extension."""

from __future__ import annotations

import numpy as np
import pytest
from codec_strategies import KINDS, any_event, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp import codec, codec_c
from ttxt_mp.events import MarketTrades, Orderbook, Side, Trade
from ttxt_mp.queues import QueueClosed
from ttxt_mp.shm import ShmQueue, cring
from ttxt_mp.shm import layout as L

from ._worker import STRESS_KIND, make, ok
from .test_shm_processes import publish, ready, result, wait_consumers

pytestmark = pytest.mark.skipif(
    not cring.available(), reason="ttxt_mp._ccodec is not built: only the pure ring exists"
)
IMPLS = ["c", "pure"]
ENV = {"c": {codec_c.PURE_ENV: "0"}, "pure": {codec_c.PURE_ENV: "1"}}
FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


@pytest.fixture(autouse=True)
def restore_implementation():
    before = codec_c.IMPLEMENTATION
    yield
    codec_c.set_implementation(before)


BOOK = Orderbook(exchange="x", symbol="A/B", is_snapshot=True, first_update_id=7,
                 bids=tuple((float(i), 1.0) for i in range(40)), asks=())  # fmt: skip
BOOK_KIND = codec.kind_of(Orderbook)


def trade(i: int) -> MarketTrades:
    return MarketTrades(exchange="x", symbol="A/B", exch_ts=i,
                        trades=(Trade(str(i), 1.0 + i, 2.0, Side.SELL, i),))  # fmt: skip


def create(impl: str, name: str, **kw):
    codec_c.set_implementation(impl)
    return ShmQueue.create(name, **kw)


def attach(impl: str, name: str, **kw):
    codec_c.set_implementation(impl)
    return ShmQueue.attach(name, **kw)


def pure_bytes(ev) -> bytes:
    lay = codec.layout_for(type(ev))
    buf = bytearray(lay.pure_size(ev))
    lay.pure_pack_into(buf, 0, ev)
    return bytes(buf)


def test_the_c_end_is_selected_with_the_c_codec_and_takes_no_python_path(names):
    with create("c", names(), capacity=64) as p, ShmQueue.attach(p.name) as c:
        assert p.put == p._core.put and c.get == c._core.get
        kind = codec.kind_of(MarketTrades)
        p.put(trade(-1))  # first of a class / raw kind: looked up on the Python path
        p.put_raw(kind, pure_bytes(trade(-1)))
        raw = (kind, pure_bytes(trade(-1)))
        assert [c.get(timeout=5), c.get_raw(timeout=5)] == [trade(-1), raw]
        warm = (p._core.slow, c._core.slow)
        evs = [trade(i) for i in range(200)]  # laps nobody: 64 slots, read as we go
        for k in range(0, 200, 20):
            p.put_many(evs[k : k + 10])
            for ev in evs[k + 10 : k + 20]:
                p.put(ev)
            assert [c.get(timeout=5) for _ in range(20)] == evs[k : k + 20]
        p.put_raw(kind, pure_bytes(evs[0]))
        assert c.get_raw(timeout=5) == (kind, pure_bytes(evs[0]))
        p.put(trade(-2), timeout=1)  # stays in C (the timeout is for a full block ring)
        assert c.get(timeout=5) == trade(-2)
        with pytest.raises(TypeError):  # ... but the Python method refuses what it refuses
            p.put(trade(-3), tiemout=1)
        assert (p._core.slow, c._core.slow) == (warm[0] + 1, warm[1])
        p.put(BOOK)  # 4 fragments; the first of its class: looked up on the Python path
        assert c.get(timeout=5) == BOOK
        warm = (p._core.slow, c._core.slow)
        p.put(BOOK)
        p.put(BOOK)
        assert c.get(timeout=5) == BOOK and c.get_raw(timeout=5) == (BOOK_KIND, pure_bytes(BOOK))
        assert (p._core.slow, c._core.slow) == warm  # every call stayed in C
        assert (p.head, p.events_published, c.cursor, c.last_evno) == (216, 207, 216, 206)  # books: 4 slots
        rows = np.frombuffer(pure_bytes(evs[1]) * 50, np.uint8).reshape(50, -1)
        p.put_many(rows, kind=kind)
        assert isinstance(c.get_batch(1).base.obj, bytearray)  # copied by the core, no copy
        recs = np.concatenate([c.get_batch(64), c.get_batch(64)])  # the 2nd after the wrap
        assert len(recs) == 49 and set(recs["kind"]) == {kind} and set(recs["fcnt"]) == {1}
        assert (recs["payload"][:, : rows.shape[1]] == rows[1:]).all()
        assert list(recs["evno"]) == list(range(208, 257)) and c.cursor == 266
    with create("pure", names()) as p, ShmQueue.attach(p.name) as c:
        assert "_core" not in vars(p) and "_core" not in vars(c)


@pytest.mark.parametrize("slot_size", [96, 256])
@FUZZ
@given(ops=st.lists(st.tuples(any_event, st.sampled_from(["put", "many", "raw", "rows"])),
                    min_size=1, max_size=40))  # fmt: skip
def test_both_ends_write_identical_slots(names, slot_size, ops):
    """Small rings: laps, wrap-around and (96-byte slots) fragments in most examples."""
    rings = {}
    for impl in IMPLS:
        q = rings[impl] = create(impl, names(), capacity=16, slot_size=slot_size, kinds=KINDS)
        for ev, how in ops:  # the codec of `impl` is selected while it encodes
            if how == "put":
                q.put(ev)
            elif how == "many":
                q.put_many([ev, ev])
            elif how == "raw":
                q.put_raw(codec.kind_of(type(ev)), pure_bytes(ev))
            else:  # numpy rows: two records of this event
                rows = np.frombuffer(pure_bytes(ev) * 2, np.uint8).reshape(2, -1)
                q.put_many(rows, kind=codec.kind_of(type(ev)))
    try:
        c, p = rings["c"], rings["pure"]
        assert "_core" in vars(c) and "_core" not in vars(p)
        assert (c.head, c.next_evno) == (p.head, p.next_evno)
        h = slice(L.OFF["head"], L.OFF["head"] + 8)
        assert bytes(c._mv[h]) == bytes(p._mv[h])
        assert bytes(c._mv[c._data :]) == bytes(p._mv[p._data :])
    finally:
        for q in rings.values():
            q.close()


@pytest.mark.parametrize(("writer", "reader"), [(w, r) for w in IMPLS for r in IMPLS])
@FUZZ
@given(events=st.lists(any_event, min_size=1, max_size=30))
def test_each_end_reads_the_others_writes(names, writer, reader, events):
    with create(writer, names(), capacity=64, slot_size=160, policy="block", kinds=KINDS) as p:
        with attach(reader, p.name) as c, ShmQueue.attach(p.name) as r:
            assert ("_core" in vars(c)) == (reader == "c")
            codec_c.set_implementation(writer)  # the writer's encoders are looked up now
            p.put_many(events)
            codec_c.set_implementation(reader)  # ... and the readers' decoders
            got = [c.get(timeout=5) for _ in events]
            raw = [r.get_raw(timeout=5) for _ in events]
    want = [codec.layout_for(type(e)).pure_unpack_from(pure_bytes(e), 0)[0] for e in events]
    assert [shape(g) for g in got] == [shape(w) for w in want]
    assert raw == [(codec.kind_of(type(e)), pure_bytes(e)) for e in events]


@pytest.mark.parametrize("writer", IMPLS)
@FUZZ
@given(events=st.lists(any_event, min_size=1, max_size=30), max_n=st.integers(1, 40))
def test_batches_of_both_readers_hold_the_same_records(names, writer, events, max_n):
    """get_batch of a C reader and of a pure one: the same slot records, batch by batch
    (laps on the 16-slot ring, fragments of the 96-byte slots, events never split)."""
    with create(writer, names(), capacity=16, slot_size=96, kinds=KINDS) as p:
        readers = {i: attach(i, p.name, start="oldest") for i in IMPLS}
        try:
            for ev in events:
                p.put(ev)
                got = {i: r.get_batch(max_n) for i, r in readers.items()}
                assert got["c"].dtype == got["pure"].dtype and len(got["c"]) == len(got["pure"])
                for f in got["c"].dtype.names:  # every field (numpy leaves padding undefined)
                    assert np.array_equal(got["c"][f], got["pure"][f]), f
                assert readers["c"].lost == readers["pure"].lost
                assert readers["c"].cursor == readers["pure"].cursor
        finally:
            for r in readers.values():
                r.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_laps_and_fragments_through_the_compiled_end(names, impl):
    """A lapped C reader gets the exact GapNotice, a fragmented book comes back whole."""
    book = BOOK
    with create(impl, names(), capacity=16, slot_size=256) as p:  # a trade: 1 slot
        with attach("c", p.name) as c:
            for i in range(40):
                p.put(trade(i))
            gap = c.get(timeout=5)
            assert gap.lost == 40 - 16 and c.get(timeout=5) == trade(24)
            assert [c.get(timeout=5) for _ in range(15)] == [trade(i) for i in range(25, 40)]
            p.put(book)  # 3 fragments
            p.put(trade(40))
            assert [c.get(timeout=5), c.get(timeout=5)] == [book, trade(40)]


@pytest.mark.parametrize("impl", IMPLS)
def test_closed_compiled_ends_raise_queue_closed(names, impl):
    p = create(impl, names())
    c = attach(impl, p.name)
    p.put(trade(1))
    assert c.get(timeout=5) == trade(1)
    p.close()
    with pytest.raises(QueueClosed, match="closed ring"):
        p.put(trade(2))
    with pytest.raises(QueueClosed, match="closed by its producer"):
        c.get(timeout=5)
    c.close()
    with pytest.raises(QueueClosed, match="was closed"):
        c.get(timeout=5)
    assert "put" not in vars(p) and "get" not in vars(c)  # the cores' methods are gone


@pytest.mark.parametrize("here", IMPLS)
def test_stress_producer_here_consumer_processes_of_both(names, procs, here):
    """30k checksummed events through every producer API; one consumer process of each
    implementation, reading with get and get_raw, bounded by the workers' timeout."""
    codec_c.set_implementation(here)
    n = 30_000
    with ShmQueue.create(names(), capacity=1 << 10, policy="block", kinds=[STRESS_KIND]) as q:
        ws = [procs.worker("consume", q.name, mode, env=ENV[impl])
              for impl in IMPLS for mode in ("get", "raw")]  # fmt: skip
        for w in ws:
            ready(w)
        wait_consumers(q, len(ws))
        publish(q, n)
    want = {"n": n, "lost": 0, "bad": 0, "order": 0, "gaps": 0, "last": n - 1}
    assert [result(w) for w in ws] == [want] * len(ws)


@pytest.mark.parametrize("here", IMPLS)
def test_producer_process_of_the_other_kind(names, procs, here):
    other = "pure" if here == "c" else "c"
    n = 900
    name = names()
    ready(procs.worker("produce", name, str(n), env=ENV[other]))
    with attach(here, name, start="oldest") as c:
        got = [c.get(timeout=10) for _ in range(n)]
    assert all(ok(e) for e in got) and got == [make(i) for i in range(n)]
