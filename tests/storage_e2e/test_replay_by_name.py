"""``ttxt-mp replay DIR --name X`` registers like a running engine named X.

Real processes: the replay is ``python -m ttxt_mp.cli replay`` and so are the ``status``,
``tail`` and the second replay; the test process attaches by engine name. Every child is
killed and every /dev/shm object of the name removed in ``finally``, even on failure.
``--speed`` pacing is checked with lower bounds only (a loaded machine is only slower).
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ttxt_mp import AsyncioQueue
from ttxt_mp.client import attach
from ttxt_mp.engine import control
from ttxt_mp.engine.naming import read_engine
from ttxt_mp.engine.supervisor import EngineLock, remove_leftovers
from ttxt_mp.events import MarketTrades, Orderbook, Side, Trade
from ttxt_mp.queues import QueueClosed
from ttxt_mp.shm.objects import remove_ring_objects
from ttxt_mp.storage import MarketDataRecorder

pytestmark = pytest.mark.timeout(180)

T0 = 1_714_521_600_000_000_000  # 2024-05-01T00:00:00Z in ns
INSTRUMENTS = [("binance", "BTC/USDT"), ("binance", "ETH/USDT"), ("bybit", "BTC/USDT")]
CLI = [sys.executable, "-m", "ttxt_mp.cli"]


def _event(i: int, step_ns: int) -> Any:
    exchange, symbol = INSTRUMENTS[i % len(INSTRUMENTS)]
    ts = T0 + i * step_ns
    if i % 2:
        return MarketTrades(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + 7,
                            trades=(Trade(f"t{i}", 100.0 + i, 1.0, Side.BUY, ts),))  # fmt: skip
    return Orderbook(exchange=exchange, symbol=symbol, exch_ts=ts, local_ts=ts + 7,
                     is_snapshot=i < 3, bids=((99.0 - i % 5, 1.0),), asks=((101.0 + i % 5, 2.0),),
                     first_update_id=i, last_update_id=i)  # fmt: skip


def _record(directory: Path, n: int, step_ns: int = 1000) -> list[Any]:
    """``n`` events on three instruments of two exchanges, timestamps increasing by
    ``step_ns``, recorded through the Recorder API; returns them in recorded order."""
    events = [_event(i, step_ns) for i in range(n)]
    q = AsyncioQueue()
    for e in events:
        q.put(e)
    q.close()
    directory.mkdir()
    MarketDataRecorder(q, directory, max_chunk_age=3600.0, fsync_interval=None).run()
    return events


def _objects(name: str) -> list[str]:
    """Every /dev/shm object of engine ``name`` (lock, rings, FIFOs, semaphores)."""
    return sorted(glob.glob(f"/dev/shm/ttxt-{name}*") + glob.glob(f"/dev/shm/sem.ttxt-{name}*"))


def _cleanup(name: str) -> None:
    with contextlib.suppress(Exception):  # a ring named like the engine (old --name)
        remove_ring_objects(name)
    lock = EngineLock(name)
    try:
        lock.acquire()
        remove_leftovers(name)
    except Exception:
        pass
    finally:
        lock.release()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def names(request) -> Iterator[Any]:
    """``names("a")``: an engine name unique to this test process; all of them are
    cleaned up afterwards and must have left nothing in /dev/shm."""
    made: list[str] = []

    def make(tag: str) -> str:
        name = f"rpl{os.getpid()}{tag}"
        made.append(name)
        return name

    try:
        yield make
    finally:
        for n in made:
            _cleanup(n)
        for n in made:
            assert _objects(n) == [], f"leftover objects of {n}"


@contextlib.contextmanager
def _replay(*args: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([*CLI, "replay", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        _kill(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _wait_registered(name: str, proc: subprocess.Popen, timeout: float = 20.0) -> dict:
    """Until the replay's control socket answers as pid ``proc.pid``: its status."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"replay exited {proc.returncode}: {proc.stderr.read().decode()}")
        with contextlib.suppress(OSError):
            st = control.request(name, "status", timeout=2.0)
            if st.get("pid") == proc.pid:
                return st
        assert time.monotonic() < deadline, f"replay {name} did not register in {timeout}s"
        time.sleep(0.05)


