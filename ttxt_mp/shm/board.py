"""State on join: a ring's companion object holding the producer's current state.

A consumer that attaches to a running ring (or is lapped) has missed the snapshots that
built the books. Instead of replaying history, it asks the producer for its state:

* The board ``/dev/shm/ttxt-<ring>.state`` (mode 0600, or 0660 with a trading group;
  removed with its ring) has a *request* counter and a *served* counter.
* A consumer registers its cursor on the ring first, then :meth:`StateBoard.request`
  bumps ``request`` (under the board's flock: requests are rare, like attaches).
* The producer polls ``request != served`` (one load every few ms, no cost per event),
  and, between two puts of its single-threaded loop, writes every stateful value it holds
  (a snapshot of each synced book, the last kline per interval, its last status) as
  codec-encoded records, with the *watermark*: the event number of the next event it
  will put. The state is exactly the effect of every event numbered below the watermark.
* The consumer reads the state (a seqlock: ``seq`` odd while the producer writes), hands
  those events out first, then continues from its cursor, dropping the stateful events
  numbered below the watermark (already in the state). Nothing is missing in between, and
  the other consumers of the ring see nothing of it: one late joiner with 1,000-level
  books costs the producer one encode per book and the others nothing.

Layout (little-endian)::

    0     magic "TTXTSTAT", version u4, pad, instance_id u8
    64    request u8                (own cache line: written by consumers)
    128   seq u8, served u8, watermark u8, blob_len u8, written_ns u8, nrecords u8
    4096  blob: nrecords x (kind u2, len u4, payload[len])

The producer grows the object (``ftruncate`` + ``posix_fallocate``) when a state does not
fit; readers remap when they see a larger size.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
from collections.abc import Iterable
from typing import Any

import posix_ipc

from ttxt_mp import codec
from ttxt_mp.shm.errors import RingForeign, RingNotFound, RingTooLarge
from ttxt_mp.shm.objects import PREFIX, SHM_DIR, allocate, create_object, discard, flocked
from ttxt_mp.trust import UntrustedObject, check_fd

__all__ = ["BoardState", "StateBoard", "board_name"]

MAGIC = int.from_bytes(b"TTXTSTAT", "little")
VERSION = 1
_HDR = struct.Struct("<QI4xQ")  # magic, version, instance_id
OFF_REQUEST = 64
OFF_SEQ = 128
OFF_SERVED = 136
OFF_WATERMARK = 144
OFF_BLOB_LEN = 152
OFF_WRITTEN_NS = 160
OFF_NRECORDS = 168
DATA_OFFSET = 4096
_REC = struct.Struct("<HI")
MAX_BOARD_BYTES = 1 << 30
"""A state larger than this (1 GiB) is refused: no producer holds that much state."""


def board_name(ring: str) -> str:
    """The posix_ipc name of ring ``ring``'s board (a companion object of the ring)."""
    return f"/{PREFIX}{ring}.state"


def board_path(ring: str) -> str:
    return f"{SHM_DIR}/{PREFIX}{ring}.state"


class BoardState:
    """One served state: it reflects every ring event numbered below ``watermark``.

    ``records`` are the codec records as stored (what a recorder writes); ``events``
    decodes them once, when first asked for."""

    __slots__ = ("_events", "records", "ticket", "watermark", "written_ns")

    def __init__(self, records: list[tuple[int, bytes]], watermark: int, written_ns: int,
                 ticket: int) -> None:  # fmt: skip
        self.records = records
        self.watermark = watermark
        self.written_ns = written_ns
        self.ticket = ticket
        self._events: list[Any] | None = None

    @property
    def events(self) -> list[Any]:
        if self._events is None:
            self._events = [codec.decode(k, p) for k, p in self.records]
        return self._events


