"""Replayer: merge across instruments, filters, publishing, pacing, numpy batches, CLI."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time

import numpy as np
import pytest
from storage_helpers import T0, book, record, replay, status

from ttxt_mp import AsyncioQueue
from ttxt_mp.events import BookTicker, Kline, MarketTrades, Orderbook, Side, Trade
from ttxt_mp.storage import MarketDataReplayer
from ttxt_mp.storage.replay_cli import add_replay_arguments, replay_main
from ttxt_mp.storage.replayer import to_ns


def _interleaved(n=300):
    """Three instruments on two exchanges, timestamps interleaved, ids in global order."""
    syms = [("binance", "BTC/USDT"), ("binance", "ETH/USDT"), ("bybit", "BTC/USDT")]
    return [book(i, symbol=syms[i % 3][1], exchange=syms[i % 3][0]) for i in range(n)]


def test_merge_by_timestamp_across_instruments(rec_dir):
    evs = _interleaved()
    record(evs, rec_dir, chunk_events=7)
    assert replay(rec_dir) == evs
    # small blocks force many merge windows
    assert replay(rec_dir, block_events=5) == evs


def test_merge_ties_keep_file_order_and_status_files(rec_dir):
    a = [book(i, "BTC/USDT", ts=T0 + 100) for i in range(3)]
    b = [book(10 + i, "ETH/USDT", ts=T0 + 100) for i in range(3)]
    s = [status("binance", T0 + 50)]
    record(b + a + s, rec_dir)
    # files in name order: BINANCE.bin, BINANCE_BTC_USDT.bin, BINANCE_ETH_USDT.bin
    assert replay(rec_dir) == s + a + b


def test_time_range_filter(rec_dir):
    evs = _interleaved()
    record(evs, rec_dir, chunk_events=10)
    start, end = T0 + 50 * 1000, T0 + 120 * 1000
    assert replay(rec_dir, start=start, end=end) == evs[50:120]
    assert replay(rec_dir, start=start) == evs[50:]
    assert replay(rec_dir, end=end) == evs[:120]
    iso = dt.datetime.fromtimestamp(start / 1e9, dt.UTC).isoformat().replace("+00:00", "Z")
    assert replay(rec_dir, start=iso, end=end) == evs[50:120]
    assert replay(rec_dir, start=T0 + 10**12) == []


def test_exchange_and_symbol_filters(rec_dir):
    evs = _interleaved()
    record(evs + [status("bybit", T0 + 10**9)], rec_dir)
    assert replay(rec_dir, exchanges=["BINANCE"]) == [e for e in evs if e.exchange == "binance"]
    assert replay(rec_dir, symbols=["btc/usdt"]) == [e for e in evs if e.symbol == "BTC/USDT"]
    both = replay(rec_dir, exchanges=["bybit"], symbols=["BTC/USDT"])
    assert both == [e for e in evs if e.exchange == "bybit"]
    assert replay(rec_dir, exchanges=["bybit"])[-1].state.name == "UP"


def test_bad_arguments_are_refused(rec_dir):
    with pytest.raises(FileNotFoundError, match="no recording at"):
        MarketDataReplayer(rec_dir / "missing")
    with pytest.raises(ValueError, match="ISO 8601"):
        to_ns("yesterday")
    with pytest.raises(ValueError, match="no time zone"):
        to_ns(dt.datetime(2024, 5, 1))
    record([book(1)], rec_dir)
    with pytest.raises(ValueError, match="speed must be > 0"):
        MarketDataReplayer(rec_dir).publish(AsyncioQueue(), speed=0)


def test_publish_into_a_queue(rec_dir):
    evs = _interleaved(100)
    record(evs, rec_dir)
    q = AsyncioQueue()
    stats = MarketDataReplayer(rec_dir).publish(q, close=True)
    assert stats.events == 100
    assert list(q) == evs


class _RawQueue(AsyncioQueue):
    """A queue with the ring's raw API: it must be used instead of decoding."""

    def put_raw(self, kind, payload):
        assert isinstance(payload, bytes)
        self.put((kind, payload))

    def get_raw(self, timeout=None):
        return self.get(timeout)


def test_raw_api_is_used_both_ways(rec_dir, tmp_path):
    evs = _interleaved(50)
    record(evs, rec_dir)
    q = _RawQueue()
    MarketDataReplayer(rec_dir).publish(q, close=True)
    raw = list(q)
    assert all(isinstance(k, int) and isinstance(p, bytes) for k, p in raw)
    # and the recorder stores those bytes as they are
    q2 = _RawQueue()
    for r in raw:
        q2.put(r)
    q2.close()
    from ttxt_mp.storage import MarketDataRecorder

    MarketDataRecorder(q2, tmp_path / "again", fsync_interval=None).run()
    assert replay(tmp_path / "again") == evs


