"""The state board (state on join): what a consumer reads is what the producer wrote,
whole, with its watermark; requests are served, foreign boards refused."""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttxt_mp import events as ev
from ttxt_mp.shm.board import StateBoard, board_path
from ttxt_mp.shm.errors import RingForeign, RingNotFound
from ttxt_mp.trust import UntrustedObject


@pytest.fixture
def ring():
    name = f"tb{uuid.uuid4().hex[:10]}"
    yield name
    if os.path.exists(board_path(name)):
        os.unlink(board_path(name))


def book(sym: str, n: int, uid: int) -> ev.Orderbook:
    return ev.Orderbook(exchange="binance", symbol=sym, is_snapshot=True, local_ts=uid,
                        bids=tuple((100.0 - i * 0.01, 1.0 + i) for i in range(n)),
                        asks=tuple((100.5 + i * 0.01, 2.0 + i) for i in range(n)),
                        last_update_id=uid)


def test_request_is_served_with_events_and_watermark(ring):
    with StateBoard.create(ring, instance_id=7) as prod, StateBoard.open(ring) as cons:
        assert not prod.pending
        assert cons.read(1, timeout=0.01) is None  # nobody served yet
        t = cons.request()
        assert prod.pending
        state = [book("BTC/USDT", 5, 1), ev.ConnectorStatus(exchange="binance", state=ev.ConnectorState.UP, message="x")]
        prod.publish(state, watermark=42)
        assert not prod.pending
        got = cons.read(t, timeout=1.0)
        assert got is not None and got.watermark == 42 and got.ticket >= t
        assert got.events == state


def test_board_grows_for_a_large_state(ring):
    with StateBoard.create(ring, capacity=4096) as prod, StateBoard.open(ring) as cons:
        t = cons.request()
        big = [book(f"S{i}/USDT", 1000, i) for i in range(10)]  # ~330 kB
        prod.publish(big, watermark=5)
        got = cons.read(t, timeout=1.0)
        assert got is not None and got.events == big


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 10**6)), max_size=6),
       st.integers(0, 2**62))
def test_any_state_round_trips(sizes, mark):
    name = f"tb{uuid.uuid4().hex[:10]}"
    try:
        with StateBoard.create(name, capacity=4096) as prod, StateBoard.open(name) as cons:
            for rnd in range(2):  # a second state replaces the first whole
                t = cons.request()
                state = [book(f"S{i}/USDT", n, u + rnd) for i, (n, u) in enumerate(sizes)]
                prod.publish(state, watermark=mark + rnd)
                got = cons.read(t, timeout=1.0)
                assert got is not None
                assert got.events == state and got.watermark == mark + rnd
    finally:
        if os.path.exists(board_path(name)):
            os.unlink(board_path(name))


def test_missing_foreign_and_other_instance_boards_are_refused(ring):
    with pytest.raises(RingNotFound, match="has no state board"):
        StateBoard.open(ring)
    with StateBoard.create(ring, instance_id=5):
        with pytest.raises(RingForeign, match="instance 5, not 6"):
            StateBoard.open(ring, instance_id=6)
        StateBoard.open(ring, instance_id=5).close()
        os.chmod(board_path(ring), 0o666)
        with pytest.raises(UntrustedObject, match="mode 0666"):
            StateBoard.open(ring)
        os.chmod(board_path(ring), 0o600)
        os.chown(board_path(ring), 65534, -1)
        with pytest.raises(UntrustedObject, match="uid 65534"):
            StateBoard.open(ring)
