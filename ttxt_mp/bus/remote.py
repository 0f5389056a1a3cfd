"""The remote feed: an engine's rings read from Redis Streams on another host.

``ttxt_mp.attach("redis://host:6379/0/ENGINE", symbols=[...])`` returns the same
:class:`~ttxt_mp.client.Feed` as a local attach, whose one source is a
:class:`RemoteRings`: it reads every published ring of the engine with one ``XREAD``
(one connection), and follows the bus contract of :mod:`ttxt_mp.bus.format`:

- ``start="latest"``: the ring's state hash first (book snapshots, last klines,
  statuses...), then the stream after the state's ``_after`` id: nothing missing or twice.
  No state hash: the stream from its newest entry on. ``"oldest"``: every retained entry.
  A stream id: the entries after it (resume where a previous consumer stopped;
  :attr:`RemoteRings.last_ids` holds the ids to resume from).
- Gaps: a ``GapNotice`` the bridge published (it dropped or was lapped), or one this reader
  emits when Redis trimmed entries it had not read (``lost`` = trimmed entries, counted from
  the stream's ``entries-added``). After either, the ring pauses until the bridge's state is
  at least as new, hands out that state, and drops the stateful events it supersedes, as a
  lapped local consumer does (:class:`ttxt_mp.join.JoinedRing`).
- Reconnects: a lost connection is retried (backoff up to 1 s) and reading resumes at the
  last id, so nothing retained is lost. ``get(timeout)`` keeps its timeout while Redis
  refuses connections; a server that stops answering (paused, a dead link) is noticed
  after :data:`SOCKET_TIMEOUT`, which a ``get`` may then overrun once.
- Another layout version (entry tag, state ``_layout``, meta ``layout``) raises
  :class:`~ttxt_mp.bus.format.BusLayoutError`: never decoded as garbage.

Each gap check is atomic with the read (``MULTI``: ``XINFO STREAM`` + ``XREAD``), so the
count is exact; when the reader has caught up it blocks in a plain ``XREAD BLOCK``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ttxt_mp import codec
from ttxt_mp.bus import format as fmt
from ttxt_mp.bus.remote_url import PASSWORD_ENV, BusUrl, parse_bus_url
from ttxt_mp.bus.url import BusConnectionError
from ttxt_mp.events import GapNotice
from ttxt_mp.join import STATE_TIMEOUT, STATEFUL
from ttxt_mp.queues import IQueueConsumer, QueueEmpty

__all__ = ["BusConnectionError", "RemoteRings", "attach_remote", "connect", "list_rings"]

log = logging.getLogger("ttxt_mp.bus.remote")

GAP_KIND = codec.kind_of(GapNotice)
STATEFUL_KINDS = frozenset(codec.kind_of(c) for c in STATEFUL)
RECREATED = -1  # _Ring.trimmed: the stream was recreated, the count comes from s/x
READ_COUNT = 512  # entries per ring per read
BLOCK_MAX_MS = 500  # longest XREAD BLOCK: close() and reconnects stay prompt
SOCKET_TIMEOUT = 3.0  # beyond the longest block: a paused/unreachable server is noticed
REJOIN_TIMEOUT = STATE_TIMEOUT + 1.0  # the bridge refreshes its state at least every second
_ID = re.compile(rb"^(\d+)(?:-(\d+))?$")

# Counts the entries after ARGV[1] (exclusive) in pages, up to ARGV[2] of them per call, and
# when it reaches the end, the stream's entries-added in the same atomic step.
_COUNT_AFTER = """
local n, last, limit = 0, ARGV[1], tonumber(ARGV[2])
while n < limit do
  local page = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 256)
  if #page == 0 then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {n, last, 1, 0} end
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'entries-added' then return {n, last, 1, info[i + 1]} end
    end
    return {n, last, 1, 0}
  end
  n = n + #page
  last = page[#page][1]
end
return {n, last, 0, 0}
"""


# Per stream {entries-added, length} (0s for a stream not created yet): the trim check, in
# the same MULTI as the XREAD. A script, so the entries XINFO also returns stay in Redis.
_COUNTS = """
local out = {}
for i, k in ipairs(KEYS) do
  out[i] = {0, 0}
  if redis.call('EXISTS', k) == 1 then
    local info = redis.call('XINFO', 'STREAM', k)
    for j = 1, #info, 2 do
      if info[j] == 'entries-added' then out[i][1] = info[j + 1] end
      if info[j] == 'length' then out[i][2] = info[j + 1] end
    end
  end
end
return out
"""


def parse_id(raw: bytes | str) -> tuple[int, int]:
    """A stream id as a comparable pair; ValueError naming it otherwise."""
    b = raw.encode() if isinstance(raw, str) else raw
    m = _ID.match(b)
    if not m:
        raise ValueError(f"invalid stream id {raw!r}: expected MS-SEQ like 1712345678901-0, "
                         "'latest' or 'oldest'")  # fmt: skip
    return int(m.group(1)), int(m.group(2) or 0)


def check_start(start: str | Mapping[str, str]) -> None:
    """``latest``, ``oldest``, a stream id, or ``{ring: one of those}`` (``last_ids``)."""
    for v in [start] if isinstance(start, str) else start.values():
        if v not in ("latest", "oldest"):
            parse_id(v)


def _id_bytes(pair: tuple[int, int]) -> bytes:
    return b"%d-%d" % pair


def connect(url: BusUrl, *, socket_timeout: float = SOCKET_TIMEOUT) -> Any:
    """A redis-py client for ``url`` after a PING; :class:`BusConnectionError` naming the
    redacted URL when Redis cannot be reached or refuses the credentials."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No silent retries inside redis-py: the reader resumes at its own last ids, says so
    # once per outage and keeps get(timeout) on time.
    client = redis.Redis(host=url.host, port=url.port, db=url.db, username=url.username,
                         password=url.password, ssl=url.scheme == "rediss",
                         retry=Retry(NoBackoff(), 0),
                         socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                         decode_responses=False)  # fmt: skip
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as e:
        client.close()
        if not isinstance(e, redis.AuthenticationError) and "AUTH" not in str(e):
            raise BusConnectionError(f"{url.redacted}: {_why(e, url)}") from None
        if url.password is None:
            raise BusConnectionError(f"{url.redacted}: Redis requires a password: give it in "
                                     f"the URL or in ${PASSWORD_ENV}") from None  # fmt: skip
        raise BusConnectionError(f"{url.redacted}: Redis refused the credentials "
                                 f"({_why(e, url)})") from None  # fmt: skip
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        client.close()
        raise BusConnectionError(f"{url.redacted}: cannot reach Redis ({_why(e, url)})") from None
    return client


def _why(e: BaseException, url: BusUrl) -> str:
    """An exception's message, one line, never carrying the password."""
    from ttxt_mp.secrets import redact

    msg = " ".join(str(e).split()) or type(e).__name__
    if url.password:
        msg = msg.replace(url.password, "***")
    return redact(msg)


def list_rings(client: Any, url: BusUrl) -> list[str]:
    """The rings the engine's bridge publishes (meta ``rings``), checked for our layout; the
    stream keys found when there is no meta hash (a publisher without a bridge)."""
    meta = client.hgetall(fmt.meta_key(url.engine))
    if meta:
        fmt.check_tag(meta.get(b"layout"), fmt.meta_key(url.engine))
        try:
            return [str(r) for r in json.loads(meta.get(b"rings", b"[]"))]
        except ValueError:
            raise fmt.BusLayoutError(f"{fmt.meta_key(url.engine)}: field 'rings' is not a "
                                     "JSON list") from None  # fmt: skip
    prefix = fmt.ring_stream_key(url.engine, "")
    return sorted(k.decode()[len(prefix):] for k in client.scan_iter(match=prefix + "*",
                                                                       _type="stream"))  # fmt: skip


@dataclass
class _Ring:
    """One engine ring's stream and where this reader is in it."""

    name: str
    key: bytes
    state_key: bytes
    cursor: tuple[int, int] = (0, 0)
    entries_read: int = 0  # entries of the stream with an id <= cursor (added ever)
    paused_for: tuple[int, int] | None = None  # waiting for a state with _after >= this
    paused_until: float = 0.0
    drop_until: tuple[int, int] | None = None  # stateful events up to here are in a state
    held: list[tuple[bytes, list[tuple[int, Any]]]] = field(default_factory=list)
    handed: bytes = b"0-0"  # every event up to this entry id was handed out
    joins: int = 0
    gaps: int = 0
    x_end: int | None = None  # the bridge's ``x`` (ring event number after) of the last entry
    trimmed: int = 0  # entries Redis trimmed before we read them: a gap to say


class RemoteRings(IQueueConsumer):
    """Events of an engine's rings from Redis Streams, in each ring's order (rings are
    interleaved by arrival). ``get``/``get_nowait``/``aget`` return decoded events,
    ``get_raw`` the ``(kind, payload)`` records (the recorder stores them as they are)."""

    def __init__(self, url: str | BusUrl, rings: Iterable[str] | None = None, *,
                 start: str | Mapping[str, str] = "latest",
                 password_env: str | None = PASSWORD_ENV,
                 count: int = READ_COUNT, client: Any = None) -> None:  # fmt: skip
        self.url = url if isinstance(url, BusUrl) else parse_bus_url(url, password_env=password_env)
        check_start(start)
        self.start = start
        self.count = count
        self._tag = fmt.layout_tag()
        self._client = client or connect(self.url)
        self._count_after = self._client.register_script(_COUNT_AFTER)
        self._lock = threading.Lock()
        self._ready: deque[tuple[int, Any]] = deque()
        self._down_since = 0.0
        self._closed = False
        self.reconnects = 0
        try:
            names = list(rings) if rings is not None else list_rings(self._client, self.url)
            self.rings = [_Ring(r, fmt.ring_stream_key(self.url.engine, r).encode(),
                                fmt.state_key(self.url.engine, r).encode()) for r in names]  # fmt: skip
            for ring in self.rings:
                self._join(ring)
        except BaseException:
            self._client.close()
            raise

    @property
    def name(self) -> str:
        return self.url.redacted

    @property
    def last_ids(self) -> dict[str, str]:
        """Per ring, the id of the last entry whose events were all handed out (or are in
        the state handed out): ``start=`` for a consumer that resumes."""
        return {r.name: r.handed.decode() for r in self.rings}

    @property
    def last_id(self) -> str:
        """The id to resume the single ring of this reader from."""
        if len(self.rings) != 1:
            raise ValueError(f"{self.name} reads {len(self.rings)} rings: use last_ids")
        return self.rings[0].handed.decode()

    # ------------------------------------------------------------------ joining
    def _join(self, ring: _Ring) -> None:
        """Set the ring's cursor (and entries read) for ``start``; queue the state."""
        c = self._client
        start = self.start if isinstance(self.start, str) else self.start.get(ring.name, "latest")
        if start == "latest":
            pipe = c.pipeline(transaction=True)
            pipe.hgetall(ring.state_key)
            pipe.execute_command("XINFO", "STREAM", ring.key)
            state, info = pipe.execute(raise_on_error=False)
            if isinstance(state, dict) and state:
                self._take_state(ring, state)
                ring.handed = _id_bytes(ring.cursor)  # resuming there gets this state again
                self._count_from(ring)
                return
            log.debug("%s: no state hash %s; reading from the newest entry", self.name,
                      ring.state_key.decode())  # fmt: skip
            added, _, last = _stream_info(info)
            ring.cursor, ring.entries_read = last, added
            ring.handed = _id_bytes(last)
            self._x_at(ring)
        elif start == "oldest":
            added, length, _ = _stream_info(c.execute_command("XINFO", "STREAM", ring.key)
                                            if c.exists(ring.key) else None)  # fmt: skip
            ring.cursor, ring.entries_read = (0, 0), added - length
        else:  # a consumer resuming: books from a state at least as new, then the stream
            ring.cursor = parse_id(start)
            ring.handed = _id_bytes(ring.cursor)
            self._count_from(ring)
            if c.exists(ring.state_key):
                self._pause(ring, ring.cursor)

    def _count_from(self, ring: _Ring) -> None:
        """``entries_read`` for a cursor inside the stream: entries-added minus the entries
        after it (counted by the server; a cursor that Redis trimmed already is a gap of
        unknown size, said once as a ``GapNotice`` with ``lost`` 0)."""
        first = _first_id(self._client, ring.key)
        if first is not None and (0, 0) < ring.cursor < first:
            log.warning("%s: Redis trimmed %s past %s; events after it are lost (count "
                        "unknown)", self.name, ring.name, _id_bytes(ring.cursor).decode())  # fmt: skip
            self._gap(ring, 0)
            if self._client.exists(ring.state_key):  # books from a state past the hole
                self._pause(ring, first)
        self._x_at(ring)
        n, last = 0, _id_bytes(ring.cursor)
        while True:
            got, last, done, added = self._count_after(keys=[ring.key], args=[last, 100_000])
            n += int(got)
            if int(done):
                ring.entries_read = max(0, int(added) - n)
                return

    def _x_at(self, ring: _Ring) -> None:
        """The bridge's ``x`` of the entry at the cursor (counts a later trim in events)."""
        if ring.cursor != (0, 0):
            eid = _id_bytes(ring.cursor)
            got = self._client.xrange(ring.key, min=eid, max=eid)
            x = got[0][1].get(b"x") if got else None
            ring.x_end = int(x) if x is not None else None

    def _take_state(self, ring: _Ring, state: dict[bytes, bytes]) -> None:
        """Queue a state hash's events; reading goes on after its ``_after`` id."""
        where = ring.state_key.decode()
        fmt.check_tag(state.get(b"_layout"), where)
        after = parse_id(state.get(b"_after", b"0-0"))
        records: list[tuple[int, Any]] = []
        for f in sorted(state):
            if not f.startswith(b"_"):
                records.extend(fmt.iter_packed(state[f]))
        self._ready.extend(records)
        ring.joins += 1
        if after > ring.cursor:
            ring.cursor = after
        ring.drop_until = after

    def _gap(self, ring: _Ring, lost: int) -> None:
        ring.gaps += 1
        self._ready.append(codec.encode(GapNotice(exchange="", lost=lost, local_ts=time.time_ns())))

    # ------------------------------------------------------------------ reading
    def _round(self, block_ms: int) -> None:
        """One read of every ring not waiting for a state (atomic with the trim check);
        when nothing is there, one ``XREAD BLOCK`` of at most ``block_ms``."""
        self._poll_paused()
        active = [r for r in self.rings if r.paused_for is None]
        if not active:
            if block_ms and not self._ready:
                time.sleep(min(block_ms, 20) / 1000)  # a state is due within a second
            return
        pipe = self._client.pipeline(transaction=True)
        # EVAL, not EVALSHA: a Redis restarted without its script cache needs no reload
        # round trip (redis-py's pipelined scripts check SCRIPT EXISTS on every execute)
        pipe.execute_command("EVAL", _COUNTS, len(active), *[r.key for r in active])
        pipe.execute_command("XREAD", "COUNT", self.count, "STREAMS", *[r.key for r in active],
                             *[_id_bytes(r.cursor) for r in active])  # fmt: skip
        res = pipe.execute(raise_on_error=False)
        reply = res[-1]
        if isinstance(reply, Exception):
            raise reply
        firsts = {key: parse_id(entries[0][0]) for key, entries in reply or [] if entries}
        counts = res[0]
        if isinstance(counts, Exception):
            raise counts
        for r, (added, length) in zip(active, counts, strict=True):
            trimmed = added - length
            if added < r.entries_read:  # the stream was recreated (Redis lost its data)
                log.warning("%s: stream %s was recreated (Redis restarted without its "
                            "data?); reading on", self.name, r.name)  # fmt: skip
                r.entries_read = trimmed
                r.trimmed = RECREATED  # what went unread is counted from the bridge's s/x
            elif trimmed > r.entries_read:
                r.trimmed = trimmed - r.entries_read
                r.entries_read = trimmed
                # books recover from a state that includes the first entry still there
                self._pause(r, firsts.get(r.key, r.cursor))
                if r.key not in firsts:  # nothing left to count events from
                    self._trim_gap(r, None)
        if not reply and block_ms and not self._ready:
            reply = self._client.execute_command(
                "XREAD", "COUNT", self.count, "BLOCK", block_ms, "STREAMS",
                *[r.key for r in active], *[_id_bytes(r.cursor) for r in active])  # fmt: skip
        self._absorb(reply or [])

    def _absorb(self, reply: list) -> None:
        """Queue the events of an XREAD reply (the hot path: one tag compare and one framing
        walk per entry; ids are parsed only where a state or a gap needs them)."""
        by_key = {r.key: r for r in self.rings}
        ready, tag = self._ready, self._tag
        for key, entries in reply:
            ring = by_key[key]
            ring.entries_read += len(entries)
            ring.cursor = parse_id(entries[-1][0])
            for eid, fields in entries:
                if fields.get(b"v") != tag or b"n" not in fields:  # refused, one line
                    fmt.decode_entry(fields, f"{ring.key.decode()} entry {eid.decode()}")
                recs = list(fmt.iter_packed(fields[b"e"]))
                if int(fields[b"n"]) != len(recs):
                    fmt.decode_entry(fields, f"{ring.key.decode()} entry {eid.decode()}")
                if ring.trimmed:
                    self._trim_gap(ring, fields, recs)
                x = fields.get(b"x")
                ring.x_end = int(x) if x is not None else None
                if ring.paused_for is not None:
                    ring.held.append((eid, recs))
                elif ring.drop_until is not None or any(k == GAP_KIND for k, _ in recs):
                    self._emit(ring, eid, recs)
                else:
                    ready.extend(recs)
                    ready.append((-1, (ring, eid)))  # the entry is handed out after this

    def _trim_gap(self, ring: _Ring, fields: dict | None, recs: list | None = None) -> None:
        """Say the entries Redis trimmed unread: in events when the bridge numbers its
        entries (``s`` of the first entry left minus ``x`` of the last one read, less a
        GapNotice of the bridge's own at its start), else in entries."""
        lost, unit = ring.trimmed, "entries"
        s = None if fields is None else fields.get(b"s")
        if s is not None and ring.x_end is not None:
            own = 0
            if recs and recs[0][0] == GAP_KIND:
                own = codec.decode(*recs[0]).lost
            events = int(s) - ring.x_end - own
            if events >= lost:  # each entry held at least one event
                lost, unit = events, "events"
        if lost == RECREATED or lost == 0:  # nothing was lost, or no way to tell
            if lost == RECREATED:
                log.warning("%s: entries of %s Redis lost unread cannot be counted (the "
                            "publisher does not number its entries)", self.name, ring.name)  # fmt: skip
            ring.trimmed = 0
            return
        if ring.paused_for is None and fields is not None:  # books wait for a newer state
            self._pause(ring, ring.cursor)
        log.warning("%s: Redis trimmed %d %s of %s before this reader got them", self.name,
                    lost, unit, ring.name)  # fmt: skip
        ring.trimmed = 0
        self._gap(ring, lost)

    def _emit(self, ring: _Ring, eid: bytes, recs: list[tuple[int, Any]]) -> None:
        """One entry's events, dropping what a state already holds; a GapNotice pauses
        the ring until a state that includes this entry."""
        drop = ring.drop_until is not None and parse_id(eid) <= ring.drop_until
        if ring.drop_until is not None and not drop:
            ring.drop_until = None
        for i, (kind, payload) in enumerate(recs):
            if kind == GAP_KIND:  # the bridge lost events: what follows waits for a state
                self._ready.append((kind, payload))
                ring.gaps += 1
                self._pause(ring, parse_id(eid))
                ring.held.append((eid, recs[i + 1:]))  # the rest, and its end mark
                return
            if drop and kind in STATEFUL_KINDS:
                continue
            self._ready.append((kind, payload))
        self._ready.append((-1, (ring, eid)))  # the entry is handed out after this

    def _pause(self, ring: _Ring, after: tuple[int, int]) -> None:
        """Hold the ring until a state that includes entry ``after`` (or a timeout)."""
        ring.paused_for = after if ring.paused_for is None else max(after, ring.paused_for)
        ring.paused_until = time.monotonic() + REJOIN_TIMEOUT

    def _poll_paused(self) -> None:
        """Rings waiting for a state: take it once its ``_after`` reaches the gap, or read
        on without it after :data:`REJOIN_TIMEOUT`."""
        for ring in self.rings:
            if ring.paused_for is None:
                continue
            # the (small) _after first: a state of many deep books is fetched once, when due
            mark = self._client.hget(ring.state_key, "_after")
            state = {} if mark is None or parse_id(mark) < ring.paused_for else \
                self._client.hgetall(ring.state_key)
            after = parse_id(state[b"_after"]) if b"_after" in state else None
            if after is not None and after >= ring.paused_for:
                cursor = ring.cursor
                self._take_state(ring, state)
                ring.cursor = cursor  # entries up to _after are read, their state dropped
            elif time.monotonic() < ring.paused_until:
                continue
            else:
                log.info("%s: no state newer than the gap in %s within %.0fs; reading on",
                         self.name, ring.name, REJOIN_TIMEOUT)  # fmt: skip
            ring.paused_for = None
            held, ring.held = ring.held, []
            for eid, recs in held:
                self._emit(ring, eid, recs)

    def _read(self, deadline: float | None) -> None:
        """Fill ``_ready`` (or return at ``deadline``), reconnecting while Redis is away."""
        import redis

        backoff = 0.05
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            block = BLOCK_MAX_MS if left is None else max(0, min(BLOCK_MAX_MS, int(left * 1000)))
            try:
                self._round(block)  # block 0: one look without waiting
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                self._lost_connection(e)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and (left <= 0 or (isinstance(e, redis.TimeoutError)
                                                       and left < SOCKET_TIMEOUT)):  # fmt: skip
                    return  # a server that does not answer: the next get tries again
                time.sleep(backoff if left is None else min(backoff, left))
                backoff = min(backoff * 2, 1.0)
                continue
            if self._down_since:
                log.warning("%s: Redis is back after %.1fs; resuming at the last ids",
                            self.name, time.monotonic() - self._down_since)  # fmt: skip
                self._down_since = 0.0
                self.reconnects += 1
            if self._ready or (deadline is not None and time.monotonic() >= deadline):
                return

    def _lost_connection(self, e: BaseException) -> None:
        if not self._down_since:
            self._down_since = time.monotonic()
            log.warning("%s: lost Redis (%s); reconnecting and resuming at the last ids",
                        self.name, _why(e, self.url))  # fmt: skip
        self._client.connection_pool.disconnect()

    def _pop(self) -> tuple[int, Any] | None:
        """The next record; end-of-entry marks (kind -1) only move :attr:`last_ids`."""
        ready = self._ready
        while ready:
            kind, payload = ready.popleft()
            if kind < 0:
                payload[0].handed = payload[1]
                continue
            while ready and ready[0][0] < 0:  # the entry's last event: it is handed out
                ring, eid = ready.popleft()[1]
                ring.handed = eid
            return kind, payload
        return None

    def get_raw(self, timeout: float | None = None) -> tuple[int, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                item = self._pop()
                if item is not None:
                    return item
                self._read(deadline)
                if not self._ready:
                    raise QueueEmpty

    def get(self, timeout: float | None = None) -> Any:
        return codec.decode(*self.get_raw(timeout))

    def get_nowait(self) -> Any:
        with self._lock:
            item = self._pop()
            if item is None:
                try:
                    self._round(0)
                except Exception as e:  # a lost connection: the next blocking get reconnects
                    log.debug("%s: %s", self.name, _why(e, self.url))
                item = self._pop()
            if item is None:
                raise QueueEmpty
            return codec.decode(*item)

    def _fill(self, timeout: float) -> None:
        with self._lock:
            if not self._ready:
                self._read(time.monotonic() + timeout)

    async def aget(self) -> Any:
        """Reads in a worker thread (short blocking reads that only fill the buffer, so a
        cancelled await loses nothing); the event loop never blocks."""
        while True:
            if self._lock.acquire(blocking=False):  # never wait for the lock in the loop
                try:
                    item = self._pop()
                    if item is not None:
                        return codec.decode(*item)
                finally:
                    self._lock.release()
            await asyncio.to_thread(self._fill, BLOCK_MAX_MS / 1000)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> RemoteRings:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stream_info(info: Any) -> tuple[int, int, tuple[int, int]]:
    """(entries-added, length, last id) of an ``XINFO STREAM`` reply; zeros for a stream
    that does not exist yet (an error reply: "no such key")."""
    if not isinstance(info, dict):
        return 0, 0, (0, 0)
    return (int(info.get(b"entries-added", info.get("entries-added", 0))),
            int(info.get(b"length", info.get("length", 0))),
            parse_id(info.get(b"last-generated-id", info.get("last-generated-id", b"0-0"))))  # fmt: skip


def _first_id(client: Any, key: bytes) -> tuple[int, int] | None:
    first = client.xrange(key, count=1)
    return parse_id(first[0][0]) if first else None


def attach_remote(url: str, *, exchanges: Iterable[str] | None = None,
                  symbols: Iterable[str] | None = None,
                  kinds: Iterable[str | type] | None = None,
                  streams: tuple[str, ...] = ("market", "private"),
                  start: str | Mapping[str, str] = "latest",
                  wait: float = 0.0, password_env: str | None = PASSWORD_ENV) -> Any:  # fmt: skip
    """``ttxt_mp.attach`` for a ``redis://`` / ``rediss://`` URL (see the module doc)."""
    from ttxt_mp.client import EventFilter, Feed, FeedNotFound

    bus = parse_bus_url(url, password_env=password_env)
    check_start(start)
    client = connect(bus)
    try:
        deadline = time.monotonic() + wait
        while True:
            rings = [r for r in list_rings(client, bus) if r.rpartition("-")[2] in streams]
            if exchanges is not None:
                wanted = set(exchanges)
                rings = [r for r in rings if r.rpartition("-")[0] in wanted] or rings
            if rings or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if not rings:
            raise FeedNotFound(f"no rings of engine {bus.engine!r} on {bus.redacted}: is a "
                               "[[bridges]] entry publishing it (ttxt-mp status "
                               f"{bus.engine})?")  # fmt: skip
        src = RemoteRings(bus, rings, start=start, client=client)
    except BaseException:
        client.close()
        raise
    return Feed([src], EventFilter(exchanges, symbols, kinds))
