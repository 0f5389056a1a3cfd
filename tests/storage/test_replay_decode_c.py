"""Replaying Python events through the compiled codec (``_ccodec.decode_records``) gives
exactly what the pure loop gives: same events (types, exact float bits), same errors.

Recordings are written here directly in the file format, so they can hold every event
kind (the library's and two user kinds), records written by either codec, records whose
payload is shorter than what it claims (the C path must hand those to the pure codec) and
unknown kinds. Skipped when the extension is not built (the pure loop is then the only one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from codec_strategies import KINDS, any_event, events_of, shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttxt_mp import codec, codec_c
from ttxt_mp.events import GapNotice
from ttxt_mp.storage import MarketDataReplayer
from ttxt_mp.storage import batch as batch_mod
from ttxt_mp.storage.format import RECORD_HEADER, pack_chunk, pack_file_header

pytestmark = pytest.mark.skipif(
    not codec_c.AVAILABLE, reason="ttxt_mp._ccodec is not built: only the pure codec exists"
)
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def encode(ev: Any, which: str) -> tuple[int, bytes]:
    lay = codec.layout_for(type(ev))
    size, pack = (lay.pure_size, lay.pure_pack_into) if which == "pure" else (
        lay.c.size, lay.c.pack_into)  # fmt: skip
    buf = bytearray(size(ev))
    pack(buf, 0, ev)
    return lay.kind, bytes(buf)


def write_file(path: str, records: list[tuple[int, bytes]], chunk: int, symbol: str) -> None:
    """``records`` in chunks of ``chunk`` records (timestamps 0..n: order is file order)."""
    with open(path, "wb") as f:
        f.write(pack_file_header("x", symbol, 0))
        for at in range(0, len(records), chunk):
            body, index = bytearray(), bytearray()
            part = records[at : at + chunk]
            for kind, payload in part:
                index += len(body).to_bytes(4, "little")
                body += RECORD_HEADER.pack(kind, len(payload)) + payload
            f.write(pack_chunk(bytes(body), bytes(index), len(part), 0, 0))


def outcome(directory: str, impl: str) -> Any:
    """("ok", shapes of the replayed events) or (error type, message), with ``impl`` active."""
    codec_c.set_implementation(impl)
    try:
        with MarketDataReplayer(directory) as rp:
            return ("ok", [shape(e) for e in rp.events()])
    except Exception as e:  # the point: both paths fail the same way
        return (type(e), str(e))
    finally:
        codec_c.set_implementation(IMPL)


IMPL = codec_c.IMPLEMENTATION


@pytest.fixture
def small_steps(monkeypatch) -> Iterator[None]:
    """A few records per C call, so calls' boundaries fall inside every example."""
    monkeypatch.setattr(batch_mod, "DECODE_STEP", 3)
    yield


@SETTINGS
@given(files=st.lists(st.lists(st.tuples(any_event, st.sampled_from(["pure", "c"])),
                               max_size=25), min_size=1, max_size=3),  # fmt: skip
       chunk=st.integers(1, 7))  # fmt: skip
def test_c_and_pure_replay_give_identical_events(tmp_path_factory, small_steps, files, chunk):
    d = tmp_path_factory.mktemp("rec")
    for i, evs in enumerate(files):
        write_file(os.path.join(d, f"F{i}.bin"), [encode(e, w) for e, w in evs], chunk, f"S{i}")
    c, pure = outcome(str(d), "c"), outcome(str(d), "pure")
    assert c == pure
    written = sum(map(len, files))
    gaps = any(isinstance(e, GapNotice) for evs in files for e, _ in evs)
    assert c[0] == "ok"  # and all of them, but a ring-wide gap recorded in several files
    assert len(c[1]) == written or (gaps and len(c[1]) < written)  # is replayed once


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(evs=st.tuples(*map(events_of, KINDS)))
def test_every_kind_decodes_on_the_fast_path(tmp_path_factory, evs):
    """Valid records of every kind go through C: no record is handed to the pure codec
    (and the events are the ones written)."""
    d = tmp_path_factory.mktemp("all")
    write_file(str(d / "F.bin"), [encode(e, "c") for e in evs], 4, "S")
    before = {k: codec.layout_for(k).c.fallbacks for k in KINDS}
    codec_c.set_implementation("c")
    try:
        with MarketDataReplayer(str(d)) as rp:
            got = list(rp.events())
    finally:
        codec_c.set_implementation(IMPL)
    assert [shape(e) for e in got] == [shape(codec.layout_for(type(e)).decode(
        encode(e, "pure")[1])) for e in evs]  # fmt: skip
    assert {k: codec.layout_for(k).c.fallbacks for k in KINDS} == before


