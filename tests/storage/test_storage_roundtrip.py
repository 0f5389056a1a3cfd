"""File names, headers and the write -> read round trip (hypothesis)."""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import T0, book, market_event, record, replay, status

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.storage import FormatError, RecordingFile, file_name
from ttxt_mp.storage.format import (
    FILE_HEADER_SIZE,
    pack_file_header,
    parse_file_header,
)


def test_file_names():
    assert file_name("binance", "BTC/USDT") == "BINANCE_BTC_USDT.bin"
    assert file_name("bybit", "btc/usdt:usdt") == "BYBIT_BTC_USDT-USDT.bin"
    assert file_name("binance", "BTC/USDT", 20240501) == "BINANCE_BTC_USDT_2024-05-01.bin"
    assert file_name("binance", "") == "BINANCE.bin"
    assert file_name("", "") == "_ENGINE.bin"
    with pytest.raises(ValueError, match="no exchange"):
        file_name("", "BTC/USDT")


def test_file_header_errors_name_the_cause():
    head = pack_file_header("binance", "BTC/USDT", T0)
    h = parse_file_header(head, "x.bin")
    assert (h.exchange, h.symbol, h.created_ns) == ("binance", "BTC/USDT", T0)
    with pytest.raises(FormatError, match="shorter than the 96-byte"):
        parse_file_header(head[:50], "x.bin")
    with pytest.raises(FormatError, match="not a ttxt-mp recording"):
        parse_file_header(b"PK\x03\x04" + head[4:], "x.bin")
    with pytest.raises(FormatError, match="header CRC mismatch"):
        parse_file_header(head[:40] + b"X" + head[41:], "x.bin")


def test_other_layouts_are_refused(monkeypatch):
    head = pack_file_header("binance", "BTC/USDT", T0)
    monkeypatch.setattr(codec, "registry_hash", lambda: b"\1" * 8)
    with pytest.raises(FormatError, match="different ttxt-mp event definitions"):
        parse_file_header(head, "x.bin")


def _expected_merge(events, chunk_dir_paths):
    """Reference: group by file as the recorder does, then a stable k-way merge by
    the running max of each file's timestamps (ties: file order)."""
    per_file: dict[str, list] = {}
    for ev in events:
        per_file.setdefault(file_name(ev.exchange, ev.symbol), []).append(ev)
    seqs = []
    for name in sorted(per_file):
        run, seq = -(2**63), []
        for ev in per_file[name]:
            run = max(run, ev.exch_ts or ev.local_ts)
            seq.append((run, ev))
        seqs.append(seq)
    return [ev for _, ev in heapq.merge(*seqs, key=lambda x: x[0])]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(market_event(), max_size=120), chunk=st.integers(1, 40))
def test_any_events_read_back_identical(events, chunk):
    d = tempfile.mkdtemp(prefix="ttxt-rt-")
    try:
        stats = record(events, d, chunk_events=chunk)
        assert stats.events == len(events) and stats.pending_chunks == 0
        assert replay(d) == _expected_merge(events, d)
        for name in os.listdir(d):  # each file alone: exactly its events, in order
            f = RecordingFile(os.path.join(d, name))
            mine = [e for e in events if file_name(e.exchange, e.symbol) == name]
            assert replay(os.path.join(d, name)) == mine
            assert f.events == len(mine)
            assert all(int(c) <= chunk for c in f.index.count)
    finally:
        shutil.rmtree(d)


def test_single_instrument_keeps_order_even_when_time_goes_back(rec_dir):
    evs = [book(i, ts=T0 + (1000 - i if i % 7 == 0 else i)) for i in range(500)]
    record(evs, rec_dir, chunk_events=13)
    assert replay(rec_dir) == evs


def test_ring_wide_gap_is_in_every_file_and_replayed_once(rec_dir):
    evs = [book(0, "BTC/USDT"), book(1, "ETH/USDT"), status("binance", T0 + 1500),
           GapNotice(exchange="binance", local_ts=T0 + 2500, lost=42), book(3, "BTC/USDT"),
           book(4, "ETH/USDT")]  # fmt: skip
    stats = record(evs, rec_dir, chunk_events=2)
    assert (stats.gaps, stats.lost) == (1, 42)
    for name in ("BINANCE.bin", "BINANCE_BTC_USDT.bin", "BINANCE_ETH_USDT.bin"):
        assert [e.lost for e in replay(rec_dir / name) if isinstance(e, GapNotice)] == [42]
    out = replay(rec_dir)
    assert [e for e in out if isinstance(e, GapNotice)] == [evs[3]]
    assert len(out) == len(evs)


def test_empty_file_header_only(rec_dir):
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    path.write_bytes(pack_file_header("binance", "BTC/USDT", T0))
    f = RecordingFile(path)
    assert (f.events, len(f.index), f.problems) == (0, 0, [])
    assert replay(rec_dir) == []
    assert os.path.getsize(path) == FILE_HEADER_SIZE
