"""Move codec bytes through any IQueue: the ring's raw API when it has one, codec otherwise.

A shared-memory ring offers ``get_raw(timeout) -> (kind, payload)`` and
``put_raw(kind, payload)``, so the recorder stores and the replayer republishes the exact
ring bytes. Queues of Python objects (``AsyncioQueue``) get the same bytes through
:func:`ttxt_mp.codec.encode` / :func:`ttxt_mp.codec.decode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ttxt_mp import codec

RawGet = Callable[[float | None], tuple[int, bytes]]
RawPut = Callable[[int, Any], None]


def raw_getter(queue: Any) -> RawGet:
    """``get(timeout) -> (kind, payload)``; raises QueueEmpty/QueueClosed like ``get``."""
    get_raw = getattr(queue, "get_raw", None)
    if get_raw is not None:
        return get_raw
    get = queue.get
    encode = codec.encode

    def get_encoded(timeout: float | None) -> tuple[int, bytes]:
        return encode(get(timeout))

    return get_encoded


def raw_putter(queue: Any) -> RawPut:
    """``put(kind, payload)`` where payload is any bytes-like object."""
    put_raw = getattr(queue, "put_raw", None)
    if put_raw is not None:
        return lambda kind, payload: put_raw(kind, bytes(payload))
    put = queue.put
    decode = codec.decode
    return lambda kind, payload: put(decode(kind, payload))
