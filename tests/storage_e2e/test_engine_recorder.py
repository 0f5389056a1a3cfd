"""The engine recorder child's parts, on rings this test creates (no engine, fast)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from ttxt_mp.engine.protocol import EXIT_PERMANENT, ChildReport, Reporter
from ttxt_mp.events import GapNotice, Orderbook
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm.objects import remove_ring_objects
from ttxt_mp.storage import MarketDataReplayer
from ttxt_mp.storage.engine_recorder import (
    EngineRecorder,
    load_state,
    recording_dir,
    state_path,
)
from ttxt_mp.storage.format import file_name

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def engine():
    name = f"er{os.getpid()}"
    try:
        yield name
    finally:
        remove_ring_objects(f"{name}-binance-market")


def _ring(engine: str) -> ShmQueue:
    return ShmQueue.create(f"{engine}-binance-market", capacity=1024,
                           metadata={"exchange": "binance", "symbols": SYMBOLS})  # fmt: skip


def _put(pub: ShmQueue, start: int, n: int) -> None:
    for i in range(start, start + n):
        pub.put(Orderbook(exchange="binance", symbol=SYMBOLS[i % 2], exch_ts=1000 + i,
                          bids=((100.0, 1.0),), first_update_id=i, last_update_id=i))  # fmt: skip


def _record(engine: str, directory: Path, until) -> EngineRecorder:
    """Run an EngineRecorder until ``until(recorder)`` holds, then stop it cleanly."""
    stop = threading.Event()
    rec = EngineRecorder(engine, directory, chunk_events=7, rescan_interval=0.05)
    out = io.StringIO()
    t = threading.Thread(target=rec.run, args=(stop, Reporter(out, interval=0.0), 0.02))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not until(rec):
            assert time.monotonic() < deadline, "recorder did not get there in 10 s"
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    rec.reports = [msgspec.json.decode(line, type=ChildReport) for line in out.getvalue().splitlines()]
    return rec


def _events(rec: EngineRecorder) -> int:
    return sum(r.stats.events for r in [*rec.rings.values(), *rec.finished])


def test_recording_dir_is_relative_to_the_config_file(tmp_path):
    cfg = tmp_path / "conf" / "engine.toml"
    assert recording_dir("rec", cfg) == tmp_path / "conf" / "rec"
    assert recording_dir("/data/rec", cfg) == Path("/data/rec")
    assert recording_dir("~/rec", cfg) == Path.home() / "rec"


def test_child_refuses_a_bad_config_naming_it(tmp_path):
    bad = tmp_path / "nope.toml"
    p = subprocess.run([sys.executable, "-m", "ttxt_mp.storage.recorder", "--engine", "x",
                        "--config", str(bad)], capture_output=True, timeout=60)  # fmt: skip
    assert p.returncode == EXIT_PERMANENT  # permanent: the supervisor does not restart it
    assert "nope.toml" in p.stderr.decode() and "cannot read config" in p.stderr.decode()


def test_restart_records_exactly_the_unrecorded_events_as_a_gap(engine, tmp_path):
    pub = _ring(engine)
    try:
        _put(pub, 0, 100)
        first = _record(engine, tmp_path, lambda r: _events(r) >= 100)
        assert first.reports[-1].state == "STOPPED" and first.reports[-1].events >= 100
        state = load_state(state_path(tmp_path, f"{engine}-binance-market"))
        assert state is not None and state.written_position == 100  # clean stop: all written
        _put(pub, 100, 40)  # nobody records these
        done: list[bool] = []

        def attached_then_ten_more(r: EngineRecorder) -> bool:
            if r.rings and not done:  # the new recorder starts at the newest event
                _put(pub, 140, 10)
                done.append(True)
            return _events(r) >= 11  # its gap notice and the 10 new events

        second = _record(engine, tmp_path, attached_then_ten_more)
        assert second.reports[-1].gaps == 1, second.reports
    finally:
        pub.close()
    with MarketDataReplayer(tmp_path / file_name("binance", "BTC/USDT")) as rp:
        got = list(rp.events())
    assert [g.lost for g in got if isinstance(g, GapNotice)] == [40]
    ids = [e.first_update_id for e in got if isinstance(e, Orderbook)]
    assert ids == list(range(0, 100, 2)) + list(range(140, 150, 2)), ids  # nothing twice
    assert isinstance(got[50], GapNotice)  # in its place: between the two runs


def test_a_new_ring_instance_is_read_from_its_oldest_event(engine, tmp_path):
    pub = _ring(engine)
    try:
        _put(pub, 0, 30)
        _record(engine, tmp_path, lambda r: _events(r) >= 30)
    finally:
        pub.close()
        remove_ring_objects(f"{engine}-binance-market")
    time.sleep(0.01)
    pub = _ring(engine)  # same name, a new engine run: not a restart
    try:
        _put(pub, 1000, 30)
        rec = _record(engine, tmp_path, lambda r: _events(r) >= 30)
        assert rec.reports[-1].gaps == 0
    finally:
        pub.close()
    with MarketDataReplayer(tmp_path / file_name("binance", "ETH/USDT")) as rp:
        ids = [e.first_update_id for e in rp.events()]
    assert ids == list(range(1, 30, 2)) + list(range(1001, 1030, 2))


@pytest.mark.parametrize("drain", [0.0, 1.0])
def test_stop_drains_what_the_queue_holds_only_when_asked(tmp_path, drain):
    from ttxt_mp import AsyncioQueue
    from ttxt_mp.storage import MarketDataRecorder

    q = AsyncioQueue()
    for i in range(50):
        q.put(Orderbook(exchange="binance", symbol="BTC/USDT", exch_ts=1 + i, last_update_id=i))
    rec = MarketDataRecorder(q, tmp_path, drain_timeout=drain)
    rec.stop(timeout=0)  # stop requested before it read anything
    assert rec.run().events == (50 if drain else 0)
