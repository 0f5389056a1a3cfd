"""Single-producer, multi-consumer broadcast ring in POSIX shared memory: what both ends
share (the mapping, geometry, metadata, consumer table). The ends are ``writer.py`` and
``reader.py``; this docstring is the memory-ordering argument both rely on.

Memory ordering. The ring has no locks on the hot path and relies on x86-64 (TSO)
ordering: stores become visible to other cores in program order and loads are not
reordered with other loads. CPython performs every ``memoryview``/``struct`` access as a
real load or store inside an opaque C call, so the compiler cannot reorder them either.
On that basis:

* Per-slot seqlock. The producer writes the slot header with ``stamp = (seq+1)|WRITING``
  (the stamp is the first field, so it is stored first), then the payload, then
  ``stamp = seq+1``. A reader reads the stamp, copies/decodes, and reads the stamp again;
  if it still equals ``seq+1`` no byte of the slot changed in between (any newer store it
  might have seen implies the earlier WRITING store is visible to its later load).
* Multi-slot events are written with every fragment marked WRITING, then stamped valid
  from the last fragment to the first: fragment 0 valid implies all fragments complete,
  and fragment 0 unchanged after the copy implies none was overwritten (the producer
  overwrites in sequence order).
* ``head`` is stored after the slots it covers, so a reader that loads ``head`` then the
  slots sees them complete (used by ``get_batch``).

Sleeping. A consumer with nothing to read spins (adaptively, up to ``spin_us``: see
``RingReader._adapt``), then flags itself asleep (a byte in the sleep-flag line, a new
token each time) and blocks on its FIFO; the producer reads that line on every put (one
8-byte load) and writes one byte to the FIFO of each consumer whose token changed: no
syscall per event, one per sleep. This is a store->load pattern on both sides (consumer:
store flag, load stamp; producer: store stamp and head, load flag) that x86 may reorder,
so each side puts a full fence between its store and its load (Dekker): the consumer
takes and releases a ``threading.Lock`` after its flag store (a locked instruction), the
producer does the same (``_FENCE``; ``mfence`` in the compiled core) after storing head
and before loading the flags. Then at least one side sees the other's store: either the
producer sees the flag and wakes the consumer, or the consumer's one look after its fence
sees the event. As a last safety net the sleep has a timeout (``wake_timeout``, 100 ms
default), after which the consumer looks again and checks that the producer is alive.

Sequences count slots, event numbers (``evno``) count events. A consumer knows the
event number it expects next; the slot it reads tells which event it holds, so a lap is
reported as :class:`ttxt_mp.events.GapNotice` with the exact number of events lost.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import platform
import stat
import sys
import threading
import time
from typing import Any

import msgspec
import numpy as np
import posix_ipc

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.errors import (
    RingNotFound,
    RingPermissionError,
)
from ttxt_mp.shm.objects import (
    check_ring_fd,
    pid_alive,
    shm_name,
    shm_path,
)

if platform.machine().lower() not in ("x86_64", "amd64") or sys.byteorder != "little":
    raise ImportError(
        f"ttxt_mp.shm relies on x86-64 (TSO) store ordering for its lock-free rings; "
        f"this machine is {platform.machine()!r} ({sys.byteorder}-endian). Porting needs "
        "explicit memory barriers (a C extension)."
    )

log = logging.getLogger("ttxt_mp.shm")


_SH = L.SLOT_HEADER
_SH_PACK = _SH.pack_into
_SH_UNPACK = _SH.unpack_from
_W = L.WRITING
_UNW = ~L.WRITING
_HS = L.SLOT_HEADER_SIZE
_HEAD = L.OFF["head"] // 8
_BEAT = L.OFF["heartbeat_ns"] // 8
_CLOSED = L.OFF["closed"] // 8
_META_SEQ = L.OFF["meta_seq"] // 8
_META_LEN = L.OFF["meta_len"] // 8
_FLOOR = L.OFF["floor"] // 8
_FLAGS = L.OFF["sleep_flags"]
_C_PID = L.COFF["pid"]
_C_STATE = L.COFF["state"]
_C_CURSOR = L.COFF["cursor"]
_C_GEN = L.COFF["generation"]
_C_LOST = L.COFF["lost"]
_C_ATT = L.COFF["attached_ns"]
_BEAT_EVERY = 1024
_RETRY = object()
_GAP_KIND = codec.layout_for(GapNotice).kind
_DEAD_VIEW = memoryview(bytes(L.SLOT_HEADER_SIZE))
_FENCE = threading.Lock()
"""Taken and released as a full memory fence (a locked instruction; see module doc)."""


def adapt_spin(budget: float, top: float, hit: bool) -> float:
    """The adaptive spin budget after a wait: one that ended while spinning (``hit``)
    doubles it, up to ``top`` (from ``top/16`` when it was 0); one that had to sleep
    halves it, down to 0 below ``top/32``. Events closer together than the budget are
    caught spinning; a steady trickle (10k/s: 100 us apart) sleeps at once instead of
    burning ``top`` per event."""
    if hit:
        return min(top, max(2 * budget, top / 16))
    return 0.0 if budget < top / 32 else budget / 2


class _Decoders(dict):
    """kind -> generated ``unpack_from``; looked up once per kind."""

    def __missing__(self, kind: int):
        f = self[kind] = codec.layout_for(kind).unpack_from
        return f


def _meta_blob(kinds: list[int] | None, metadata: Any) -> bytes:
    return msgspec.json.encode({"kinds": kinds, "meta": metadata})


def _layout_hash(kinds: list[int] | None) -> bytes:
    return codec.registry_hash(kinds)


class _Mapped:
    """The mapping of one ring and its geometry, shared by both ends."""

    name: str
    _closed = True

    def _map(self, shm: posix_ipc.SharedMemory, size: int) -> None:
        self._shm = shm
        self._fd = shm.fd
        # MAP_POPULATE: fault every page in now, not one per 4 KiB on the first lap.
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        self._mm = mmap.mmap(shm.fd, size, flags=flags)
        self._mv = memoryview(self._mm)
        self._Q = self._mv.cast("Q")
        self._views: list[Any] = []

    def _geometry(self) -> None:
        hdr = np.frombuffer(self._mm, L.HEADER_DTYPE, 1)[0]
        self._cap = int(hdr["capacity"])
        self._mask = self._cap - 1
        self._ss = int(hdr["slot_size"])
        self._pcap = self._ss - _HS
        self._policy = int(hdr["policy"])
        self._maxc = int(hdr["max_consumers"])
        self._data = int(hdr["data_offset"])
        self._meta_off = int(hdr["meta_offset"])
        self._meta_cap = int(hdr["meta_capacity"])
        self.producer_pid = int(hdr["producer_pid"])
        self.producer_uid = int(hdr["producer_uid"])
        self.instance_id = int(hdr["instance_id"])
        """Engine instance that created the ring (0: created outside an engine)."""
        del hdr
        self._slots = self._view(np.ndarray, (self._cap,), L.slot_dtype(self._ss), self._data)
        self._meta_cache: tuple[int, Any] = (-1, None)
        self._closed = False

    def _view(self, make, shape, dtype, offset, strides=None) -> np.ndarray:
        v = make(shape, dtype, buffer=self._mm, offset=offset, strides=strides)
        self._views.append(v)
        return v

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def slot_size(self) -> int:
        return self._ss

    @property
    def policy(self) -> str:
        return "block" if self._policy == L.POLICY_BLOCK else "overwrite"

    @property
    def closed(self) -> bool:
        return self._closed

    def _slot_off(self, seq: int) -> int:
        return self._data + (seq & self._mask) * self._ss

    def _read_meta(self) -> dict:
        while True:
            s1 = self._Q[_META_SEQ]
            if s1 & 1:
                time.sleep(0)
                continue
            if s1 == self._meta_cache[0]:
                return self._meta_cache[1]
            n = self._Q[_META_LEN]
            blob = bytes(self._mv[self._meta_off : self._meta_off + min(n, self._meta_cap)])
            if self._Q[_META_SEQ] == s1:
                value = msgspec.json.decode(blob)
                self._meta_cache = (s1, value)
                return value

    @property
    def metadata(self) -> Any:
        """The producer's metadata (msgspec JSON), e.g. the instrument table."""
        return self._read_meta()["meta"]

    def _entry(self, i: int) -> tuple[int, int, int, int]:
        """(pid, state, cursor, generation) of consumer entry ``i``."""
        o = L.consumer_offset(i)
        mv = self._mv
        return (
            int.from_bytes(mv[o + _C_PID : o + _C_PID + 4], "little"),
            int.from_bytes(mv[o + _C_STATE : o + _C_STATE + 4], "little"),
            self._Q[(o + _C_CURSOR) >> 3],
            self._Q[(o + _C_GEN) >> 3],
        )

    def _set_u32(self, off: int, value: int) -> None:
        self._mv[off : off + 4] = value.to_bytes(4, "little")

    def consumers(self) -> list[dict]:
        """Status of the attached consumers (for the supervisor / status pages)."""
        head = self._Q[_HEAD]
        out = []
        for i in range(self._maxc):
            pid, state, cursor, gen = self._entry(i)
            if state == L.STATE_ACTIVE:
                lost = self._Q[(L.consumer_offset(i) + _C_LOST) >> 3]
                out.append(
                    {"index": i, "pid": pid, "cursor": cursor, "lag": head - cursor,
                     "lost": lost, "generation": gen, "alive": pid_alive(pid)}
                )  # fmt: skip
        return out

    def _unmap(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._views.clear()
        for attr in ("_slots", "_stamps", "_evnos", "_w16", "_w24", "_payload_views"):
            self.__dict__.pop(attr, None)
        mv = self._mv
        # Later hot-path calls read a zeroed dummy slot and take the slow path, which
        # raises QueueClosed: no closed check costs anything on the hot path.
        self._mv = _DEAD_VIEW
        self._data = self._mask = self._ss = 0
        self._limit = -1
        with contextlib.suppress(BufferError):
            self._Q.release()
            mv.release()
        try:
            self._mm.close()
        except BufferError:  # a caller still holds a view; the GC unmaps it later
            log.debug("ring %s: mapping still referenced, left to the GC", self.name)
        with contextlib.suppress(OSError):
            self._shm.close_fd()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        self._unmap()


def _open_existing(name: str, *, allow_gid: int | None = None) -> posix_ipc.SharedMemory:
    """Open ring ``name``'s shm object (glibc's ``shm_open`` adds ``O_NOFOLLOW``) and
    accept it only after :func:`check_ring_fd`: ours (or group ``allow_gid``), 0600/0660."""
    try:
        shm = posix_ipc.SharedMemory(shm_name(name))
    except posix_ipc.ExistentialError:
        raise RingNotFound(
            f"no shared-memory ring {name!r} ({shm_path(name)}): is its producer running?"
        ) from None
    except posix_ipc.PermissionsError:
        try:
            st = os.lstat(shm_path(name))
            owner = f"uid {st.st_uid} with mode {st.st_mode & 0o777:o}"
            if stat.S_ISLNK(st.st_mode):
                owner = "nobody: it is a symbolic link"
        except OSError:
            owner = "another user"
        raise RingPermissionError(
            f"ring {name!r} ({shm_path(name)}) belongs to {owner}; this process runs as "
            f"uid {os.geteuid()}: run producer and consumers as the same user"
        ) from None
    except OSError as e:  # ELOOP: a symbolic link (never followed)
        why = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror
        raise RingPermissionError(
            f"refusing ring {name!r} ({shm_path(name)}): {why}"
        ) from None
    try:
        check_ring_fd(shm.fd, name, allow_gid=allow_gid)
    except BaseException:
        shm.close_fd()
        raise
    return shm


def check_header_owner(name: str, header: bytes, st_uid: int) -> None:
    """The header's ``producer_uid`` must be the file's owner: a ring copied or chowned
    from another user's is refused."""
    o = L.OFF["producer_uid"]
    uid = int.from_bytes(header[o : o + 4], "little")
    if uid != st_uid:
        raise RingPermissionError(
            f"ring {name!r} ({shm_path(name)}): its header names producer uid {uid} but "
            f"the object is owned by uid {st_uid}"
        )