@SETTINGS
@given(evs=st.lists(any_event, min_size=1, max_size=8), data=st.data())
def test_short_payloads_and_unknown_kinds_fail_or_decode_the_same(tmp_path_factory,
                                                                 small_steps, evs, data):  # fmt: skip
    """A record cut short (CRC still valid: written so) reads on into the next record's
    bytes in the pure codec; the C path, bounded by the record, must defer to it."""
    recs = [encode(e, "c") for e in evs]
    i = data.draw(st.integers(0, len(recs) - 1))
    kind, payload = recs[i]
    if data.draw(st.booleans()):
        recs[i] = (kind, payload[: data.draw(st.integers(0, len(payload) - 1))])
    else:
        recs[i] = (data.draw(st.sampled_from([0, 999, 65535])), payload)
    d = tmp_path_factory.mktemp("bad")
    write_file(os.path.join(d, "F.bin"), recs, 3, "S")
    assert outcome(str(d), "c") == outcome(str(d), "pure")


def test_unknown_kind_names_the_cause(tmp_path):
    write_file(str(tmp_path / "F.bin"), [(999, b"\0" * 8)], 1, "S")
    kind, msg = outcome(str(tmp_path), "c")
    assert kind is codec.LayoutError and "unknown event kind 999" in msg


def test_decode_records_rejects_bad_arrays():
    import numpy as np

    from ttxt_mp import _ccodec

    table, resolve, _ = batch_mod.decoder() or ((), batch_mod._resolve, None)
    k, o, n = np.zeros(2, np.uint16), np.zeros(2, np.int64), np.zeros(2, np.uint32)
    with pytest.raises(ValueError, match="offset must hold >= 2 items of 8 bytes"):
        _ccodec.decode_records(table, resolve, (b"",), None, k, o.astype(np.int32), n, 0, 2)
    with pytest.raises(ValueError, match="kind must hold >= 3 items"):
        _ccodec.decode_records(table, resolve, (b"",), None, k, o, n, 0, 3)
    with pytest.raises(IndexError, match="file 5 of 1"):
        _ccodec.decode_records(table, resolve, (b"",), np.full(2, 5, np.uint16), k, o, n, 0, 2)


@SETTINGS
@given(evs=st.lists(any_event, min_size=1, max_size=12), chunk=st.integers(1, 5),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3))  # fmt: skip
def test_c_framing_matches_numpy_even_on_damaged_chunks(tmp_path_factory, evs, chunk, flips):
    """The compiled framer (records and timestamps of many chunks in one pass) agrees with
    the numpy reference on every chunk it calls good, and on which chunks are good."""
    import numpy as np

    from ttxt_mp.storage.format import CHUNK_HEADER_SIZE
    from ttxt_mp.storage.reader import RecordingFile
    from ttxt_mp.storage.records import frame_stamped

    d = tmp_path_factory.mktemp("frame")
    path = os.path.join(d, "F.bin")
    write_file(path, [encode(e, "c") for e in evs], chunk, "S")
    f = RecordingFile(path)
    buf = f.buf.copy()
    body = np.arange(96, len(buf))
    for at, x in flips:  # damage bodies and indexes after the scan (as with verify=False)
        buf[body[at % len(body)]] ^= x
    idx = f.index
    args = (buf, idx.pos + CHUNK_HEADER_SIZE, idx.body_len, idx.count)
    got = {}
    for impl in ("c", "pure"):
        codec_c.set_implementation(impl)
        try:
            got[impl] = frame_stamped(*args)
        finally:
            codec_c.set_implementation(IMPL)
    (ck, co, cl, ct, cok), (pk, po, pl, pt, pok) = got["c"], got["pure"]
    assert cok.tolist() == pok.tolist()
    keep = np.repeat(cok, idx.count)
    for a, b in ((ck, pk), (co, po), (cl, pl), (ct, pt)):
        assert a[keep].tolist() == b[keep].tolist()
    if not flips:
        assert cok.all()
    f.close()


