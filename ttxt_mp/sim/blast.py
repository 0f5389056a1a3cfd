"""Blast mode: public trade frames at a very high rate for little simulator CPU, so that
benchmarks load the connectors rather than the simulator.

Per (venue, symbol, wire shape) a template of ``TEMPLATE_FRAMES`` complete, unmasked
server->client WebSocket text frames is encoded once from the venue's trade-stream payloads
(``VenueBase.blast_payloads``: its documented trade push, plain or in its combined-stream
wrapper where it has one; the subscribers come from ``VenueBase.blast_targets``). Every
frame's trade id is ``ID_DIGITS`` wide and its timestamps 13 digits wide, so a batch is
re-stamped in place with numpy (no per-frame Python) and written with one ``transport.write``.

Each subscribed connection gets its own trade-id sequence starting above ``ID_BASE`` (the
market's own trade ids stay far below it), strictly increasing across batches and template
repeats. While blasting, the market's own trades are not published on the trade streams, so
ids on a stream never go backwards. Depth and kline streams are untouched. A connection whose
transport holds more than ``high_water`` unsent bytes is skipped for that round (the rate is an
upper bound), and so is one with its own frames waiting (depth, acks go first); stalled or
closed connections get nothing. The delay fault does not apply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ttxt_mp.sim.market import now_ms

if TYPE_CHECKING:
    from ttxt_mp.sim.venue import VenueBase

TEMPLATE_FRAMES = 2048
ID_DIGITS = 12
ID_BASE = 10 ** (ID_DIGITS - 1)  # 100000000000: every id in [ID_BASE, 10**ID_DIGITS) has 12 digits
TS_DIGITS = 13
ID_MARK = b"#" * ID_DIGITS  # where a payload's trade id goes
TS_MARK = b"~" * TS_DIGITS  # where each of its timestamps goes
_ID_POW = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
_TS_POW = 10 ** np.arange(TS_DIGITS - 1, -1, -1, dtype=np.int64)


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked (server->client) RFC 6455 text frame: FIN + opcode 1, 7/16/64-bit length."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _digits(values: np.ndarray, pow10: np.ndarray) -> np.ndarray:
    return ((values[:, None] // pow10[None, :]) % 10 + 48).astype(np.uint8)


class FrameTemplate:
    """``TEMPLATE_FRAMES`` encoded frames with the byte positions of each frame's trade id and
    timestamps; :meth:`batch` returns the first ``k`` frames stamped with the given ids."""

    def __init__(self, payloads: list[bytes]) -> None:
        frames = [ws_text_frame(p) for p in payloads]
        self.buf = np.frombuffer(b"".join(frames), dtype=np.uint8).copy()
        ends, id_idx, ts_idx = [], [], []
        pos = 0
        for f in frames:
            i = f.index(ID_MARK)
            assert f.find(ID_MARK, i + 1) < 0, "one trade id per frame"
            id_idx.append(pos + i + np.arange(ID_DIGITS))
            ts = [pos + j + np.arange(TS_DIGITS) for j in _find_all(f, TS_MARK)]
            ts_idx.append(np.concatenate(ts))
            pos += len(f)
            ends.append(pos)
        self.ends = ends
        self.id_idx = np.stack(id_idx)  # (frames, ID_DIGITS)
        self.ts_idx = np.stack(ts_idx)  # (frames, n_ts * TS_DIGITS); same n_ts in every frame
        self.n_ts = self.ts_idx.shape[1] // TS_DIGITS

    def batch(self, first_id: int, k: int, ts_ms: int) -> bytes:
        if not 0 < k <= len(self.ends):
            raise ValueError(f"batch size must be in 1..{len(self.ends)}, got {k}")
        if first_id < ID_BASE or first_id + k > 10**ID_DIGITS:
            raise ValueError(f"trade ids must stay in [{ID_BASE}, {10**ID_DIGITS})")
        ids = np.arange(first_id, first_id + k, dtype=np.int64)
        self.buf[self.id_idx[:k]] = _digits(ids, _ID_POW)
        ts = np.tile(_digits(np.array([ts_ms], dtype=np.int64), _TS_POW)[0], self.n_ts)
        self.buf[self.ts_idx[:k]] = ts
        return self.buf[: self.ends[k - 1]].tobytes()  # a copy: the transport may keep it


def _find_all(data: bytes, mark: bytes) -> Iterator[int]:
    i = data.find(mark)
    while i >= 0:
        yield i
        i = data.find(mark, i + len(mark))


def price_qty(venue: VenueBase, sym: str, i: int) -> tuple[str, str, bool]:
    """For payload ``i`` of a template: a price near the current best bid (a few ticks of
    variation), a small quantity, whether the buyer was the maker; formatted for the venue."""
    m = venue.markets[sym]
    best = m.book.bids.best() or max(1, int(m.mid))
    px, qx = venue.px[sym], venue.qx[sym]
    return px.fmt(best + i % 7), qx.fmt(1 + i % 13), i % 2 == 0


class _Flow:
    """Blast state of one (connection, symbol): next trade id, rate credit."""

    __slots__ = ("next_id", "credit", "last")

    def __init__(self, mono: float) -> None:
        self.next_id = ID_BASE
        self.credit = 0.0
        self.last = mono


class Blaster:
    """Pushes ``rate`` trade frames/s per (subscribed connection, symbol) for one venue."""

    def __init__(self, venue: VenueBase, rate: float, *, interval: float = 0.005,
                 high_water: int = 1 << 20) -> None:
        if rate <= 0:
            raise ValueError(f"blast rate must be > 0 frames/s, got {rate}")
        self.venue = venue
        self.rate = rate
        self.interval = interval
        self.high_water = high_water
        self.sent = 0
        self._flows: dict[tuple[int, str], _Flow] = {}
        self._templates: dict[tuple[str, bool], FrameTemplate] = {}
        if not venue.can_blast:
            raise ValueError(f"venue {venue.name!r} has no blast mode")
        self._targets = venue.blast_targets
        self._payloads = venue.blast_payloads
        venue.blasting = True  # the market's own trades stay off the trade streams

    def template(self, sym: str, combined: bool) -> FrameTemplate:
        t = self._templates.get((sym, combined))
        if t is None:
            t = self._templates[(sym, combined)] = FrameTemplate(self._payloads(sym, combined))
        return t

    def step(self, mono: float) -> None:
        """One round: every target gets the frames its credit allows (at most one template)."""
        seen: set[tuple[int, str]] = set()
        ts = now_ms()
        for conn, sym, combined in self._targets():
            key = (conn.id, sym)
            seen.add(key)
            flow = self._flows.get(key)
            if flow is None:
                flow = self._flows[key] = _Flow(mono)
            flow.credit = min(flow.credit + (mono - flow.last) * self.rate, TEMPLATE_FRAMES)
            flow.last = mono
            k = int(flow.credit)
            tr = conn.transport
            if k < 1 or conn.closed or conn.stalled or tr is None or tr.is_closing():
                continue
            if conn.queued or tr.get_write_buffer_size() > self.high_water:
                # Backpressure, or the connection's own frames (depth, acks) are waiting: they
                # go first, and these trade frames are not owed later.
                flow.credit = 0.0
                continue
            tr.write(self.template(sym, combined).batch(flow.next_id, k, ts))
            flow.next_id += k
            flow.credit -= k
            conn.sent_frames += k
            self.sent += k
        for key in self._flows.keys() - seen:
            del self._flows[key]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.step(time.monotonic())
