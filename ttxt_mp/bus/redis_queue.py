"""``RedisStreamQueue``: an :class:`~ttxt_mp.queues.IQueue` on one Redis stream.

Why: a connector run in-process, a script or a test can publish engine events to other
hosts (and read them back) with the queue API every transport has. Events travel in the
codec's fixed binary layout (:mod:`ttxt_mp.bus.format`: entry fields ``v``/``n``/``e``),
never re-encoded to JSON, and a reader refuses entries of another layout
(:class:`~ttxt_mp.bus.format.BusLayoutError`) instead of decoding garbage.

Publishing: ``put`` adds one entry of one event (``XADD ... MAXLEN ~ maxlen``) to a
pipeline sent every ``pipeline`` entries (default 1: at once) and on :meth:`flush`;
``put_many`` writes entries of up to ``batch_events`` events each in one pipeline.
Consuming: ``XREAD BLOCK`` from the last entry read (``start``: ``"latest"`` = entries
added after the first read, ``"oldest"``, or a stream id), never blocking longer than
the caller's timeout; :attr:`last_id` is where a restarted reader resumes.
Sync methods use redis-py's client, ``aput``/``aget``/``aflush`` its asyncio client
(both parse with hiredis when it is installed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio as aioredis

from ttxt_mp import codec
from ttxt_mp.bus import format as bf
from ttxt_mp.bus.url import BusConnectionError, check_url, redact_url, split_url
from ttxt_mp.queues import IQueue, QueueEmpty

__all__ = ["DEFAULT_MAXLEN", "RedisStreamQueue", "BusConnectionError"]

DEFAULT_MAXLEN = 100_000
"""Entries a stream keeps (approximately: Redis trims whole nodes)."""
READ_COUNT = 256
"""Entries fetched per XREAD."""
MAX_BLOCK_MS = 1000
"""A blocking read waits at most this long per XREAD (then reads again): the socket
timeout stays short and a dead server is noticed."""


def redis_kwargs(password: str | None, connect_timeout: float, socket_timeout: float,
                 tls_ca_file: str | None = None) -> dict:  # fmt: skip
    """Client options; ``tls_ca_file``: the CA that signed a ``rediss://`` server's cert
    (default: the system's CAs). The server certificate is always verified."""
    kw = {"password": password, "socket_connect_timeout": connect_timeout,
          "socket_timeout": socket_timeout, "health_check_interval": 0}  # fmt: skip
    if tls_ca_file:
        kw["ssl_ca_certs"] = tls_ca_file
    return kw


def explain(url: str, e: BaseException) -> str:
    """One line naming the (redacted) URL and the cause, for errors and status."""
    if isinstance(e, redis.AuthenticationError) or "WRONGPASS" in str(e) or "NOAUTH" in str(e):
        why = "authentication failed (wrong or missing password)"
    elif isinstance(e, redis.TimeoutError):
        why = "timed out (server paused or overloaded?)"
    elif isinstance(e, redis.ConnectionError):
        why = f"unreachable ({str(e).strip() or type(e).__name__})"
    else:
        why = f"{type(e).__name__}: {e}"
    return f"{redact_url(url)}: {why}"


def is_auth_error(e: BaseException) -> bool:
    return isinstance(e, redis.AuthenticationError) or any(
        s in str(e) for s in ("WRONGPASS", "NOAUTH", "invalid password", "invalid username")
    )


class RedisStreamQueue(IQueue):
    """Both halves of an event queue on the Redis stream ``key`` (see the module docstring)."""

    def __init__(self, url: str, key: str, *, start: str = "latest",
                 maxlen: int = DEFAULT_MAXLEN, pipeline: int = 1, batch_events: int = 256,
                 password: str | None = None, connect_timeout: float = 5.0,
                 socket_timeout: float = 5.0, tls_ca_file: str | None = None) -> None:  # fmt: skip
        why = check_url(url)
        if why:
            raise ValueError(why)
        self.url, url_pw = split_url(url)
        self.key = key
        self.start = start
        self.maxlen = maxlen
        self.pipeline = max(1, pipeline)
        self.batch_events = max(1, batch_events)
        self.last_id: bytes | None = None
        """Id of the last entry whose events were all handed out (where a restarted
        reader resumes, exclusive)."""
        self._read_id: bytes | None = None  # the XREAD cursor (entries fetched ahead)
        self._kw = redis_kwargs(password or url_pw, connect_timeout,
                                max(socket_timeout, MAX_BLOCK_MS / 1000 + 1), tls_ca_file)  # fmt: skip
        self._client: redis.Redis | None = None
        self._aclient: aioredis.Redis | None = None
        self._pending: list[dict[bytes, bytes]] = []
        self._ready: deque[tuple[int, bytes, bytes | None]] = deque()

    @classmethod
    def for_ring(cls, url: str, engine: str, ring: str, **kw: Any) -> RedisStreamQueue:
        """The stream a bridge publishes engine ``engine``'s ring ``ring`` to
        (``ring`` = ``<connector>-<stream>``)."""
        return cls(url, bf.ring_stream_key(engine, ring), **kw)

    # ------------------------------------------------------------------ clients
    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, **self._kw)
        return self._client

    @property
    def aclient(self) -> aioredis.Redis:
        if self._aclient is None:
            self._aclient = aioredis.Redis.from_url(self.url, **self._kw)
        return self._aclient

    def _fail(self, e: BaseException) -> BusConnectionError:
        return BusConnectionError(explain(self.url, e))

    # ------------------------------------------------------------------ publisher
    def put(self, event: Any, timeout: float | None = None) -> None:
        self.put_raw(*codec.encode(event))

    def put_raw(self, kind: int, payload: bytes | memoryview) -> None:
        """One entry holding one event given as codec bytes."""
        self._pending.append(bf.encode_entry([(kind, payload)]))
        if len(self._pending) >= self.pipeline:
            self.flush()

    def put_many(self, events: Iterable[Any]) -> None:
        """Entries of up to ``batch_events`` events each, sent in one pipeline."""
        self._queue_batches(events)
        self.flush()

    async def aput(self, event: Any) -> None:
        self._pending.append(bf.encode_entry([codec.encode(event)]))
        if len(self._pending) >= self.pipeline:
            await self.aflush()

    async def aput_many(self, events: Iterable[Any]) -> None:
        self._queue_batches(events)
        await self.aflush()

    def _queue_batches(self, events: Iterable[Any]) -> None:
        batch: list[tuple[int, bytes]] = []
        for ev in events:
            batch.append(codec.encode(ev))
            if len(batch) >= self.batch_events:
                self._pending.append(bf.encode_entry(batch))
                batch = []
        if batch:
            self._pending.append(bf.encode_entry(batch))

    def flush(self) -> list[bytes]:
        """Send the pending entries in one pipeline; returns their ids."""
        if not self._pending:
            return []
        pipe = self.client.pipeline(transaction=False)
        for fields in self._pending:
            pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        try:
            ids = pipe.execute()
        except redis.RedisError as e:
            raise self._fail(e) from None
        self._pending.clear()
        return ids

    async def aflush(self) -> list[bytes]:
        if not self._pending:
            return []
        pipe = self.aclient.pipeline(transaction=False)
        for fields in self._pending:
            pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        try:
            ids = await pipe.execute()
        except redis.RedisError as e:
            raise self._fail(e) from None
        self._pending.clear()
        return ids

    # ------------------------------------------------------------------ consumer
    def _cursor(self, client_last: Any) -> None:
        if self.start == "latest":
            self._read_id = client_last or b"0-0"
        elif self.start == "oldest":
            self._read_id = b"0-0"
        else:
            self._read_id = self.start.encode()
        self.last_id = self._read_id

    def _latest(self) -> bytes | None:
        got = self.client.xrevrange(self.key, count=1)
        return got[0][0] if got else None

    async def _alatest(self) -> bytes | None:
        got = await self.aclient.xrevrange(self.key, count=1)
        return got[0][0] if got else None

    def _take(self, reply: Any) -> None:
        """Queue the records of the entries of an XREAD reply (checking each one's layout
        before anything of it is decoded; a refused entry is not consumed)."""
        for _key, entries in reply or ():
            for eid, fields in entries:
                items = bf.decode_entry(fields, f"{self.key} entry {eid.decode()}")
                self._read_id = eid
                if not items:
                    continue
                last = len(items) - 1
                self._ready.extend((k, bytes(p), eid if i == last else None)
                                   for i, (k, p) in enumerate(items))  # fmt: skip

    def _pop(self) -> tuple[int, bytes]:
        kind, payload, eid = self._ready.popleft()
        if eid is not None:
            self.last_id = eid
        return kind, payload

    def get_raw(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next event as ``(kind, payload)`` codec bytes (what a recorder stores)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            try:
                if self._read_id is None:
                    self._cursor(self._latest() if self.start == "latest" else None)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    reply = self.client.xread({self.key: self._read_id}, count=READ_COUNT)
                else:
                    ms = MAX_BLOCK_MS if left is None else max(1, min(MAX_BLOCK_MS, int(left * 1000)))
                    reply = self.client.xread({self.key: self._read_id}, count=READ_COUNT, block=ms)
            except redis.RedisError as e:
                raise self._fail(e) from None
            self._take(reply)
            if not self._ready and deadline is not None and time.monotonic() >= deadline:
                raise QueueEmpty
        return self._pop()

    def get(self, timeout: float | None = None) -> Any:
        return codec.decode(*self.get_raw(timeout))

    def get_nowait(self) -> Any:
        return self.get(0)

    async def aget(self) -> Any:
        while not self._ready:
            try:
                if self._read_id is None:
                    self._cursor(await self._alatest() if self.start == "latest" else None)
                reply = await self.aclient.xread({self.key: self._read_id}, count=READ_COUNT,
                                                 block=MAX_BLOCK_MS)  # fmt: skip
            except redis.RedisError as e:
                raise self._fail(e) from None
            self._take(reply)
        return codec.decode(*self._pop())

    # ------------------------------------------------------------------ life-cycle
    def close(self) -> None:
        """Send what is pending (if the server answers) and close the sync client."""
        try:
            if self._pending:
                self.flush()
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def aclose(self) -> None:
        try:
            if self._pending:
                await self.aflush()
        finally:
            if self._aclient is not None:
                await self._aclient.aclose()
                self._aclient = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> RedisStreamQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStreamQueue({redact_url(self.url)!r}, {self.key!r})"