def _finish(proc: subprocess.Popen, timeout: float = 30.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def _read_all(feed: Any, timeout: float = 20.0) -> list[Any]:
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"feed not closed within {timeout}s ({len(got)} events read)"
        try:
            got.append(feed.get(timeout=left))
        except QueueClosed:
            return got


def _by_exchange(events: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for e in events:
        out.setdefault(e.exchange, []).append(e)
    return out


def _run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=timeout)


# ---------------------------------------------------------------------- attach, status, tail


def test_attach_by_name_reads_the_recorded_events(tmp_path, names):
    name = names("a")
    recorded = _record(tmp_path / "rec", 300)
    with _replay(str(tmp_path / "rec"), "--name", name, "--wait-consumers", "1") as proc:
        st = _wait_registered(name, proc)
        rings = {f"{name}-binance-market", f"{name}-bybit-market"}
        assert {r["name"] for r in st["rings"]} == rings, st["rings"]
        info = read_engine(name)  # the engine lock, as a launched engine writes it
        assert info is not None and info.alive and info.pid == proc.pid
        assert {r["instance_id"] for r in st["rings"]} == {info.instance_id}
        with attach(name, wait=10.0) as feed:
            got = _read_all(feed)
        code, _, err = _finish(proc)
    assert code == 0, err
    # Each ring carries one exchange in recorded order; the feed merges the rings.
    assert _by_exchange(got) == _by_exchange(recorded)
    assert len(got) == len(recorded)
    stats = msgspec.json.decode(err.strip().splitlines()[-1])
    assert stats["events"] == len(recorded) and stats["problems"] == 0, stats
    assert _objects(name) == []  # rings, FIFOs and the lock are gone after a normal end


def test_second_replay_status_and_tail(tmp_path, names):
    name = names("b")
    _record(tmp_path / "rec", 300)
    rec = str(tmp_path / "rec")
    with _replay(rec, "--name", name, "--wait-consumers", "1") as first:
        _wait_registered(name, first)
        # The same name again: the engine's one-line refusal, nothing of the first touched.
        with _replay(rec, "--name", name) as second:
            code, out, err = _finish(second)
        assert code == 2, (code, err)
        assert len(err.splitlines()) == 1 and "already running" in err, err
        assert f"pid {first.pid}" in err, err
        assert first.poll() is None
        # `ttxt-mp status` finds it like an engine.
        st = _run("status", name)
        assert st.returncode == 0 and st.stderr == b"", st
        text = st.stdout.decode()
        assert f"{name}-binance-market" in text and f"{name}-bybit-market" in text, text
        assert f"pid {first.pid}" in text, text
        # `ttxt-mp tail` attaches by name (one consumer per ring: the replay starts).
        tail = _run("tail", name, "--count", "7")
        assert tail.returncode == 0, tail
        assert len(tail.stdout.decode().splitlines()) == 7, tail.stdout
        code, _, err = _finish(first)
    assert code == 0, err
    assert _objects(name) == []


# ---------------------------------------------------------------------- stop and crash


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_replay_and_removes_everything(tmp_path, names, sig):
    name = names("c")
    _record(tmp_path / "rec", 40, step_ns=50_000_000)  # 2 s of timestamps
    # --speed 0.05: 40 s of replay, so the signal arrives while it publishes.
    with _replay(str(tmp_path / "rec"), "--name", name, "--speed", "0.05",
                 "--wait-consumers", "1") as proc:  # fmt: skip
        _wait_registered(name, proc)
        assert _objects(name), "nothing registered?"
        with attach(name, wait=10.0) as feed:
            first = feed.get(timeout=20.0)  # publishing has started
            assert first.exchange == "binance"
            proc.send_signal(sig)
            code, _, err = _finish(proc, timeout=20.0)
            # The consumer sees the feed end cleanly (closed rings), not a dead producer.
            rest = _read_all(feed, timeout=10.0)
        assert code == 0, err
        assert len(rest) < 39, "the replay was not stopped"
    assert _objects(name) == []


def test_signal_while_waiting_for_consumers_removes_everything(tmp_path, names):
    name = names("d")
    _record(tmp_path / "rec", 30)
    with _replay(str(tmp_path / "rec"), "--name", name, "--wait-consumers", "1") as proc:
        _wait_registered(name, proc)
        proc.send_signal(signal.SIGTERM)
        code, _, err = _finish(proc, timeout=20.0)
    assert code == 0, err
    assert _objects(name) == []


def test_next_replay_takes_over_after_a_crash(tmp_path, names):
    name = names("e")
    recorded = _record(tmp_path / "rec", 120)
    rec = str(tmp_path / "rec")
    with _replay(rec, "--name", name, "--wait-consumers", "1") as crashed:
        _wait_registered(name, crashed)
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait(10)
    stale = _objects(name)
    assert any(p.endswith("-market") for p in stale), stale  # the rings stayed behind
    with _replay(rec, "--name", name, "--wait-consumers", "1") as proc:
        _wait_registered(name, proc)
        with attach(name, wait=10.0) as feed:
            got = _read_all(feed)
        code, _, err = _finish(proc)
    assert code == 0, err
    assert "leftover" in err, err  # said once, like the engine
    assert _by_exchange(got) == _by_exchange(recorded)
    assert _objects(name) == []


# ---------------------------------------------------------------------- --speed

SPAN_S = 2.0  # recorded timestamps span 2 s: 21 events 0.1 s apart


@pytest.mark.parametrize("speed", [4.0, 1.0])
def test_speed_paces_printed_events(tmp_path, speed):
    recorded = _record(tmp_path / "rec", 21, step_ns=100_000_000)
    nominal = SPAN_S / speed
    stamps: list[float] = []
    t0 = time.monotonic()
    with _replay(str(tmp_path / "rec"), "--speed", str(speed)) as proc:

        def read() -> None:
            for _line in proc.stdout:
                stamps.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        code = proc.wait(nominal + 60.0)
        wall = time.monotonic() - t0
        reader.join(10.0)
        err = proc.stderr.read().decode()
    assert code == 0, err
    assert len(stamps) == len(recorded)
    stats = msgspec.json.decode(err.strip().splitlines()[-1])
    assert stats["events"] == len(recorded), stats
    assert stats["seconds"] >= nominal * 0.99, stats  # the replay's own clock
    assert stamps[-1] - stamps[0] >= nominal * 0.8, stamps  # as the reader saw them
    assert nominal <= wall < nominal + 60.0


@pytest.mark.parametrize("speed", [4.0, 1.0])
def test_speed_paces_events_published_by_name(tmp_path, names, speed):
    name = names("f" if speed == 4.0 else "g")
    recorded = _record(tmp_path / "rec", 21, step_ns=100_000_000)
    nominal = SPAN_S / speed
    with _replay(str(tmp_path / "rec"), "--name", name, "--speed", str(speed),
                 "--wait-consumers", "1") as proc:  # fmt: skip
        _wait_registered(name, proc)
        stamps = []
        with attach(name, wait=10.0) as feed:
            t0 = time.monotonic()
            deadline = t0 + nominal + 60.0
            with contextlib.suppress(QueueClosed):
                while True:
                    feed.get(timeout=max(0.0, deadline - time.monotonic()))
                    stamps.append(time.monotonic())
        wall = time.monotonic() - t0
        code, _, err = _finish(proc)
    assert code == 0, err
    assert len(stamps) == len(recorded)
    stats = msgspec.json.decode(err.strip().splitlines()[-1])
    assert stats["seconds"] >= nominal * 0.99, stats
    assert stamps[-1] - stamps[0] >= nominal * 0.8, stamps
    assert nominal * 0.8 <= wall < nominal + 60.0
