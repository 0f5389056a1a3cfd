"""Differential tests of the compiled codec (``ttxt_mp._ccodec``) against the pure one.

The pure-Python codec is the reference: for every event kind (the library's and a user
kind using every dtype, enums, text and both sorts of arrays) the C codec must write the
same bytes, decode to equal Structs with the same types, read the pure codec's bytes and
the other way round, and fail with the same exception type and message on bad input.
Skipped when the extension is not built (the pure codec is then the only one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import msgspec
import numpy as np
import pytest
from codec_strategies import KINDS, CodecProbe, Leg, Mood, any_event, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ttxt_mp
from ttxt_mp import codec, codec_c
from ttxt_mp import events as ev
from ttxt_mp.codec import Array, Fixed, layout_for

pytestmark = pytest.mark.skipif(
    not codec_c.AVAILABLE, reason="ttxt_mp._ccodec is not built: only the pure codec exists"
)


def outcome(fn: Any, *args: Any) -> Any:
    """What ``fn(*args)`` did: ("ok", shape of its result) or (error type, message)."""
    try:
        return ("ok", shape(fn(*args)))
    except Exception as e:  # the point: both codecs fail the same way
        return (type(e), str(e))


def encode_with(lay: codec.Layout, which: str, event: Any, off: int = 0) -> Any:
    """As ``ShmQueue.put`` does: size, then pack at ``off`` of a buffer with old bytes."""
    size, pack = (lay.pure_size, lay.pure_pack_into) if which == "pure" else (
        lay.c.size, lay.c.pack_into)  # fmt: skip
    n = size(event)
    buf = bytearray(b"\xa5" * (off + n + 3))
    assert pack(buf, off, event) == n
    return bytes(buf)


def test_implementation_is_reported_and_selected():
    assert codec_c.implementation() == codec_c.IMPLEMENTATION in ("c", "pure")
    lay = layout_for(ev.MarketTrades)
    active = lay.c.pack_into if codec_c.IMPLEMENTATION == "c" else lay.pure_pack_into
    assert lay._pack_into == active


@pytest.mark.parametrize("env", ["1", "0"])
def test_pure_env_switch(env):
    code = ("from ttxt_mp import codec, codec_c, events as e; lay = codec.layout_for(e.Kline);"
            "print(codec_c.implementation(), lay.size == lay.pure_size)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, codec_c.PURE_ENV: env}).stdout.split()  # fmt: skip
    assert out == (["pure", "True"] if env == "1" else ["c", "False"])


def test_a_layout_the_c_codec_refuses_stays_on_the_pure_codec(monkeypatch):
    class RefusedByC(msgspec.Struct, frozen=True):
        x: float

    def refuse(*args):
        raise ValueError("nope")

    monkeypatch.setattr(codec_c._ccodec, "Codec", refuse)
    with pytest.warns(RuntimeWarning, match="RefusedByC: the C codec refused the layout"):
        lay = ttxt_mp.register_event(1919, RefusedByC, [Fixed("x", "f8")])
    assert lay.c is None and lay.size == lay.pure_size
    assert lay.decode(lay.encode(RefusedByC(1.5))) == RefusedByC(1.5)


def test_every_kind_is_covered():
    assert set(KINDS) >= set(codec.kinds(user=False))
    assert all(layout_for(k).c is not None for k in KINDS)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_event, st.integers(0, 9))
def test_same_bytes_and_same_events(event, off):
    lay = layout_for(type(event))
    before = lay.c.fallbacks
    pure, c = encode_with(lay, "pure", event, off), encode_with(lay, "c", event, off)
    assert c == pure
    n = lay.pure_size(event)
    for buf in (pure, memoryview(c), bytearray(c), np.frombuffer(c, np.uint8)):
        got = shape(lay.c.unpack_from(buf, off))
        assert got == shape(lay.pure_unpack_from(buf, off))
        if not _rounds_floats(lay):
            assert got == shape((event, n))
    assert lay.c.fallbacks == before  # valid events never leave the C path


def _rounds_floats(lay: codec.Layout) -> bool:
    """Whether the layout has ``f4`` fields (their decoded floats are rounded)."""
    dtypes = [p.dtype for p in lay.parts if isinstance(p, Fixed)]
    dtypes += [dt for p in lay.parts if isinstance(p, Array) for _, dt in p.fields]
    return "f4" in dtypes


def test_enum_fields_decode_to_members():
    lay = layout_for(CodecProbe)
    probe = CodecProbe(name="n", i1=0, u1=Mood.WILD, i2=0, u2=0, i4=0, u4=0, i8=0, u8=2**64 - 1,
                       f4=0.5, f8=0.0, flag=True, note="", pairs=(),
                       legs=(Leg("v", 1.0, 2, Mood.BUSY, 0.25),))  # fmt: skip
    got = lay.c.unpack_from(encode_with(lay, "c", probe), 0)[0]
    assert got == probe and got.u1 is Mood.WILD and got.legs[0].mood is Mood.BUSY


# ------------------------------------------------------------------ bad inputs

BAD_VALUES = [
    None, "x" * 60, "é" * 9, "ends with NUL\0", "\ud800", b"bytes", 1.5, 2**64, -(2**63) - 1,
    -1, 256, 70000, 2**31, 2**32, 10**400, float("inf"), 1e300, True, [], [(1.0, 2.0)],
    ((1.0,),), ((1.0, 2.0, 3.0),), (("a", 1.0),), ({1, 2},), ["x"], ("not-a-trade",),
    (ev.Trade("t", 1.0, 2.0, 9, 1),), (ev.Trade("t" * 49, 1.0, 2.0, ev.Side.BUY, 1),),
    (ev.Balance(1, 1.0, 1.0),), (Leg("v", 1.0, 70000, Mood.CALM, 1.0),),
    (Leg("v", 1.0, 1, Mood.CALM, 1e300),), ((1, 2.0, "toolong"),), [(1, 2.0, "ok")],
    np.float64(1.5), np.int64(7), Mood.WILD,
]  # fmt: skip


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_event, st.data())
def test_bad_values_fail_the_same_way(event, data):
    lay = layout_for(type(event))
    field = data.draw(st.sampled_from(type(event).__struct_fields__))
    bad = msgspec.structs.replace(event, **{field: data.draw(st.sampled_from(BAD_VALUES))})
    assert outcome(encode_with, lay, "c", bad) == outcome(encode_with, lay, "pure", bad)
    assert outcome(lay.c.size, bad) == outcome(lay.pure_size, bad)


def test_bad_calls_fail_the_same_way():
    lay = layout_for(ev.Kline)
    good = ev.Kline(exchange="x", symbol="A/B")
    n = lay.pure_size(good)
    calls = [
        ("pack_into", (bytes(n), 0, good)), ("pack_into", (bytearray(n - 1), 0, good)),
        ("pack_into", (bytearray(n), 1, good)), ("pack_into", (bytearray(n + 4), -n, good)),
        ("pack_into", (bytearray(n), "0", good)), ("pack_into", (bytearray(n), 0)),
        ("pack_into", (bytearray(n), 0, ev.BookTicker(exchange="x"))),
        ("unpack_from", (bytes(n - 1), 0)), ("unpack_from", (bytes(n), 1)),
        ("unpack_from", (bytes(n + 2), -n)), ("unpack_from", (bytes(n), 0.0)),
        ("unpack_from", ("text", 0)), ("unpack_from", (memoryview(bytes(2 * n))[::2], 0)),
    ]  # fmt: skip
    for name, args in calls:
        pure, c = getattr(lay, f"pure_{name}"), getattr(lay.c, name)
        assert outcome(c, *args) == outcome(pure, *args), (name, args)


def _corruptions(data: bytes, lay: codec.Layout) -> list[bytes]:
    """``data`` with bytes no encoder writes: invalid UTF-8, enum values off the table,
    counts past the end, truncations."""
    out = [data[:k] for k in (0, lay.header_size - 1, len(data) - 1) if k >= 0]
    for _, pos in lay.header_dtype.fields.values():
        for b in (b"\xff", b"\x01", b"\xfe\xff\xff\x7f"):
            out.append(data[:pos] + b + data[pos + len(b):])
    return [d for d in out if d != data]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_event)
def test_corrupt_bytes_decode_or_fail_the_same_way(event):
    lay = layout_for(type(event))
    for bad in _corruptions(encode_with(lay, "pure", event), lay):
        assert outcome(lay.c.unpack_from, bad, 0) == outcome(lay.pure_unpack_from, bad, 0)


def test_lists_and_subclasses_take_the_pure_path_with_the_same_result():
    lay = layout_for(ev.Orderbook)
    book = ev.Orderbook(exchange="x", bids=[(1.0, 2.0), [3.0, 4.0]], asks=((5, 6),))
    assert encode_with(lay, "c", book) == encode_with(lay, "pure", book)
    assert lay.c.unpack_from(encode_with(lay, "c", book), 0)[0].bids == ((1.0, 2.0), (3.0, 4.0))


def test_low_cardinality_decode_cache_follows_the_bytes():
    lay = layout_for(ev.BookTicker)
    for name in ("binance", "bybit", "binance", "", "é" * 8):
        data = encode_with(lay, "c", ev.BookTicker(exchange=name, symbol=name[:3]))
        assert lay.c.unpack_from(data, 0)[0].exchange == name
