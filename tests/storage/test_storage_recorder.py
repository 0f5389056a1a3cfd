"""Recorder behaviour: prompt stop, failed writes kept and retried, restart recovery."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest
from storage_helpers import T0, book, record, replay

from ttxt_mp import AsyncioQueue
from ttxt_mp.storage import MarketDataRecorder, RecordingFile, StorageError
from ttxt_mp.storage import writer as writer_mod
from ttxt_mp.storage.format import CHUNK_HEADER_SIZE, FILE_HEADER_SIZE, pack_file_header
from ttxt_mp.storage.writer import ChunkFile


def test_stop_returns_promptly_without_traffic(rec_dir):
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir).start()
    time.sleep(0.2)
    t = time.monotonic()
    rec.stop()
    assert time.monotonic() - t < 0.5
    assert not rec._thread.is_alive()


def test_stop_writes_partial_chunks(rec_dir):
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=1000, max_chunk_age=3600).start()
    for i in range(10):
        q.put(book(i))
    deadline = time.monotonic() + 5
    while rec.stats.events < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.stats.chunks == 0  # still buffering: 10 < 1000 events
    rec.stop()
    assert replay(rec_dir) == [book(i) for i in range(10)]


def test_partial_chunk_written_after_max_age(rec_dir):
    q = AsyncioQueue()
    written = threading.Event()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=1000, max_chunk_age=0.1,
                             on_chunk=lambda *a: written.set()).start()  # fmt: skip
    try:
        q.put(book(1))
        assert written.wait(2.0), "a quiet instrument's events must reach the disk"
        assert replay(rec_dir) == [book(1)]
    finally:
        rec.stop()


async def test_arun_stops_on_queue_close(rec_dir):
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=3)
    for i in range(7):
        await q.aput(book(i))
    q.close()
    stats = await rec.arun()
    assert (stats.events, stats.chunks) == (7, 3)


def test_failed_writes_are_reported_retried_and_lose_nothing(rec_dir, monkeypatch):
    real = os.write
    failures = {"left": 3}

    def flaky(fd, data):
        if len(data) > FILE_HEADER_SIZE and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(writer_mod, "_write", flaky)
    errors = []
    q = AsyncioQueue()
    evs = [book(i) for i in range(100)]
    for ev in evs:
        q.put(ev)
    q.close()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=10, retry_interval=0.02,
                             on_error=lambda path, e: errors.append((path, e)))  # fmt: skip
    stats = rec.run()
    assert failures["left"] == 0 and len(errors) == 3 and stats.write_errors == 3
    assert errors[0][0].endswith("BINANCE_BTC_USDT.bin")
    assert "No space left" in stats.last_error
    assert stats.pending_chunks == 0 and stats.chunks == 10
    assert replay(rec_dir) == evs


def test_short_write_is_rolled_back_then_retried(rec_dir, monkeypatch):
    real = os.write
    state = {"short": 1}

    def short(fd, data):
        if len(data) > FILE_HEADER_SIZE and state["short"]:
            state["short"] -= 1
            return real(fd, data[: len(data) // 2])
        return real(fd, data)

    monkeypatch.setattr(writer_mod, "_write", short)
    evs = [book(i) for i in range(30)]
    stats = record(evs, rec_dir, chunk_events=10, retry_interval=0.01)
    assert stats.write_errors == 1 and "short write" in stats.last_error
    assert replay(rec_dir) == evs
    assert RecordingFile(rec_dir / "BINANCE_BTC_USDT.bin").problems == []


def test_unopenable_file_is_reported_and_retried(rec_dir):
    blocker = rec_dir / "BINANCE_BTC_USDT.bin"
    blocker.mkdir()  # a directory where the file should be: open() fails for real
    errors = []
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=5, retry_interval=0.05,
                             on_error=lambda p, e: errors.append(e)).start()  # fmt: skip
    try:
        evs = [book(i) for i in range(20)]
        for ev in evs:
            q.put(ev)
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert errors and isinstance(errors[0], IsADirectoryError)
        assert rec.stats.pending_chunks >= 1
        blocker.rmdir()  # the operator fixes it; the kept chunks then go out
        while rec.stats.pending_chunks and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rec.stop()
    assert replay(rec_dir) == evs


def test_restart_truncates_a_torn_chunk_and_appends(rec_dir):
    first = [book(i) for i in range(40)]
    record(first, rec_dir, chunk_events=10)
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    good = path.stat().st_size
    torn = path.read_bytes()[FILE_HEADER_SIZE : FILE_HEADER_SIZE + CHUNK_HEADER_SIZE + 25]
    with open(path, "ab") as f:
        f.write(torn)  # a chunk cut by a crash in the middle of its write
    assert replay(rec_dir) == first  # the reader skips it ...
    second = [book(i) for i in range(40, 70)]
    stats = record(second, rec_dir, chunk_events=10)
    assert stats.truncated_bytes == len(torn)  # ... and the recorder cuts it
    assert replay(rec_dir) == first + second
    assert path.stat().st_size > good and RecordingFile(path).problems == []


def test_restart_with_bad_body_crc_in_last_chunk(rec_dir):
    record([book(i) for i in range(30)], rec_dir, chunk_events=10)
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # last chunk damaged (e.g. not fsynced before a power loss)
    path.write_bytes(bytes(data))
    stats = record([book(99)], rec_dir, chunk_events=10)
    assert stats.truncated_bytes > 0
    assert replay(rec_dir) == [book(i) for i in range(20)] + [book(99)]


def test_torn_file_header_is_recreated(rec_dir):
    path = rec_dir / "BINANCE_BTC_USDT.bin"
    path.write_bytes(pack_file_header("binance", "BTC/USDT", T0)[:50])
    stats = record([book(1)], rec_dir)
    assert stats.truncated_bytes == 50
    assert replay(rec_dir) == [book(1)]


def test_foreign_file_is_kept_and_recording_goes_beside_it(rec_dir):
    (rec_dir / "BINANCE_BTC_USDT.bin").write_bytes(b"not a recording" * 10)
    record([book(1)], rec_dir)
    assert (rec_dir / "BINANCE_BTC_USDT.bin").read_bytes() == b"not a recording" * 10
    assert replay(rec_dir / "BINANCE_BTC_USDT.1.bin") == [book(1)]


def test_one_writer_per_file(rec_dir):
    path = str(rec_dir / "BINANCE_BTC_USDT.bin")
    a = ChunkFile(path, "binance", "BTC/USDT")
    try:
        with pytest.raises(StorageError, match="being written by another recorder"):
            ChunkFile(path, "binance", "BTC/USDT")
    finally:
        a.close()


def test_daily_rotation(rec_dir):
    day = 86_400 * 10**9
    now = {"t": T0 + day - 10**9}
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir, rotate_daily=True, chunk_events=1,
                             clock=lambda: now["t"], poll_interval=0.01).start()  # fmt: skip
    try:
        q.put(book(1))
        deadline = time.monotonic() + 5
        while rec.stats.chunks < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        now["t"] += 2 * 10**9  # past midnight UTC
        time.sleep(0.05)
        q.put(book(2))
        while rec.stats.chunks < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rec.stop()
    assert replay(rec_dir / "BINANCE_BTC_USDT_2024-05-01.bin") == [book(1)]
    assert replay(rec_dir / "BINANCE_BTC_USDT_2024-05-02.bin") == [book(2)]
    assert RecordingFile(rec_dir / "BINANCE_BTC_USDT_2024-05-02.bin").header.day == 20240502


def test_kinds_filter_and_bad_options(rec_dir):
    from storage_helpers import status

    stats = record([book(1), status("binance", T0)], rec_dir, kinds=[1])
    assert stats.events == 1 and os.listdir(rec_dir) == ["BINANCE_BTC_USDT.bin"]
    with pytest.raises(ValueError, match="chunk_events must be >= 1"):
        MarketDataRecorder(AsyncioQueue(), rec_dir, chunk_events=0)


def test_fsync_after_every_chunk(rec_dir, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(writer_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    record([book(i) for i in range(30)], rec_dir, chunk_events=10, fsync_interval=0)
    assert len(calls) == 5  # file header, directory entry, then each of the 3 chunks
