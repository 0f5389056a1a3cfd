"""Every byte offset of a ring, declared once (like Aeron's descriptors).

A ring is one POSIX shared-memory object ``/ttxt-<name>``::

    0      header, static part (written once by the producer before ``magic``)
    128    producer line: head sequence, heartbeat, closed flag, metadata seqlock
    192    sleep flags: one byte per consumer (its own cache line, read by the producer
           on every put, written by a consumer only when it falls asleep or wakes)
    256    consumer table: ``max_consumers`` entries of 64 bytes (one cache line each)
    ...    metadata blob (msgspec JSON, seqlocked by ``meta_seq``)
    data   ``capacity`` slots of ``slot_size`` bytes: a 32-byte slot header, then payload

All integers are little-endian. Sequences (``head``, slot stamps, consumer cursors) are
64-bit and never wrap (2**63 slots at 10**9/s is 292 years).

Slot stamp (the per-slot seqlock): ``0`` never written; ``seq + 1`` the slot holds
sequence ``seq`` completely; ``(seq + 1) | WRITING`` the producer is writing ``seq``.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = int.from_bytes(b"TTXTRING", "little")
VERSION = 3
"""3: ``instance_id`` (the engine instance that owns the ring)."""
WRITING = 1 << 63
"""Stamp bit set while the producer writes a slot."""

POLICY_OVERWRITE = 0
POLICY_BLOCK = 1
POLICIES = {"overwrite": POLICY_OVERWRITE, "block": POLICY_BLOCK}

STATE_FREE = 0
STATE_ACTIVE = 1

CACHE_LINE = 64
MAX_CONSUMERS_LIMIT = 64
"""Sleep flags are one byte per consumer in one 64-byte line."""
SLOT_HEADER_SIZE = 32
MAX_FRAGMENTS = 0xFFFF


def _dtype(fields: list[tuple[str, str, int]], itemsize: int) -> np.dtype:
    """A numpy dtype with explicit offsets; the single source of every offset below."""
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


HEADER_DTYPE = _dtype(
    [
        # static line(s): written before magic, never changed afterwards
        ("magic", "<u8", 0),
        ("version", "<u4", 8),
        ("header_size", "<u4", 12),
        ("capacity", "<u8", 16),
        ("slot_size", "<u4", 24),
        ("policy", "<u4", 28),
        ("layout_hash", "S8", 32),
        ("max_consumers", "<u4", 40),
        ("producer_pid", "<u4", 44),
        ("meta_offset", "<u8", 48),
        ("meta_capacity", "<u8", 56),
        ("data_offset", "<u8", 64),
        ("created_ns", "<u8", 72),
        ("producer_uid", "<u4", 80),
        # pid of the process that keeps the ring across producer hand-overs (the engine's
        # supervisor), 0 if none; set at creation, never changed afterwards
        ("keeper_pid", "<u4", 84),
        # random id of the engine instance (supervisor) that created the ring, 0 if none:
        # consumers attaching through an engine check it (another same-named engine's
        # ring is refused)
        ("instance_id", "<u8", 88),
        # producer line
        ("head", "<u8", 128),
        ("heartbeat_ns", "<u8", 136),
        ("closed", "<u8", 144),
        ("meta_seq", "<u8", 152),
        ("meta_len", "<u8", 160),
        ("floor", "<u8", 168),  # block: oldest sequence the producer holds for consumers
        # sleep flags
        ("sleep_flags", f"({MAX_CONSUMERS_LIMIT},)u1", 192),
    ],
    itemsize=256,
)
OFF = {name: HEADER_DTYPE.fields[name][1] for name in HEADER_DTYPE.names}
"""Byte offset of every header field."""
CONSUMER_TABLE_OFFSET = HEADER_DTYPE.itemsize

CONSUMER_DTYPE = _dtype(
    [
        ("pid", "<u4", 0),
        ("state", "<u4", 4),
        ("cursor", "<u8", 8),  # next sequence this consumer will read
        ("generation", "<u8", 16),  # bumped on every registration of this entry
        ("lost", "<u8", 24),  # events lost to lapping so far (status only)
        ("attached_ns", "<u8", 32),
    ],
    itemsize=CACHE_LINE,
)
COFF = {name: CONSUMER_DTYPE.fields[name][1] for name in CONSUMER_DTYPE.names}

SLOT_HEADER_DTYPE = _dtype(
    [
        ("stamp", "<u8", 0),
        ("evno", "<u8", 8),  # event number: every fragment of one event carries the same
        ("kind", "<u2", 16),
        ("fidx", "<u2", 18),  # fragment index within the event
        ("fcnt", "<u2", 20),  # fragment count of the event
        ("plen", "<u4", 24),  # payload bytes in this slot
    ],
    itemsize=SLOT_HEADER_SIZE,
)
SLOT_HEADER = struct.Struct("<QQHHH2xI4x")
"""stamp, evno, kind, fidx, fcnt, plen: one call writes (stamp first) or reads it all."""
assert SLOT_HEADER.size == SLOT_HEADER_SIZE
assert [SLOT_HEADER_DTYPE.fields[n][1] for n in SLOT_HEADER_DTYPE.names] == [0, 8, 16, 18, 20, 24]


def slot_dtype(slot_size: int) -> np.dtype:
    """One whole slot as a record: the slot header fields, then ``payload`` bytes."""
    fields = [
        (n, SLOT_HEADER_DTYPE.fields[n][0].str, SLOT_HEADER_DTYPE.fields[n][1])
        for n in SLOT_HEADER_DTYPE.names
    ]
    fields.append(("payload", f"({slot_size - SLOT_HEADER_SIZE},)u1", SLOT_HEADER_SIZE))
    return _dtype(fields, slot_size)


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def geometry(capacity: int, slot_size: int, max_consumers: int, meta_capacity: int):
    """(meta_offset, meta_capacity, data_offset, total_size) for these parameters."""
    meta_offset = CONSUMER_TABLE_OFFSET + max_consumers * CONSUMER_DTYPE.itemsize
    meta_capacity = _align(max(meta_capacity, 8), CACHE_LINE)
    data_offset = _align(meta_offset + meta_capacity, 4096)
    return meta_offset, meta_capacity, data_offset, data_offset + capacity * slot_size


def consumer_offset(index: int) -> int:
    return CONSUMER_TABLE_OFFSET + index * CONSUMER_DTYPE.itemsize
