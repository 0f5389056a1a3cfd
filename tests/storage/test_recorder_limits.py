"""Issue 9 items 10 and 11 for the recorder: a full disk keeps memory bounded and logs one
line per condition; an idle recorder stays off the CPU; recordings and state files are
private (0600 by default, configurable) and never opened through a symlink."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lines import Lines
from rss_sampling import cpu_seconds
from storage_helpers import book, record, replay

from ttxt_mp import AsyncioQueue
from ttxt_mp.events import GapNotice, Orderbook
from ttxt_mp.storage import MarketDataRecorder
from ttxt_mp.storage import writer as writer_mod
from ttxt_mp.storage.engine_recorder import RingState, load_state, save_state
from ttxt_mp.storage.writer import ChunkFile, parse_mode

SYMS = ("BTC/USDT", "ETH/USDT", "SOL/USDC")


def until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class TinyDisk:
    """A 512 KiB tmpfs (when mount works, i.e. as root), else a fake writer raising ENOSPC;
    ``fill()`` leaves no free byte, ``free()`` gives the space back."""

    def __init__(self, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = base / "disk"
        self.dir.mkdir()
        self.full = False
        self.mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(self.dir)],
            capture_output=True,
        ).returncode == 0  # fmt: skip
        if not self.mounted:
            real = os.write

            def enospc(fd: int, data: bytes) -> int:
                if self.full:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(fd, data)

            monkeypatch.setattr(writer_mod, "_write", enospc)

    def fill(self) -> None:
        self.full = True
        if self.mounted:
            fd = os.open(self.dir / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for size in (65536, 4096, 512, 1):
                    with contextlib.suppress(OSError):
                        while True:
                            os.write(fd, b"\0" * size)
            finally:
                os.close(fd)

    def free(self) -> None:
        self.full = False
        if self.mounted:
            (self.dir / "filler").unlink()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TinyDisk]:
    d = TinyDisk(tmp_path, monkeypatch)
    try:
        yield d
    finally:
        d.close()


def test_full_disk_buffers_a_bounded_amount_logs_once_and_records_the_gap(
    disk: TinyDisk, caplog: pytest.LogCaptureFixture
) -> None:
    rec_dir = disk.dir / "rec"
    rec_dir.mkdir()
    disk.fill()
    q = AsyncioQueue()
    limit = 64_000
    rec = MarketDataRecorder(q, rec_dir, chunk_events=20, max_chunk_age=0.02,
                             retry_interval=0.02, max_buffer_bytes=limit,
                             fsync_interval=None)  # fmt: skip
    caplog.set_level(logging.WARNING, logger="ttxt_mp.storage")
    put = 0
    worst = 0
    with rec:
        deadline = time.monotonic() + 3.0  # ~150 retry rounds over 3 files
        while time.monotonic() < deadline:
            for _ in range(60):
                q.put(book(put, symbol=SYMS[put % 3]))
                put += 1
            worst = max(worst, rec.stats.pending_bytes)
            time.sleep(0.005)
        until(lambda: rec.stats.dropped > 0, 10, "events to be dropped")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        # one line for the condition, not one per file per retry
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "No space left" in errors[0].getMessage()
        assert rec.stats.write_errors > 10
        chunk_bytes = 20 * 400  # a generous size of one 20-event chunk
        assert worst <= limit + len(SYMS) * chunk_bytes, worst
        disk.free()
        for _ in range(30):
            q.put(book(put, symbol=SYMS[put % 3]))
            put += 1
        until(lambda: rec.stats.pending_chunks == 0 and rec.stats.events == put, 10,
              "writes to succeed again")  # fmt: skip
        q.close()
    s = rec.stats
    assert s.events == put and s.pending_chunks == 0
    assert s.lost >= s.dropped > 0
    events = replay(rec_dir)
    gaps = [e for e in events if isinstance(e, GapNotice)]
    books = [e for e in events if isinstance(e, Orderbook)]
    # every event is either in the files or counted in a gap record of its file
    assert sum(g.lost for g in gaps) == s.dropped
    assert len(books) + s.dropped == put
    assert {g.symbol for g in gaps} <= set(SYMS)
    assert any("recording writes succeed again" in r.getMessage() for r in caplog.records)


def test_write_errors_are_logged_again_after_the_interval(rec_dir, monkeypatch, caplog):
    monkeypatch.setattr(writer_mod, "_write", lambda fd, data: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))  # fmt: skip
    caplog.set_level(logging.ERROR, logger="ttxt_mp.storage")
    q = AsyncioQueue()
    rec = MarketDataRecorder(q, rec_dir, chunk_events=5, max_chunk_age=0.01, retry_interval=0.01,
                             error_log_interval=0.3, close_timeout=0.1)  # fmt: skip
    with rec:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 1.0:
            q.put(book(i))
            i += 1
            time.sleep(0.002)
    n = len([r for r in caplog.records if "recording writes fail" in r.getMessage()])
    assert 2 <= n <= 5, n  # first + about one per 0.3 s, not one per 10 ms retry
    assert rec.stats.write_errors > 20


# ---------------------------------------------------------------------- idle CPU

IDLE_CHILD = r"""
import sys, time
from ttxt_mp.shm import ShmQueue
from ttxt_mp.storage import MarketDataRecorder
ring = ShmQueue.attach(sys.argv[1], start="oldest")
rec = MarketDataRecorder(ring, sys.argv[2]).start()
print("ready", flush=True)
sys.stdin.readline()
rec.stop()
"""


def test_idle_recorder_uses_under_one_percent_of_a_core(tmp_path: Path) -> None:
    from ttxt_mp.shm import ShmQueue

    name = f"idlerec{os.getpid()}"
    ring = ShmQueue.create(name)
    child = None
    try:
        ring.put(book(1))  # something recorded first: the idle part follows real work
        child = subprocess.Popen([sys.executable, "-c", IDLE_CHILD, name, str(tmp_path / "r")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert Lines(child.stdout).next(30, "the idle recorder ready").strip() == "ready"
        until(lambda: (tmp_path / "r" / "BINANCE_BTC_USDT.bin").exists(), 10, "the first write")
        time.sleep(0.5)  # the back-off reaches its longest sleep
        c0, t0 = cpu_seconds(child.pid), time.monotonic()
        time.sleep(4.0)
        used = (cpu_seconds(child.pid) - c0) / (time.monotonic() - t0)
        assert used < 0.01, f"idle recorder used {used * 100:.1f} % of a core"
    finally:
        if child is not None:
            with contextlib.suppress(OSError):
                child.communicate("\n", timeout=10)
            if child.poll() is None:
                child.kill()
                child.wait()
        ring.close()
        with contextlib.suppress(Exception):
            ring.unlink()


# ---------------------------------------------------------------------- file modes


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_recordings_are_0600_by_default_and_configurable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        record([book(1), book(2, symbol="ETH/USDT")], tmp_path / "a")
        record([book(1)], tmp_path / "b", file_mode=0o640)
    finally:
        os.umask(old)
    files = list((tmp_path / "a").glob("*.bin"))
    assert len(files) == 2 and all(_mode(f) == 0o600 for f in files)
    assert _mode(tmp_path / "a") == 0o700
    assert [_mode(f) for f in (tmp_path / "b").glob("*.bin")] == [0o640]
    assert _mode(tmp_path / "b") == 0o750


def test_an_existing_loose_recording_is_tightened(tmp_path: Path) -> None:
    record([book(1)], tmp_path)
    f = next(tmp_path.glob("*.bin"))
    f.chmod(0o644)
    record([book(2)], tmp_path)
    assert _mode(f) == 0o600
    assert [e.first_update_id for e in replay(tmp_path)] == [1, 2]


def test_a_symlinked_recording_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "BINANCE_BTC_USDT.bin"
    link.symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        ChunkFile(str(link), "binance", "BTC/USDT")
    assert victim.read_bytes() == b"precious"


def test_state_files_are_private_and_links_are_not_followed(tmp_path: Path) -> None:
    p = tmp_path / ".recorder-x.state"
    save_state(p, RingState("x", 1, 2))
    assert _mode(p) == 0o600 and load_state(p) == RingState("x", 1, 2)
    save_state(p, RingState("x", 1, 3), 0o640)
    assert _mode(p) == 0o640
    # a planted link in place of the temporary file is not written through
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.symlink_to(victim)
    save_state(p, RingState("x", 1, 4))
    assert victim.read_bytes() == b"precious" and load_state(p).written_position == 4
    # a state file that is a link is not trusted
    p.unlink()
    p.symlink_to(victim)
    assert load_state(p) is None


@pytest.mark.parametrize("text", ["0644", "0666", "0400", "0755", "rw", "0o600x"])
def test_bad_file_modes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_mode(text)


def test_config_file_mode_is_validated(tmp_path: Path) -> None:
    from ttxt_mp.config import ConfigError, parse_config

    base = '[engine]\nname = "m"\n[[connectors]]\nexchange = "binance"\nsymbols = ["BTC/USDT"]\n'
    assert parse_config(base + '[recorder]\nfile_mode = "0640"\n').recorder.mode() == 0o640
    assert parse_config(base).recorder.mode() == 0o600
    with pytest.raises(ConfigError, match=r"recorder\.file_mode"):
        parse_config(base + '[recorder]\nfile_mode = "0644"\n')