class StateBoard:
    """Either end of one ring's board (see the module docstring)."""

    def __init__(self, ring: str, shm: posix_ipc.SharedMemory, producer: bool) -> None:
        self.ring = ring
        self.producer = producer
        self._shm = shm
        self._fd = shm.fd
        self._size = 0
        self._mm: mmap.mmap | None = None
        self._remap()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, ring: str, *, instance_id: int = 0, group: int | None = None,
               capacity: int = 1 << 16) -> StateBoard:  # fmt: skip
        """Create (or take over, after a producer restart) the board of ``ring``."""
        size = DATA_OFFSET + max(capacity, 4096)
        what = f"state board of ring {ring!r}"
        try:
            shm = create_object(board_name(ring), what, size, group)  # flocked
        except posix_ipc.ExistentialError:
            self = cls.open(ring, instance_id=instance_id or None)
            self.producer = True
            return self
        try:
            self = cls(ring, shm, True)
            mm = self._mm
            assert mm is not None
            with flocked(self._fd):  # ours already: this releases it once written
                _HDR.pack_into(mm, 0, MAGIC, VERSION, instance_id)
        except BaseException:
            discard(shm, board_name(ring))
            raise
        return self

    @classmethod
    def open(cls, ring: str, *, instance_id: int | None = None,
             allow_gid: int | None = None) -> StateBoard:  # fmt: skip
        """Open ``ring``'s board as a consumer; :class:`RingNotFound` if it has none."""
        try:
            shm = posix_ipc.SharedMemory(board_name(ring))
        except posix_ipc.ExistentialError:
            raise RingNotFound(f"ring {ring!r} has no state board ({board_path(ring)})") from None
        except posix_ipc.PermissionsError as e:
            raise UntrustedObject(f"state board {board_path(ring)}: {e}") from None
        try:
            check_fd(shm.fd, board_path(ring), allow_gid=allow_gid, what="state board")
            if os.fstat(shm.fd).st_size < DATA_OFFSET:
                raise RingNotFound(f"state board {board_path(ring)} is not initialized")
            self = cls(ring, shm, False)
        except BaseException:
            shm.close_fd()
            raise
        mm = self._mm
        assert mm is not None
        magic, version, inst = _HDR.unpack_from(mm, 0)
        if magic != MAGIC or version != VERSION:
            self.close()
            raise RingNotFound(f"state board {board_path(ring)} has another layout")
        if instance_id is not None and inst != instance_id:
            self.close()
            raise RingForeign(f"state board {board_path(ring)} belongs to engine instance "
                              f"{inst:x}, not {instance_id:x}")  # fmt: skip
        return self

    def _remap(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == self._size and self._mm is not None:
            return
        if self._mm is not None:
            self._mm.close()
        self._mm = mmap.mmap(self._fd, size, flags=mmap.MAP_SHARED) if size else None
        self._size = size

    def _q(self, off: int) -> int:
        assert self._mm is not None
        return int.from_bytes(self._mm[off : off + 8], "little")

    def _set(self, off: int, v: int) -> None:
        assert self._mm is not None
        self._mm[off : off + 8] = v.to_bytes(8, "little")

    # ------------------------------------------------------------------ consumer
    def request(self) -> int:
        """Ask the producer for its state; returns the ticket :meth:`read` waits for."""
        with flocked(self._fd):
            ticket = self._q(OFF_REQUEST) + 1
            self._set(OFF_REQUEST, ticket)
        return ticket

    def poll(self, ticket: int) -> BoardState | None:
        """The state if a request at least as new as ``ticket`` was served, else None."""
        if self._q(OFF_SERVED) < ticket:
            return None
        got = self._try_read()
        return got if got is not None and got.ticket >= ticket else None

    def read(self, ticket: int, timeout: float = 2.0) -> BoardState | None:
        """The state once a request at least as new as ``ticket`` was served, or None if
        the producer did not serve it within ``timeout`` (no producer, or an old one)."""
        deadline = time.monotonic() + timeout
        delay = 0.0002
        while True:
            got = self.poll(ticket)
            if got is not None:
                return got
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)  # polling a counter another process bumps, bounded above
            delay = min(delay * 2, 0.005)

    def _try_read(self) -> BoardState | None:
        for _ in range(100):
            self._remap()
            seq = self._q(OFF_SEQ)
            if seq & 1:
                time.sleep(0)
                continue
            served, mark = self._q(OFF_SERVED), self._q(OFF_WATERMARK)
            n, nrec, wns = self._q(OFF_BLOB_LEN), self._q(OFF_NRECORDS), self._q(OFF_WRITTEN_NS)
            if DATA_OFFSET + n > self._size:
                continue  # grown meanwhile: remap and look again
            assert self._mm is not None
            blob = self._mm[DATA_OFFSET : DATA_OFFSET + n]
            if self._q(OFF_SEQ) != seq:
                continue
            if not served:
                return None
            return BoardState(_split(blob, nrec), mark, wns, served)
        return None

    # ------------------------------------------------------------------ producer
    @property
    def pending(self) -> bool:
        """A consumer asked for the state since it was last served."""
        return self._q(OFF_REQUEST) != self._q(OFF_SERVED)

    def publish(self, events: Iterable[Any], watermark: int) -> int:
        """Write ``events`` (every stateful value, as of ``watermark``) and serve every
        request made so far; returns the bytes written."""
        request = self._q(OFF_REQUEST)
        blob = bytearray()
        nrec = 0
        for ev in events:
            kind, payload = codec.encode(ev)
            blob += _REC.pack(kind, len(payload))
            blob += payload
            nrec += 1
        need = DATA_OFFSET + len(blob)
        if need > self._size:
            _grow(self._fd, max(need, 2 * self._size), self.ring)
            self._remap()
        mm = self._mm
        assert mm is not None
        seq = self._q(OFF_SEQ)
        self._set(OFF_SEQ, seq + 1)  # odd: writing
        mm[DATA_OFFSET : DATA_OFFSET + len(blob)] = blob
        self._set(OFF_BLOB_LEN, len(blob))
        self._set(OFF_NRECORDS, nrec)
        self._set(OFF_WATERMARK, watermark)
        self._set(OFF_WRITTEN_NS, time.time_ns())
        self._set(OFF_SERVED, request)
        self._set(OFF_SEQ, seq + 2)
        return len(blob)

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        if self._mm is not None:
            with contextlib.suppress(BufferError):
                self._mm.close()
            self._mm = None
        with contextlib.suppress(Exception):
            self._shm.close_fd()

    def unlink(self) -> None:
        with contextlib.suppress(posix_ipc.ExistentialError):
            posix_ipc.unlink_shared_memory(board_name(self.ring))

    def __enter__(self) -> StateBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _grow(fd: int, size: int, ring: str) -> None:
    if size > MAX_BOARD_BYTES:
        raise RingTooLarge(f"state of ring {ring!r} needs {size} bytes, more than the "
                           f"{MAX_BOARD_BYTES} a state board may hold")  # fmt: skip
    allocate(fd, f"state board of ring {ring!r}", size)


def _split(blob: bytes, nrec: int) -> list[tuple[int, bytes]]:
    out = []
    off = 0
    for _ in range(nrec):
        kind, n = _REC.unpack_from(blob, off)
        off += _REC.size
        out.append((kind, blob[off : off + n]))
        off += n
    return out
