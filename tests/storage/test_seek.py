"""Replay from T: each instrument starts at its last book snapshot before T, so a book
built from the replay equals the recorded book at T, and from T on the replay is exactly
the full replay's tail."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import T0, record

from ttxt_mp import AsyncioQueue
from ttxt_mp.events import MarketTrades, Orderbook, Side, Trade
from ttxt_mp.orderbook import OrderBook
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.storage import MarketDataReplayer

SYMS = ("BTC/USDT", "ETH/USDT")
STEP = 1_000_000  # 1 ms between events


def stream(n: int, every: dict[str, int], trades_every: int) -> list:
    """``n`` events over both symbols: a snapshot first and every ``every[sym]`` book
    events (the state the recorder splices in: the book as it is), deltas otherwise."""
    books = {s: OrderBook("binance", s) for s in SYMS}
    count = dict.fromkeys(SYMS, 0)
    out: list = []
    for i in range(n):
        sym = SYMS[i % 2]
        ts = T0 + i * STEP
        book = books[sym]
        if trades_every and i % trades_every == trades_every - 1:
            out.append(MarketTrades(exchange="binance", symbol=sym, exch_ts=ts, local_ts=ts,
                                    trades=(Trade(str(i), 100.0, 1.0, Side.BUY, ts),)))
            continue
        if count[sym] % every[sym] == 0:
            if book.synced:
                e = msgspec.structs.replace(book.to_event(ts), exch_ts=ts)
            else:
                e = Orderbook(exchange="binance", symbol=sym, exch_ts=ts, local_ts=ts,
                              is_snapshot=True, bids=((99.0, 1.0),), asks=((101.0, 1.0),),
                              first_update_id=1, last_update_id=1)  # fmt: skip
        else:
            u = book.update_id + 1
            price = 90.0 + (i * 37 % 20) * 0.5
            qty = 0.0 if i % 5 == 0 else float(i % 9 + 1)
            side = {"bids": ((price, qty),)} if price < 100.5 else {"asks": ((price + 1, qty),)}
            e = Orderbook(exchange="binance", symbol=sym, exch_ts=ts, local_ts=ts,
                          first_update_id=u, last_update_id=u, **side)  # fmt: skip
        book.update(e)
        count[sym] += 1
        out.append(e)
    return out


def books_of(events: list) -> dict[str, OrderBook]:
    books: dict[str, OrderBook] = {}
    for e in events:
        if isinstance(e, Orderbook):
            books.setdefault(e.symbol, OrderBook("binance", e.symbol)).update(e)
    return books


def state(book: OrderBook) -> tuple:
    return book.synced, book.bids(), book.asks(), book.update_id


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), every_a=st.integers(1, 40), every_b=st.integers(1, 40),
       trades_every=st.integers(0, 6), chunk=st.integers(1, 12), at=st.integers(-5, 310),
       search=st.integers(1, 8))  # fmt: skip
def test_replay_from_t_starts_each_book_at_its_last_snapshot(
    tmp_path_factory, n, every_a, every_b, trades_every, chunk, at, search
):
    d = tmp_path_factory.mktemp("rec")
    events = stream(n, {SYMS[0]: every_a, SYMS[1]: every_b}, trades_every)
    record(events, d, chunk_events=chunk)
    start = T0 + at * STEP
    with mock.patch("ttxt_mp.storage.seek.SEARCH_CHUNKS", search):  # cross block bounds
        with MarketDataReplayer(d, start=start) as rp:
            got = list(rp.events())
        with MarketDataReplayer(d, start=start, seek=False) as rp:
            clipped = list(rp.events())
    assert clipped == [e for e in events if e.exch_ts >= start]
    head = [e for e in got if e.exch_ts < start]
    tail = got[len(head):]
    assert tail == clipped  # from T on: exactly the recording
    assert all(isinstance(e, Orderbook) for e in head)  # before T: books only
    truth = books_of([e for e in events if e.exch_ts < start])
    mine = books_of(head)
    for sym, book in truth.items():
        if any(e.symbol == sym and e.is_snapshot for e in head):
            assert state(mine[sym]) == state(book), sym
            first = next(e for e in head if e.symbol == sym)
            assert first.is_snapshot  # no delta before the snapshot it needs
        else:  # only when no snapshot precedes T at all (T is before the first)
            assert not any(isinstance(e, Orderbook) and e.symbol == sym and e.is_snapshot
                           for e in events if e.exch_ts < start)  # fmt: skip
    # and the books stay exact through the tail
    full = books_of(events)
    after = books_of(got)
    for sym, book in full.items():
        if sym in after and after[sym].synced:
            assert state(after[sym]) == state(book), sym


def test_paced_replay_from_t_does_not_wait_for_the_seeked_prefix(tmp_path: Path):
    """The snapshot 9 s before T goes out at once; pacing starts at T."""
    events = [Orderbook(exchange="binance", symbol="BTC/USDT", exch_ts=T0, local_ts=T0,
                        is_snapshot=True, bids=((99.0, 1.0),), asks=((101.0, 1.0),),
                        first_update_id=1, last_update_id=1)]  # fmt: skip
    for k in range(1, 11):  # a delta every second for 10 s
        ts = T0 + k * 1_000_000_000
        events.append(Orderbook(exchange="binance", symbol="BTC/USDT", exch_ts=ts, local_ts=ts,
                                bids=((99.0, 1.0 + k),), first_update_id=1 + k,
                                last_update_id=1 + k))  # fmt: skip
    record(events, tmp_path, chunk_events=2)
    q = AsyncioQueue()
    t0 = time.monotonic()
    with MarketDataReplayer(tmp_path, start=T0 + 9_500_000_000) as rp:
        stats = rp.publish(q, speed=2.0)
    elapsed = time.monotonic() - t0
    got = []
    while True:
        try:
            got.append(q.get_nowait())
        except QueueEmpty:
            break
    assert got[0].is_snapshot and len(got) == stats.events == 11  # snapshot, 9 deltas, T's
    assert elapsed >= 0.2  # 0.5 s of recording after T at speed 2: paced
    assert elapsed < 4.0, elapsed  # not the 9.5 s (4.75 s at speed 2) before T


def test_replay_cli_from_seeks_and_no_seek_cuts(tmp_path: Path):
    events = stream(60, {SYMS[0]: 25, SYMS[1]: 25}, 0)
    record(events, tmp_path / "rec", chunk_events=4)
    at = T0 + 40 * STEP

    def lines(*extra: str) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "replay", str(tmp_path / "rec"),
                              *extra], capture_output=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return [json.loads(x) for x in out.stdout.splitlines()]

    seeked = lines("--from", str(at))
    cut = lines("--from", str(at), "--no-seek")
    assert len(cut) == 20 and all(e["exch_ts"] >= at for e in cut)
    head = seeked[: len(seeked) - len(cut)]
    assert seeked[len(head):] == cut
    assert {e["symbol"] for e in head if e["is_snapshot"]} == set(SYMS)
    assert lines("--start", str(at)) == seeked  # the old spelling still works