def test_speed_factor_paces_the_replay(rec_dir):
    # 21 events spread over 1 s of exchange time; at 5x that is ~0.2 s
    evs = [book(i, ts=T0 + i * 50_000_000) for i in range(21)]
    record(evs, rec_dir)
    q = AsyncioQueue()
    t = time.monotonic()
    MarketDataReplayer(rec_dir).publish(q, speed=5)
    took = time.monotonic() - t
    assert 0.18 <= took < 1.0, took
    t = time.monotonic()
    MarketDataReplayer(rec_dir).publish(q)
    assert time.monotonic() - t < 0.15
    assert q.qsize() == 42


async def test_apublish_runs_beside_the_event_loop(rec_dir):
    evs = [book(i, ts=T0 + i * 20_000_000) for i in range(11)]  # 0.2 s at 1x
    record(evs, rec_dir)
    q = AsyncioQueue()
    rp = MarketDataReplayer(rec_dir)
    task = asyncio.create_task(rp.apublish(q, speed=1.0, close=True))
    got = [ev async for ev in q]
    assert got == evs and (await task).events == 11


def test_stop_ends_a_paced_replay(rec_dir):
    record([book(i, ts=T0 + i * 10**9) for i in range(10)], rec_dir)  # 9 s at 1x
    rp = MarketDataReplayer(rec_dir)
    q = AsyncioQueue()
    t = time.monotonic()
    import threading

    threading.Timer(0.2, rp.stop).start()
    stats = rp.publish(q, speed=1)
    assert time.monotonic() - t < 1.0 and stats.events == 1


def test_batches_are_numpy_views(rec_dir):
    trades = MarketTrades(exchange="binance", symbol="BTC/USDT", exch_ts=T0 + 5, local_ts=T0 + 6,
                          trades=(Trade("t1", 101.0, 0.5, Side.SELL, T0 + 4),))  # fmt: skip
    kl = Kline(exchange="binance", symbol="BTC/USDT", exch_ts=T0 + 9, close=42.5)
    evs = [book(0), trades, kl]
    record(evs, rec_dir)
    batches = list(MarketDataReplayer(rec_dir).batches())
    b = batches[0] if len(batches) == 1 else None
    assert b is not None and len(b) == 3
    assert b.kind.tolist() == [1, 2, 3] and b.ts.tolist() == [T0, T0 + 5, T0 + 9]
    assert b.headers(Kline)["close"].tolist() == [42.5]
    assert b.headers(Orderbook)["n_bids"].tolist() == [2]
    assert list(b.events()) == evs
    assert [k for k, _ in b.raw()] == [1, 2, 3]
    assert isinstance(b.offset, np.ndarray) and b.offset.dtype == np.int64


def test_book_tickers_are_routed_by_instrument_and_replayed_in_time_order(rec_dir):
    """No time from the venue (exch_ts 0): the record is placed at its local_ts."""
    from ttxt_mp.storage.inspect import inspect_paths

    bt = [BookTicker(exchange="binance", symbol="ETH/USDT", local_ts=T0 + 2 * i + 1, bid=10.0 + i,
                     bid_qty=1.0, ask=11.0 + i, ask_qty=2.0, update_id=i) for i in range(3)]
    evs = [book(0, ts=T0), bt[0], book(1, ts=T0 + 2), bt[1], bt[2]]
    record(evs, rec_dir)
    assert sorted(p.name for p in rec_dir.iterdir()) == ["BINANCE_BTC_USDT.bin",
                                                          "BINANCE_ETH_USDT.bin"]  # fmt: skip
    assert replay(rec_dir) == evs
    assert replay(rec_dir, symbols=["ETH/USDT"]) == bt
    eth = next(r for r in inspect_paths([str(rec_dir)]) if r.symbol == "ETH/USDT")
    assert eth.kinds == {"BookTicker": 3} and (eth.first_ts, eth.last_ts) == (T0 + 1, T0 + 5)


def test_replay_cli_prints_json_lines(rec_dir, capsys):
    evs = _interleaved(6)
    record(evs, rec_dir)
    args = add_replay_arguments(argparse.ArgumentParser()).parse_args(
        [str(rec_dir), "--symbol", "ETH/USDT"]
    )
    assert replay_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["first_update_id"] for x in lines] == [1, 4]
