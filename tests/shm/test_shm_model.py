"""Model-based test: the ring against a plain Python list of events.

Small rings (8-16 slots of 192 bytes) so that wraparound, lapping (``overwrite``),
QueueFull (``block``) and multi-slot events happen in nearly every run. The model says,
for every operation, exactly what the ring must return: the event, a GapNotice with the
exact count, QueueEmpty, QueueFull, or which slot records a batch holds.
"""

from __future__ import annotations

import itertools
import os

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import event, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from ttxt_mp import codec_c
from ttxt_mp.codec import decode, encode, layout_for
from ttxt_mp.events import GapNotice, MarketTrades, Orderbook, Side, Trade
from ttxt_mp.queues import QueueEmpty, QueueFull
from ttxt_mp.shm import ShmQueue, clean_objects, cring

SLOT = 192
PCAP = SLOT - 32
MAX_CONSUMERS = 4
_names = itertools.count()
PREFIX = f"m{os.getpid()}"


def nslots(ev) -> int:
    return max(1, -(-layout_for(type(ev)).size(ev) // PCAP))


books = st.builds(
    lambda uid, n, snap: Orderbook(
        exchange="x", symbol="A/B", is_snapshot=snap, first_update_id=uid,
        bids=tuple((float(i), 1.5) for i in range(n)), asks=((1e9, float(uid)),),
    ),
    st.integers(0, 2**40), st.one_of(st.integers(0, 3), st.integers(4, 24)), st.booleans(),
)  # fmt: skip


def trade(uid: int) -> MarketTrades:
    return MarketTrades(
        exchange="y", symbol="C/D", exch_ts=uid, trades=(Trade(str(uid), 1.0, 2.0, Side.SELL, 5),)
    )


class Model:
    """What the ring holds: events with their first sequence, slot count, event number."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.events: list[tuple[int, int, int, object]] = []  # (start, nslots, evno, ev)
        self.by_start: dict[int, tuple[int, int, int, object]] = {}
        self.head = 0
        self.next_evno = 0

    def add(self, ev) -> None:
        e = (self.head, nslots(ev), self.next_evno, ev)
        self.events.append(e)
        self.by_start[self.head] = e
        self.head += e[1]
        self.next_evno += 1

    def first_start_at_or_after(self, seq: int) -> int:
        """First event start >= seq whose slots are all intact, else head."""
        lo = max(seq, self.head - self.cap)
        for start, *_ in self.events:  # small: the model keeps only recent events
            if start >= lo:
                return start
        return self.head

    def evno_at(self, seq: int) -> int:
        return self.by_start[seq][2] if seq < self.head else self.next_evno

    def trim(self) -> None:
        keep = self.head - 4 * self.cap
        while self.events and self.events[0][0] < keep:
            del self.by_start[self.events.pop(0)[0]]


class C:
    def __init__(self, q, seq: int, expected: int) -> None:
        self.q, self.seq, self.expected, self.lost = q, seq, expected, 0


class RingMachine(RuleBasedStateMachine):
    consumers = Bundle("consumers")
    IMPL: str | None = None
    """``"c"``/``"pure"``: the ring implementation under test; None: the environment's."""

    @initialize(
        target=consumers, policy=st.sampled_from(["overwrite", "block"]),
        cap=st.sampled_from([8, 16]),
    )  # fmt: skip
    def setup(self, policy: str, cap: int) -> C:
        if self.IMPL is not None:  # ring ends take the implementation selected at creation
            self._before = codec_c.IMPLEMENTATION
            codec_c.set_implementation(self.IMPL)
        self.name = f"{PREFIX}-{next(_names)}"
        self.policy = policy
        self.q = ShmQueue.create(
            self.name, capacity=cap, slot_size=SLOT, policy=policy,
            metadata={"cap": cap}, max_consumers=MAX_CONSUMERS,
        )  # fmt: skip
        self.m = Model(cap)
        self.live: list[C] = []
        return self.attach("oldest")

    def teardown(self) -> None:
        if hasattr(self, "_before"):
            codec_c.set_implementation(self._before)
        if hasattr(self, "q"):
            for c in self.live:
                c.q.close()
            self.q.close()
            self.q.unlink()

    # ------------------------------------------------------------------ producer
    def room(self) -> int | None:
        """Slots the producer may still write (None: unlimited)."""
        if self.policy == "overwrite" or not self.live:
            return None
        return min(c.seq for c in self.live) + self.m.cap - self.m.head

    @rule(ev=books, how=st.sampled_from(["put", "raw", "many"]))
    def put(self, ev, how: str) -> None:
        room = self.room()
        fits = room is None or nslots(ev) <= room
        call = {
            "put": lambda: self.q.put(ev, timeout=0),
            "raw": lambda: self.q.put_raw(*encode(ev), timeout=0),
            "many": lambda: self.q.put_many([ev], timeout=0),
        }[how]
        if fits:
            call()
            self.m.add(ev)
            event(f"put {nslots(ev)} slot(s)")
        else:
            with pytest.raises(QueueFull, match=f"blocked by consumer pid.s. {os.getpid()}") as e:
                call()
            assert e.value.blocking == [os.getpid()]  # the consumers holding the ring
            event("QueueFull")
        self.m.trim()

    @rule(k=st.integers(1, 40))
    def burst(self, k: int) -> None:
        """Many one-slot events: laps (overwrite) or a full ring (block)."""
        room = self.room()
        for _ in range(k if room is None else min(k, room)):
            ev = trade(self.m.next_evno)
            self.q.put(ev, timeout=0)
            self.m.add(ev)
        self.m.trim()

    @rule(uids=st.lists(st.integers(0, 10**9), min_size=1, max_size=40))
    def put_records(self, uids: list[int]) -> None:
        """numpy fast path: encoded one-slot records copied in batches."""
        evs = [trade(u) for u in uids]
        rows = np.frombuffer(b"".join(encode(e)[1] for e in evs), np.uint8).reshape(len(evs), -1)
        room = self.room()
        n = len(evs) if room is None else max(0, min(len(evs), room))
        if n == len(evs):
            self.q.put_many(rows, kind=layout_for(MarketTrades).kind, timeout=0)
        else:  # block: a prefix is published, then QueueFull
            with pytest.raises(QueueFull):
                self.q.put_many(rows, kind=layout_for(MarketTrades).kind, timeout=0)
        for e in evs[:n]:
            self.m.add(e)
        self.m.trim()

    # ------------------------------------------------------------------ consumers
    @precondition(lambda self: len(self.live) < MAX_CONSUMERS)
    @rule(target=consumers, start=st.sampled_from(["latest", "oldest"]))
    def attach_consumer(self, start: str):
        return self.attach(start)

    def attach(self, start: str) -> C:
        m = self.m
        q = ShmQueue.attach(self.name, start=start)
        if start == "latest":
            seq = m.head
        elif self.policy == "overwrite":
            seq = m.first_start_at_or_after(0)
        else:
            seq = m.first_start_at_or_after(self.q.floor)  # what the producer holds
        c = C(q, seq, m.evno_at(seq))
        assert q.metadata == {"cap": m.cap}
        assert (q.cursor, q.lag) == (seq, m.head - seq)
        self.live.append(c)
        return c

    @rule(c=consumes(consumers))
    def detach(self, c: C) -> None:
        c.q.close()
        self.live.remove(c)

    def relocate(self, c: C) -> None:
        """A lapped consumer jumps to the oldest intact event."""
        if c.seq < self.m.head - self.m.cap:
            assert self.policy == "overwrite", "a block ring lapped a consumer"
            c.seq = self.m.first_start_at_or_after(c.seq)

    @rule(c=consumers, how=st.sampled_from(["nowait", "get0", "raw"]))
    def get(self, c: C, how: str) -> None:
        if c not in self.live:
            return
        self.relocate(c)
        call = {
            "nowait": c.q.get_nowait,
            "get0": lambda: c.q.get(timeout=0),
            "raw": lambda: c.q.get_raw(timeout=0),
        }[how]
        if c.seq == self.m.head:
            with pytest.raises(QueueEmpty):
                call()
            return
        got = call()
        if how == "raw":
            got = decode(*got)
        start, n, evno, ev = self.m.by_start[c.seq]
        if evno > c.expected:
            assert isinstance(got, GapNotice) and got.lost == evno - c.expected, got
            event("GapNotice")
            c.lost += evno - c.expected
            c.expected = evno
            assert c.q.lost == c.lost
            return
        assert evno == c.expected
        assert got == ev
        c.seq += n
        c.expected += 1

    @rule(c=consumers, max_n=st.integers(1, 40))
    def get_batch(self, c: C, max_n: int) -> None:
        if c not in self.live:
            return
        self.relocate(c)
        m = self.m
        recs = c.q.get_batch(max_n)
        if c.seq == m.head:
            assert len(recs) == 0
            return
        evno0 = m.by_start[c.seq][2]
        c.lost += evno0 - c.expected
        limit = min(max_n, m.head - c.seq, m.cap - c.seq % m.cap)
        want, used, seq = [], 0, c.seq  # whole events within `limit` slots, at least one
        while seq < m.head:
            _, n, _, ev = m.by_start[seq]
            if want and used + n > limit:
                break
            want.append(ev)
            used += n
            seq += n
        assert len(recs) == used, (len(recs), used, limit)
        event("batch beyond max_n" if used > limit else "batch")
        got, frags = [], []
        for r in recs:
            frags.append(r["payload"][: r["plen"]].tobytes())
            if r["fidx"] + 1 == r["fcnt"]:
                got.append(decode(int(r["kind"]), b"".join(frags)))
                frags.clear()
        assert got == want
        assert list(np.unique(recs["evno"])) == list(range(evno0, evno0 + len(want)))
        assert c.q.lost == c.lost
        c.seq = seq
        c.expected = evno0 + len(want)

    @invariant()
    def cursors_match(self) -> None:
        if hasattr(self, "q"):
            assert self.q.head == self.m.head
            for c in self.live:
                assert c.q.cursor == c.seq or c.seq < self.m.head - self.m.cap


RingMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("TTXT_MODEL_EXAMPLES", 200)),
    stateful_step_count=60,
    deadline=None,
)
TestRingModel = RingMachine.TestCase


class OtherRingMachine(RingMachine):
    """The same model against the other ring implementation (C ends when the environment
    selects the pure ones, pure ends otherwise), so one run checks both."""

    IMPL = "pure" if codec_c.IMPLEMENTATION == "c" else "c"


TestOtherRingModel = pytest.mark.skipif(
    not cring.available(), reason="ttxt_mp._ccodec is not built: only the pure ring exists"
)(OtherRingMachine.TestCase)


@pytest.fixture(autouse=True, scope="module")
def _cleanup():
    yield
    clean_objects(PREFIX, stale_only=False)