@pytest.mark.skipif(not codec_c.AVAILABLE or not __import__("ttxt_mp._ccodec").
                    _ccodec.fast_crc_available(), reason="no PCLMULQDQ CRC on this CPU")  # fmt: skip
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4000), crc=st.integers(0, 2**32 - 1), cut=st.integers(0, 64))
def test_folded_crc32_is_zlibs(data, crc, cut):
    import zlib

    from ttxt_mp import _ccodec

    assert _ccodec.crc32(data, crc) == zlib.crc32(data, crc)
    assert _ccodec.crc32(data[cut:]) == zlib.crc32(data[cut:])


def test_damaged_chunk_is_reported_and_skipped_by_both_paths(tmp_path):
    """verify=True with the compiled CRC check finds the same damaged chunk as zlib's."""
    from ttxt_mp.events import Kline

    evs = [Kline(exchange="x", symbol="S", open=1.0, high=2.0, low=0.5, close=1.5,
                 volume=3.0, trades=4)] * 9  # fmt: skip
    path = str(tmp_path / "F.bin")
    write_file(path, [encode(e, "c") for e in evs], 3, "S")
    raw = bytearray(open(path, "rb").read())
    raw[-20] ^= 0xFF  # inside the last chunk's body or index
    open(path, "wb").write(bytes(raw))
    seen = {}
    for impl in ("c", "pure"):
        codec_c.set_implementation(impl)
        try:
            with MarketDataReplayer(path) as rp:
                seen[impl] = (len(list(rp.events())), [str(p) for p in rp.problems])
        finally:
            codec_c.set_implementation(IMPL)
    assert seen["c"] == seen["pure"]
    assert seen["c"][0] == 6 and "chunk body CRC mismatch" in seen["c"][1][0]


@pytest.mark.skipif(not codec_c.AVAILABLE or not __import__("ttxt_mp._ccodec").
                    _ccodec.fast_crc_available(), reason="no PCLMULQDQ CRC on this CPU")  # fmt: skip
@SETTINGS
@given(evs=st.lists(any_event, min_size=1, max_size=12), chunk=st.integers(1, 4),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3),
       junk=st.binary(max_size=50), cut=st.integers(0, 60))  # fmt: skip
def test_c_chunk_scan_matches_the_python_walk_on_damaged_files(tmp_path_factory, evs, chunk,
                                                               flips, junk, cut):
    """The compiled header walk (``_ccodec.scan_headers``) gives the same chunk index, the
    same problems (offset, length, reason) and the same end as the Python loop, whatever
    is damaged: header bytes, a truncated tail, garbage between or after chunks."""
    from ttxt_mp.storage.format import FILE_HEADER_SIZE
    from ttxt_mp.storage.scan import scan_chunks

    d = tmp_path_factory.mktemp("scan")
    path = os.path.join(d, "F.bin")
    write_file(path, [encode(e, "c") for e in evs], chunk, "S")
    raw = bytearray(open(path, "rb").read())
    mid = FILE_HEADER_SIZE + (len(raw) - FILE_HEADER_SIZE) // 2
    raw[mid:mid] = junk  # garbage inside the stream (may split a chunk)
    for at, x in flips:
        raw[FILE_HEADER_SIZE + at % (len(raw) - FILE_HEADER_SIZE)] ^= x
    buf = bytes(raw[: len(raw) - cut] if cut < len(raw) - FILE_HEADER_SIZE else raw)
    got = {}
    for impl in ("c", "pure"):
        codec_c.set_implementation(impl)
        try:
            ix = scan_chunks(buf, "F.bin", FILE_HEADER_SIZE)
        finally:
            codec_c.set_implementation(IMPL)
        got[impl] = ([a.tolist() for a in (ix.pos, ix.count, ix.body_len, ix.first_ts,
                                           ix.last_ts, ix.body_crc)],
                     [(p.offset, p.length, p.reason) for p in ix.problems], ix.end)  # fmt: skip
    assert got["c"] == got["pure"]
    if not flips and not junk and not cut:
        assert len(got["c"][0][0]) == -(-len(evs) // chunk) and not got["c"][1]
