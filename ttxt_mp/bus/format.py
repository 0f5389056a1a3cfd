"""How engine events are laid out on a Redis Streams bus (the contract of bridge and readers).

Keys, for an engine named ``E`` (one stream per engine ring, named like the ring):

- ``ttxt:E:meta`` (hash): ``layout`` = the codec's :func:`~ttxt_mp.codec.registry_hash`
  (8 bytes, hex), ``format`` = :data:`FORMAT_VERSION`, ``rings`` = JSON list of ring
  names, ``bridge`` = JSON :class:`BridgeStatus`-like dict (written by the bridge).
- ``ttxt:E:ring:<connector>-<stream>`` (stream): entries of :func:`encode_entry`.
- ``ttxt:E:state:<connector>-<stream>`` (hash): the ring's state for a late joiner,
  written by the bridge in one ``MULTI``: field ``_after`` = the stream id the state is
  valid after (a reader yields the state, then reads the stream from that id), field
  ``_layout`` = layout hash hex, then one field per stateful key (see :func:`state_field`)
  whose value is ``pack_events([event])``.

Entry fields: ``v`` = :data:`FORMAT_VERSION` and layout hash (``b"1:<hex>"``), ``n`` =
event count, ``e`` = :func:`pack_events` of the events, in the ring's order. Events keep
the codec's fixed binary layout: nothing is re-encoded to JSON. A reader refuses an
entry whose ``v`` differs from its own (:class:`BusLayoutError`), never decodes it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

from ttxt_mp import codec

__all__ = [
    "FORMAT_VERSION", "BusLayoutError", "decode_entry", "encode_entry", "iter_packed",
    "layout_tag", "meta_key", "pack_events", "pack_raw", "ring_stream_key", "state_field",
    "state_key", "unpack_events",
]  # fmt: skip

FORMAT_VERSION = 1
PREFIX = "ttxt"
_ITEM = struct.Struct("<HI")  # kind, payload length


class BusLayoutError(ValueError):
    """A bus entry written with another format or event-layout version: never decoded."""


def meta_key(engine: str) -> str:
    return f"{PREFIX}:{engine}:meta"


def ring_stream_key(engine: str, ring: str) -> str:
    """``ring`` is ``<connector>-<stream>``, e.g. ``binance-market``."""
    return f"{PREFIX}:{engine}:ring:{ring}"


def state_key(engine: str, ring: str) -> str:
    return f"{PREFIX}:{engine}:state:{ring}"


def layout_tag() -> bytes:
    """``b"<format>:<layout hash hex>"``, stamped on every entry and in the meta hash."""
    return f"{FORMAT_VERSION}:{codec.registry_hash().hex()}".encode()


def pack_raw(items: Iterable[tuple[int, bytes | memoryview]]) -> bytes:
    """Concatenate ``(kind, payload)`` records (as ``get_raw`` returns them)."""
    out = bytearray()
    for kind, payload in items:
        out += _ITEM.pack(kind, len(payload))
        out += payload
    return bytes(out)


def pack_events(events: Iterable[Any]) -> bytes:
    return pack_raw(codec.encode(ev) for ev in events)


def iter_packed(buf: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """The ``(kind, payload)`` records of a packed buffer; a truncated one raises."""
    mv = memoryview(buf)
    off, end = 0, len(mv)
    while off < end:
        if off + _ITEM.size > end:
            raise BusLayoutError(f"truncated bus record header at byte {off} of {end}")
        kind, n = _ITEM.unpack_from(mv, off)
        off += _ITEM.size
        if off + n > end:
            raise BusLayoutError(f"truncated bus record (kind {kind}, {n} bytes) at byte {off}")
        yield kind, mv[off:off + n]
        off += n


def unpack_events(buf: bytes | memoryview) -> list[Any]:
    return [codec.decode(kind, payload) for kind, payload in iter_packed(buf)]


def encode_entry(items: Iterable[tuple[int, bytes | memoryview]]) -> dict[bytes, bytes]:
    """The fields of one ``XADD`` carrying raw records, in order."""
    items = list(items)
    return {b"v": layout_tag(), b"n": str(len(items)).encode(), b"e": pack_raw(items)}


def check_tag(tag: bytes | str | None, where: str) -> None:
    """Refuse ``where`` (a key or entry id) when its tag is not this library's."""
    mine = layout_tag()
    got = tag.encode() if isinstance(tag, str) else tag
    if got != mine:
        raise BusLayoutError(
            f"{where}: written with bus format/layout {got!r}, this library reads {mine!r} "
            "(another ttxt-mp version or other user event kinds): refusing to decode it"
        )


def decode_entry(fields: dict[bytes, bytes], where: str = "entry") -> list[tuple[int, memoryview]]:
    """The raw records of one entry, after checking its layout tag."""
    check_tag(fields.get(b"v"), where)
    items = list(iter_packed(fields.get(b"e", b"")))
    n = fields.get(b"n")
    if n is not None and int(n) != len(items):
        raise BusLayoutError(f"{where}: says {int(n)} events, holds {len(items)}")
    return items


def state_field(ev: Any) -> str:
    """The key a stateful event supersedes its predecessors under (kind, venue, symbol,
    interval for klines), so the state hash holds one latest value per key."""
    name = type(ev).__name__
    parts = [name, getattr(ev, "exchange", ""), getattr(ev, "symbol", "")]
    interval = getattr(ev, "interval", None)
    if interval:
        parts.append(str(interval))
    for extra in ("asset", "client_order_id", "position_side", "connection"):
        v = getattr(ev, extra, None)
        if v not in (None, ""):
            parts.append(str(v))
    return "|".join(parts)
