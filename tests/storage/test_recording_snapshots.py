"""Book snapshots in recordings: a recorder that starts late, is lapped or asks again
(interval, rotation) splices the producer's books in at the state's watermark, so the
recorded stream rebuilds the producer's books exactly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from join_helpers import SYMS, FakeConnector, consumer_books, producing, ring, same

from ttxt_mp import codec
from ttxt_mp import events as ev
from ttxt_mp.connectors.state import StateServer
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm.board import StateBoard
from ttxt_mp.storage import MarketDataRecorder, MarketDataReplayer
from ttxt_mp.storage.raw import RingBatchGetter
from ttxt_mp.storage.state_getter import StateGetter, state_getter


def drain(get: StateGetter) -> list:
    out = []
    while True:
        try:
            out.append(codec.decode(*get(0)))
        except QueueEmpty:
            return out


@settings(max_examples=40, deadline=None)
@given(before=st.integers(0, 200), after=st.integers(1, 200), serve_at=st.integers(0, 200),
       asks=st.lists(st.integers(0, 200), max_size=3),
       lap_at=st.one_of(st.none(), st.integers(0, 150)))  # fmt: skip
def test_spliced_snapshots_rebuild_the_producers_books(before, after, serve_at, asks, lap_at):
    with producing(before) as (pub, conn, server):
        i = before
        consumer = ShmQueue.attach(pub.name)
        get = state_getter(consumer, RingBatchGetter(consumer, 0.001), interval=0)
        assert isinstance(get, StateGetter)
        got: list = []
        for k in range(after):
            if k == serve_at:
                server.serve_if_asked()
            if k in asks:  # a rotation or the interval: books again, mid-stream
                get.ask()
                server.serve_if_asked()
            if lap_at is not None and k == lap_at:
                for _ in range(100):  # more than the ring holds: the recorder is lapped
                    conn.step(i, SYMS[i % 2])
                    i += 1
                got += drain(get)  # the GapNotice asks again; nothing more is read
                server.serve_if_asked()
            conn.step(i, SYMS[i % 2])
            i += 1
            got += drain(get)
        for _ in range(2):
            server.serve_if_asked()
            got += drain(get)
        mine = consumer_books(got)
        for sym, book in conn.books.items():
            assert sym in mine and same(mine[sym], book), (sym, mine.get(sym), book)
        snaps = sum(isinstance(e, ev.Orderbook) and e.is_snapshot for e in got)
        assert get.states >= 1 and snaps >= get.snapshots
        # only books come from the state: no kline or status twice
        klines = [e for e in got if isinstance(e, ev.Kline)]
        assert len(klines) == len({(k.symbol, k.open_ts) for k in klines})
        get.close()
        consumer.close()


def test_a_ring_without_board_is_recorded_as_is_until_its_board_appears():
    with ring(with_board=False) as (pub, _):
        consumer = ShmQueue.attach(pub.name)
        get = state_getter(consumer, RingBatchGetter(consumer, 0.001), interval=0)
        assert get.request.board is None and not get.request.pending
        conn = FakeConnector(pub)
        for i in range(4):
            conn.step(i, SYMS[0])
        assert len(drain(get)) == 4 and get.states == 0  # as is: nothing waits
        board = StateBoard.create(pub.name)  # the connector comes up
        try:
            server = StateServer(conn, board)
            get.ask()  # the next lap, rotation or interval finds the board
            assert get.request.pending
            server.serve_if_asked()
            got = drain(get)
            assert get.states == 1 and got[0].is_snapshot, got
        finally:
            get.close()
            board.close()
            board.unlink()
        consumer.close()


def test_an_unserved_request_is_given_up_and_recording_goes_on():
    with ring() as (pub, _):
        consumer = ShmQueue.attach(pub.name)
        get = state_getter(consumer, RingBatchGetter(consumer, 0.001), interval=0)
        get.request.timeout = 0.2
        e = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP)
        pub.put(e)
        deadline = time.monotonic() + 10
        while True:
            try:
                got = codec.decode(*get(0.05))
                break
            except QueueEmpty:
                assert time.monotonic() < deadline, "the request was never given up"
        assert got == e and get.given_up == 1 and get.states == 0
        get.close()
        consumer.close()


def test_recorder_writes_periodic_snapshots_and_its_file_replays_into_the_books(tmp_path: Path):
    """The real recorder thread, a producer serving its board: every interval a fresh set of
    snapshots lands in the file, and the replay ends with the producer's books."""
    with ring() as (pub, board):
        assert board is not None
        conn = FakeConnector(pub)
        server = StateServer(conn, board)
        i = 0
        for _ in range(150):  # the ring (64 slots) has wrapped: no snapshot left in it
            conn.step(i, SYMS[i % 2])
            i += 1
        consumer = ShmQueue.attach(pub.name, start="oldest")
        rec = MarketDataRecorder(consumer, tmp_path, source=pub.name, snapshot_interval=0.05,
                                 max_chunk_age=0.05, idle_sleep=0.001)  # fmt: skip
        assert isinstance(rec._get, StateGetter)
        thread = threading.Thread(target=rec.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        try:
            while rec._get.snapshots < 4 * len(SYMS):
                assert time.monotonic() < deadline, f"{rec._get.snapshots} snapshots in 30 s"
                server.serve_if_asked()
                conn.step(i, SYMS[i % 2])
                i += 1
                time.sleep(0.001)  # pace the producer so the recorder keeps up (no laps)
            stop_at = time.monotonic() + 10
            while rec.position() < pub.next_evno:  # the recorder read everything
                assert time.monotonic() < stop_at
                server.serve_if_asked()
                time.sleep(0.005)
        finally:
            rec._stop.set()
            thread.join(10)
            consumer.close()
        assert not thread.is_alive()
        with MarketDataReplayer(tmp_path) as rp:
            events = list(rp.events())
        mine = consumer_books(events)
        for sym, book in conn.books.items():
            assert sym in mine and same(mine[sym], book), (sym, mine.get(sym), book)
        snaps = [e for e in events if isinstance(e, ev.Orderbook) and e.is_snapshot]
        assert len(snaps) >= rec._get.snapshots >= 4 * len(SYMS), len(snaps)
        assert rec._get.states >= 4
