"""Rings with the C codec at one end and the pure codec at the other (issue 11).

In one process (``codec_c.set_implementation`` between the producer's puts and the
consumer's gets): every kind, the library's and a user kind, crosses the ring as equal
Structs and as the pure codec's bytes. Across processes: a C producer with a pure
consumer process (``TTXT_MP_PURE=1``) and the other way round, checksummed events.
Skipped when the extension is not built."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from codec_strategies import KINDS, any_event, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp import codec, codec_c
from ttxt_mp.shm import ShmQueue

from ._worker import STRESS_KIND, make, ok
from .test_shm_processes import publish, ready, result, wait_consumers

pytestmark = pytest.mark.skipif(
    not codec_c.AVAILABLE, reason="ttxt_mp._ccodec is not built: only the pure codec exists"
)
PAIRS = [("c", "pure"), ("pure", "c"), ("c", "c")]
OTHER = {"c": {codec_c.PURE_ENV: "1"}, "pure": {codec_c.PURE_ENV: "0"}}


@pytest.fixture(autouse=True)
def restore_implementation():
    before = codec_c.IMPLEMENTATION
    yield
    codec_c.set_implementation(before)


def active(lay: codec.Layout, impl: str) -> SimpleNamespace:
    """The functions ``impl`` gives ``lay``."""
    if impl == "c":
        return SimpleNamespace(_pack_into=lay.c.pack_into, unpack_from=lay.c.unpack_from)
    return SimpleNamespace(_pack_into=lay.pure_pack_into, unpack_from=lay.pure_unpack_from)


def pure_bytes(event) -> bytes:
    lay = codec.layout_for(type(event))
    buf = bytearray(lay.pure_size(event))
    lay.pure_pack_into(buf, 0, event)
    return bytes(buf)


@pytest.mark.parametrize(("producer", "consumer"), PAIRS)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(any_event, min_size=1, max_size=12))
def test_every_kind_crosses_between_implementations(names, producer, consumer, events):
    fallbacks = sum(codec.layout_for(k).c.fallbacks for k in KINDS)
    with ShmQueue.create(names(), capacity=256, slot_size=256, policy="block",
                         kinds=KINDS) as p:  # fmt: skip
        with ShmQueue.attach(p.name, start="oldest") as c, ShmQueue.attach(p.name) as r:
            codec_c.set_implementation(producer)  # the writer looks its encoders up now
            for ev in events:
                p.put(ev)
            codec_c.set_implementation(consumer)  # ... and the readers their decoders
            got = [c.get(timeout=5) for _ in events]
            raw = [r.get_raw(timeout=5) for _ in events]
            for e in events:  # the ring's hot paths call the selected codec
                lay = codec.layout_for(type(e))
                assert p._enc[type(e)][1] == active(lay, producer)._pack_into
                assert c._dec[lay.kind] == active(lay, consumer).unpack_from
    want = [codec.layout_for(type(e)).pure_unpack_from(pure_bytes(e), 0)[0] for e in events]
    assert [shape(g) for g in got] == [shape(w) for w in want]
    assert raw == [(codec.kind_of(type(e)), pure_bytes(e)) for e in events]
    assert sum(codec.layout_for(k).c.fallbacks for k in KINDS) == fallbacks  # on the C path


@pytest.mark.parametrize("here", ["c", "pure"])
def test_producer_here_consumer_process_with_the_other_codec(names, procs, here):
    codec_c.set_implementation(here)
    n = 20_000
    with ShmQueue.create(names(), capacity=1 << 12, policy="block", kinds=[STRESS_KIND]) as q:
        w = procs.worker("consume", q.name, "get", env=OTHER[here])
        ready(w)
        wait_consumers(q, 1)
        publish(q, n)
    assert result(w) == {"n": n, "lost": 0, "bad": 0, "order": 0, "gaps": 0, "last": n - 1}


@pytest.mark.parametrize("here", ["c", "pure"])
def test_producer_process_with_the_other_codec_consumer_here(names, procs, here):
    codec_c.set_implementation(here)
    n = 900  # the worker's ring has 1024 slots and publishes before we attach
    name = names()
    ready(procs.worker("produce", name, str(n), env=OTHER[here]))
    with ShmQueue.attach(name, start="oldest") as c:
        got = [c.get(timeout=10) for _ in range(n)]
    assert [e.i for e in got] == list(range(n))
    assert all(ok(e) for e in got)
    assert got == [make(i) for i in range(n)]
