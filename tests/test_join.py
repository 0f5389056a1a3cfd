"""State on join, in one process: a consumer that attaches late, or is lapped, gets the
producer's state, then the ring without a missing or repeated event, so its books equal
the producer's at every point (hypothesis over join points, serve points and laps)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from join_helpers import SYMS, FakeConnector, consumer_books, producing, ring, same

from ttxt_mp import events as ev
from ttxt_mp.connectors.state import StateServer
from ttxt_mp.join import JoinedRing
from ttxt_mp.queues import QueueEmpty
from ttxt_mp.shm import ShmQueue
from ttxt_mp.shm.board import StateBoard


def drain(q: JoinedRing) -> list:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except QueueEmpty:
            return out


@settings(max_examples=40, deadline=None)
@given(before=st.integers(0, 300), after=st.integers(0, 300), serve_at=st.integers(0, 300),
       lap_at=st.one_of(st.none(), st.integers(0, 200)))
def test_late_and_lapped_consumers_rebuild_the_producers_books(before, after, serve_at, lap_at):
    with producing(before) as (pub, conn, server):
        i = before
        q = JoinedRing(ShmQueue.attach(pub.name), timeout=5.0)
        got: list = []
        for k in range(after):
            if k == serve_at:
                server.serve_if_asked()
            if lap_at is not None and k == lap_at:
                for _ in range(100):  # more than the ring holds: the consumer is lapped
                    conn.step(i, SYMS[i % 2])
                    i += 1
                server.serve_if_asked()  # nothing pending yet: the lap is not seen yet
                got += drain(q) if not q.state.pending else []
                server.serve_if_asked()  # the GapNotice asked again
            conn.step(i, SYMS[i % 2])
            i += 1
            if not q.state.pending:  # once the state is in, read as we go
                got += drain(q)
        server.serve_if_asked()
        got += drain(q)
        server.serve_if_asked()
        got += drain(q)
        mine = consumer_books(got)
        for sym, book in conn.books.items():
            assert sym in mine and same(mine[sym], book), (sym, mine.get(sym), book)
            assert mine[sym].stale == 0  # nothing the state held came again
        if lap_at is not None and lap_at < after:
            assert any(isinstance(e, ev.GapNotice) for e in got)
            assert q.joins >= 2
        # latest values came with the state: the last kline (book ticker) seen is the
        # producer's, and none older came after it
        for (kind, sym), e in conn.latest.items():
            if kind in (ev.Kline, ev.BookTicker):
                mine = [k for k in got if type(k) is kind and k.symbol == sym]
                assert mine[-1] == e
                key = [k.open_ts if kind is ev.Kline else k.update_id for k in mine]
                assert key == sorted(key)
        q.close()


def test_a_ring_without_board_is_read_as_is():
    with ring(with_board=False) as (pub, _):
        q = JoinedRing(ShmQueue.attach(pub.name))
        assert q.board is None
        e = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP)
        pub.put(e)
        assert q.get(timeout=1.0) == e
        q.close()


def test_a_producer_that_never_serves_is_given_up_after_the_timeout():
    with ring() as (pub, _):
        q = JoinedRing(ShmQueue.attach(pub.name), timeout=0.2)
        e = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP)
        pub.put(e)
        assert q.get(timeout=3.0) == e  # waited out the state, then read the ring
        assert q.joins == 0
        q.close()


def test_reading_from_the_oldest_keeps_the_history_and_asks_only_after_a_lap():
    with ring() as (pub, board):
        assert board is not None
        first = ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.STARTING)
        pub.put(first)
        q = JoinedRing(ShmQueue.attach(pub.name, start="oldest"), join=False)
        assert not board.pending  # no state asked for: the history is what was wanted
        assert q.get(timeout=1.0) == first
        for i in range(100):  # lapped: 64 slots
            pub.put(ev.ConnectorStatus(exchange="x", state=ev.ConnectorState.UP, reconnects=i))
        assert isinstance(q.get(timeout=1.0), ev.GapNotice)
        assert board.pending  # after the lap it asks for a fresh state
        q.close()


def test_a_consumer_attached_before_the_board_gets_a_state_after_a_lap():
    """A client attached as the engine starts is earlier than the connector's board; its
    first lap must still bring the books back (the board is looked up again)."""
    with ring(with_board=False) as (pub, _):
        q = JoinedRing(ShmQueue.attach(pub.name), timeout=5.0)
        assert q.board is None
        conn = FakeConnector(pub)
        board = StateBoard.create(pub.name)
        try:
            server = StateServer(conn, board)
            for i in range(100):  # more than the ring holds: the consumer is lapped
                conn.step(i, SYMS[i % 2])
            got = drain(q)  # up to the GapNotice, which asks
            assert any(isinstance(e, ev.GapNotice) for e in got) and q.state.pending
            server.serve_if_asked()
            got += drain(q)
            mine = consumer_books(got)
            for sym, book in conn.books.items():
                assert sym in mine and same(mine[sym], book), sym
            assert q.joins == 1
        finally:
            q.close()
            board.close()
            board.unlink()
