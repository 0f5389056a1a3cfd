"""Recorder and replayer through the real shared-memory ring (ttxt_mp.shm)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from storage_helpers import book, record, replay

from ttxt_mp.events import GapNotice, MarketTrades, Side, Trade
from ttxt_mp.storage import MarketDataRecorder, MarketDataReplayer

shm = pytest.importorskip("ttxt_mp.shm")


@pytest.fixture
def ring_name(request):
    name = f"st{os.getpid()}-{request.node.name[-20:]}".replace("_", "-")
    try:
        yield name
    finally:
        from ttxt_mp.shm.objects import remove_ring_objects

        remove_ring_objects(name)
        assert shm.list_objects(name) == []


def _trades(i: int) -> MarketTrades:
    return MarketTrades(exchange="bybit", symbol="ETH/USDT", exch_ts=book(i).exch_ts + 1,
                        trades=(Trade(f"t{i}", 10.0 + i, 1.0, Side.BUY, 5),))  # fmt: skip


def test_replay_into_a_ring_is_what_a_live_consumer_sees(rec_dir, ring_name):
    evs = [x for i in range(300) for x in (book(i), _trades(i))]
    record(evs, rec_dir, chunk_events=17)
    ring = shm.ShmQueue.create(ring_name, capacity=1024, slot_size=256, policy="block")
    try:
        consumer = shm.ShmQueue.attach(ring_name, start="oldest")
        got: list = []
        t = threading.Thread(target=lambda: got.extend(consumer), daemon=True)
        t.start()
        stats = MarketDataReplayer(rec_dir).publish(ring, close=True)
        t.join(20)
        consumer.close()
        assert stats.events == len(evs) and got == evs
    finally:
        ring.unlink()
        ring.close()


def test_recorder_on_a_ring_stores_ring_bytes_and_gaps(rec_dir, ring_name):
    ring = shm.ShmQueue.create(ring_name, capacity=64, slot_size=256, policy="overwrite")
    try:
        consumer = shm.ShmQueue.attach(ring_name, start="oldest")
        first = [book(i) for i in range(40)]
        for ev in first:
            ring.put(ev)
        lapped = [book(i, symbol="ETH/USDT") for i in range(40, 240)]  # laps the recorder
        for ev in lapped:
            ring.put(ev)
        ring.close()
        stats = MarketDataRecorder(consumer, rec_dir, fsync_interval=None).run()
        consumer.close()
    finally:
        ring.unlink()
    assert stats.gaps == 1 and stats.lost == 240 - 64
    out = replay(rec_dir)
    gaps = [e for e in out if isinstance(e, GapNotice)]
    assert [g.lost for g in gaps] == [240 - 64]  # recorded in several files, replayed once
    assert [e for e in out if not isinstance(e, GapNotice)] == lapped[-64:]


def test_replay_cli_publishes_into_a_named_ring(rec_dir, ring_name):
    import argparse

    from ttxt_mp.engine.naming import engine_objects
    from ttxt_mp.storage.replay_cli import add_replay_arguments, replay_main

    evs = [book(i) for i in range(50)]
    record(evs, rec_dir)
    engine = ring_name.replace("-", "_")[:24]
    ring = f"{engine}-replay-market"  # --name ENGINE-CONNECTOR-market: that one ring
    args = add_replay_arguments(argparse.ArgumentParser()).parse_args(
        [str(rec_dir), "--name", ring, "--wait-consumers", "1"]
    )
    result: list = []
    t = threading.Thread(target=lambda: result.append(replay_main(args)), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    consumer = None
    while consumer is None and time.monotonic() < deadline:
        try:
            consumer = shm.ShmQueue.attach(ring, start="oldest")
        except shm.RingNotFound:
            time.sleep(0.01)
    assert consumer is not None
    try:
        got = list(consumer)
    finally:
        consumer.close()
    t.join(10)
    assert result == [0] and got == evs
    assert engine_objects(engine) == []


def test_record_cli_records_an_engines_market_rings(rec_dir, ring_name):
    import argparse

    from ttxt_mp.shm.objects import remove_ring_objects
    from ttxt_mp.storage.recorder import add_record_arguments, record_main

    names = [f"{ring_name}-binance-market", f"{ring_name}-bybit-market"]
    rings = [shm.ShmQueue.create(n, capacity=256, slot_size=256) for n in names]

    def produce() -> None:
        for i in range(5):
            for r, ex in zip(rings, ("binance", "bybit"), strict=True):
                r.put(book(i, exchange=ex))
        for r in rings:  # each recorder ends when its ring closes
            r.close()

    args = add_record_arguments(argparse.ArgumentParser()).parse_args(
        [ring_name, "--dir", str(rec_dir), "--fsync-interval", "0"]
    )
    timer = threading.Timer(0.3, produce)
    try:
        timer.start()
        assert record_main(args) == 0  # in the main thread: it installs signal handlers
    finally:
        timer.cancel()
        for n in names:
            remove_ring_objects(n)
    out = replay(rec_dir)
    assert sorted(os.listdir(rec_dir)) == ["BINANCE_BTC_USDT.bin", "BYBIT_BTC_USDT.bin"]
    assert [e.first_update_id for e in out if e.exchange == "binance"] == list(range(5))
    assert [e.first_update_id for e in out if e.exchange == "bybit"] == list(range(5))
