"""The bridge's writing side: the buffer's entries into Redis, pipelined, exactly once.

Each entry gets an explicit stream id (``<ms>-<seq>``, increasing per stream) the first
time it is sent and keeps it: when a pipeline fails half-way (connection reset, a server
paused past the socket timeout) the entries are sent again with the same ids, and Redis
answers "equal or smaller than the top item" for the ones it already has. So an entry is
never written twice, and one Redis did not take stays in the buffer until it does: the
only losses are the tap's drops (buffer full), each announced by a ``GapNotice``.

A :class:`~ttxt_mp.bus.tap.StateMark` becomes the state hash of its ring, written in one
``MULTI`` (``DEL`` + ``HSET``) with ``_after`` = the id of the ring's last entry before the
mark. The meta hash (``layout``, ``format``, ``rings``, ``bridge`` status) is written at
every (re)connection and then every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from ttxt_mp.bus import format as bf
from ttxt_mp.bus.redis_queue import explain, is_auth_error, redis_kwargs
from ttxt_mp.bus.tap import Batch, Buffer, StateMark

__all__ = ["BridgeStatus", "PermanentBusError", "StreamWriter"]

log = logging.getLogger("ttxt_mp.bus.writer")
PIPELINE_ITEMS = 256
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
DUPLICATE = "equal or smaller than the target stream top item"
CREATED = "created:"
"""Meta hash field prefix: the creation time of the ring instance a stream's entries
came from (tells a bridge restart, where event numbers continue, from a new engine)."""


class PermanentBusError(RuntimeError):
    """Retrying cannot help (wrong password): the bridge stops and says why."""


class BridgeStatus(msgspec.Struct):
    """What the bridge says about itself, in the meta hash and ``ttxt-mp status``."""

    state: str = "STARTING"
    published: int = 0
    dropped: int = 0
    lag_entries: int = 0
    lag_ms: float = 0.0
    last_error: str = ""
    updated_ns: int = 0
    url: str = ""
    states: int = 0
    gaps: int = 0


class StreamWriter:
    """Writes ``buffer`` to the Redis at ``url`` for engine ``engine``."""

    def __init__(self, url: str, password: str | None, engine: str, buffer: Buffer,
                 rings: Callable[[], dict[str, int]], *, maxlen: int = 100_000,
                 connect_timeout: float = 5.0, socket_timeout: float = 5.0,
                 tls_ca_file: str | None = None, on_connect: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.url = url  # without password (see bus.url.split_url)
        self.engine = engine
        self.buffer = buffer
        self.rings = rings
        """Ring name -> the ring instance's creation time (ns), of the rings tapped."""
        self.maxlen = maxlen
        self.on_connect = on_connect
        self._kw = redis_kwargs(password, connect_timeout, socket_timeout, tls_ca_file)
        self.client: aioredis.Redis | None = None
        self.status = BridgeStatus(url=url)
        self.last_ids: dict[str, tuple[int, int]] = {}
        self._stream_last: dict[str, bytes] = {}
        self.wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._backoff = BACKOFF_MIN
        self._meta_rings = 0
        self._checked: dict[str, int] = {}  # rings whose continuity with the stream is known
        self.restart_lost = 0

    # ------------------------------------------------------------------ ids
    def _next_id(self, ring: str) -> bytes:
        ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self.last_ids.get(ring, (0, -1))
        if ms <= last_ms:
            ms, seq = last_ms, last_seq + 1
        else:
            seq = 0
        self.last_ids[ring] = (ms, seq)
        return f"{ms}-{seq}".encode()

    def _seen(self, ring: str, eid: bytes) -> None:
        ms, _, seq = eid.decode().partition("-")
        cur = self.last_ids.get(ring, (0, -1))
        self.last_ids[ring] = max(cur, (int(ms), int(seq or 0)))
        self._stream_last[ring] = eid

    # ------------------------------------------------------------------ connection
    async def connect(self) -> None:
        client = aioredis.Redis.from_url(self.url, **self._kw)
        try:
            await client.ping()
            old = await client.hget(bf.meta_key(self.engine), "layout")
            if old is not None and old != bf.layout_tag():
                log.warning("engine %r's streams at %s hold entries of another layout (%r, "
                            "this bridge writes %r): readers refuse those older entries",
                            self.engine, self.url, old, bf.layout_tag())  # fmt: skip
            for ring in self.rings():
                got = await client.xrevrange(bf.ring_stream_key(self.engine, ring), count=1)
                if got:
                    self._seen(ring, got[0][0])
            self.client = client
            self.status.state, self.status.last_error = "UP", ""
            await self.write_meta()
        except BaseException:
            self.client = None
            with contextlib.suppress(Exception):
                await client.aclose()
            raise
        log.info("bridge connected to %s", self.url)
        if self.on_connect is not None:
            self.on_connect()

    async def disconnect(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(Exception):  # a dead connection: nothing to close cleanly
                await client.aclose()

    async def _down(self, e: BaseException) -> None:
        why = explain(self.url, e)
        if self.status.state != "DOWN" or self.status.last_error != why:
            log.warning("bridge: %s; retrying (backoff up to %.0fs), buffering up to %.0f MB",
                        why, BACKOFF_MAX, self.buffer.max_bytes / 1e6)  # fmt: skip
        self.status.state, self.status.last_error = "DOWN", why
        await self.disconnect()

    async def write_meta(self) -> None:
        """Status, layout and the rings published (rings tapped later appear here
        within a second)."""
        assert self.client is not None
        self.status.updated_ns = time.time_ns()
        mapping: dict[str, Any] = {"bridge": msgspec.json.encode(self.status),
                                   "layout": bf.layout_tag(), "format": str(bf.FORMAT_VERSION),
                                   "rings": json.dumps(sorted(self.rings()))}  # fmt: skip
        mapping.update({f"{CREATED}{r}": str(c) for r, c in self._checked.items()})
        await self.client.hset(bf.meta_key(self.engine), mapping=mapping)

    # ------------------------------------------------------------------ writing
    async def step(self) -> int:
        """Connect if needed and write what the buffer holds (up to one pipeline and the
        state marks after it); returns the items written. Any trouble (unreachable, a
        timeout, Redis refusing writes: out of memory, a key of another type) marks the
        writer DOWN and waits out the backoff, the items staying in the buffer; a wrong
        password raises PermanentBusError."""
        try:
            if self.client is None:
                await self.connect()
            items = self.buffer.front(PIPELINE_ITEMS)
            if not items:
                return 0
            done = await self._write(items)
        except (redis.RedisError, OSError) as e:
            if is_auth_error(e):
                raise PermanentBusError(explain(self.url, e)) from None
            await self._down(e)
            await self._pause()
            return 0
        self.buffer.done(done)
        self._backoff = BACKOFF_MIN
        return done

    async def _pause(self) -> None:
        """The backoff (doubling up to BACKOFF_MAX), cut short when the bridge stops."""
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self._backoff)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    async def _write(self, items: list[Batch | StateMark]) -> int:
        """Write ``items`` in order: consecutive entries in one pipeline, then a state
        mark in its own MULTI; returns how many items are done."""
        assert self.client is not None
        batches: list[Batch] = []
        for item in items:
            if isinstance(item, StateMark):
                break
            batches.append(item)
        if batches:
            return await self._xadd(batches)
        await self._state(items[0])  # a state mark first in line
        return 1

    async def _xadd(self, batches: list[Batch]) -> int:
        """Returns how many of ``batches`` Redis holds now (all, unless another writer
        moved a stream past our ids: those get new ids and go in the next pipeline)."""
        assert self.client is not None
        for b in batches:
            if b.ring not in self._checked:
                await self._continue(b)
        pipe = self.client.pipeline(transaction=False)
        for b in batches:
            if b.eid is None:
                b.eid = self._next_id(b.ring)
            pipe.xadd(bf.ring_stream_key(self.engine, b.ring), b.fields(), id=b.eid,
                      maxlen=self.maxlen, approximate=True)  # fmt: skip
            b.attempted = True
        results = await pipe.execute(raise_on_error=False)
        for i, (b, r) in enumerate(zip(batches, results, strict=True)):
            if isinstance(r, Exception):
                if isinstance(r, redis.ConnectionError | redis.TimeoutError):
                    raise r
                if DUPLICATE not in str(r):
                    raise r
                # Redis has it already (an earlier attempt that looked failed), or another
                # writer moved the stream past our ids: see which one below.
                got = await self.client.xrange(bf.ring_stream_key(self.engine, b.ring), b.eid, b.eid)
                if not got:  # not ours: take new ids after the stream's top and retry
                    top = await self.client.xrevrange(bf.ring_stream_key(self.engine, b.ring), count=1)
                    if top:
                        self._seen(b.ring, top[0][0])
                    for later in batches[i:]:
                        if later.ring == b.ring:
                            later.eid = None
                    return i
            self._seen(b.ring, b.eid)
            self.status.published += b.events
        return len(batches)

    async def _continue(self, b: Batch) -> None:
        """Before this process's first entry of a ring: if the stream's last entry is of
        the same ring instance (``created:<ring>`` in the meta hash) and ends before ``b``,
        the events in between went by while no bridge ran (a restart): ``b`` starts with
        a GapNotice of exactly that count."""
        assert self.client is not None
        created = self.rings().get(b.ring, 0)
        pipe = self.client.pipeline(transaction=False)
        pipe.xrevrange(bf.ring_stream_key(self.engine, b.ring), count=1)
        pipe.hget(bf.meta_key(self.engine), f"{CREATED}{b.ring}")
        last, was = await pipe.execute()
        end = int(last[0][1].get(b"x", -1)) if last else -1
        if last and was is not None and int(was) == created and 0 <= end < b.first and not b.attempted:
            b.add_gap(b.first - end)
            self.restart_lost += b.first - end
            log.warning("ring %s: %d events went by while no bridge published it (restart); "
                        "announced by a GapNotice", b.ring, b.first - end)  # fmt: skip
        self._checked[b.ring] = created

    async def _state(self, mark: StateMark) -> None:
        assert self.client is not None
        key = bf.state_key(self.engine, mark.ring)
        if mark.ring not in self._stream_last:  # tapped after we connected: ask the stream
            got = await self.client.xrevrange(bf.ring_stream_key(self.engine, mark.ring), count=1)
            if got:
                self._seen(mark.ring, got[0][0])
        after = self._stream_last.get(mark.ring, b"0-0")
        fields: dict[str | bytes, bytes] = {"_after": after, "_layout": bf.layout_tag()}
        fields.update(mark.fields)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        await pipe.execute()
        self.status.states += 1

    async def run(self, stop: asyncio.Event, report: Callable[[], None]) -> None:
        """Write until ``stop``, then what remains within a short grace."""
        next_meta = 0.0
        self._stop = stop
        while not stop.is_set():
            n = await self.step()
            now = time.monotonic()
            if len(self.rings()) != self._meta_rings:  # a ring tapped: say so at once
                self._meta_rings = len(self.rings())
                next_meta = now
            if now >= next_meta:
                next_meta = now + 1.0
                report()
                if self.client is not None:
                    try:
                        await self.write_meta()
                    except (redis.RedisError, OSError) as e:
                        await self._down(e)
            if n == 0 and self.client is not None:
                self.wake.clear()
                if not len(self.buffer):
                    try:
                        await asyncio.wait_for(self.wake.wait(), 0.05)
                    except TimeoutError:
                        pass
