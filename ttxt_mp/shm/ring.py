"""Single-producer, multi-consumer broadcast ring in POSIX shared memory.

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

Sleeping. A consumer with nothing to read spins ``spin_us``, then flags itself asleep (a
byte in the sleep-flag line, a new token each time) and blocks on its FIFO; the producer
reads that line on every put (one 8-byte load) and writes one byte to the FIFO of each
consumer whose token changed: no syscall per event, one per sleep. This is a store->load
pattern (consumer: store flag, load stamp; producer: store stamp, load flag) that x86
may reorder, so both could miss each other. The consumer closes it in practice: after
its flag store it takes and releases a ``threading.Lock`` (a locked instruction, i.e. a
full fence: its flag is globally visible) and keeps polling for ``_SETTLE`` (20 us), far
longer than a store buffer takes to drain, before it blocks. A producer that loaded the
old flag did so before that fence, so its stamp store is visible within the settle time.
As a last safety net the sleep has a timeout (``wake_timeout``, 100 ms default), after
which the consumer looks again and checks that the producer is alive.

Sequences count slots, event numbers (``evno``) count events. A consumer knows the
event number it expects next; the slot it reads tells which event it holds, so a lap is
reported as :class:`ttxt_mp.events.GapNotice` with the exact number of events lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import mmap
import os
import platform
import select
import sys
import threading
import time
from typing import Any

import msgspec
import numpy as np
import posix_ipc

from ttxt_mp import codec
from ttxt_mp.events import GapNotice
from ttxt_mp.queues import QueueClosed, QueueEmpty, QueueFull
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.errors import (
    EventTooLarge,
    ProducerDied,
    RingError,
    RingExists,
    RingLayoutError,
    RingNotFound,
    RingPermissionError,
)
from ttxt_mp.shm.objects import (
    check_name,
    fifo_path,
    flocked,
    pid_alive,
    read_owner,
    remove_ring_objects,
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

__all__ = ["RingReader", "RingWriter"]

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
_SETTLE = 20e-6
"""After flagging itself asleep a consumer keeps polling this long (see module doc)."""


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
        for attr in ("_slots", "_stamps", "_evnos", "_w16", "_w24", "_payload"):
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


def _open_existing(name: str) -> posix_ipc.SharedMemory:
    try:
        return posix_ipc.SharedMemory(shm_name(name))
    except posix_ipc.ExistentialError:
        raise RingNotFound(
            f"no shared-memory ring {name!r} ({shm_path(name)}): is its producer running?"
        ) from None
    except posix_ipc.PermissionsError:
        try:
            st = os.stat(shm_path(name))
            owner = f"uid {st.st_uid} with mode {st.st_mode & 0o777:o}"
        except OSError:
            owner = "another user"
        raise RingPermissionError(
            f"ring {name!r} ({shm_path(name)}) belongs to {owner}; this process runs as "
            f"uid {os.getuid()}: run producer and consumers as the same user"
        ) from None


# ============================================================================ producer


class RingWriter(_Mapped):
    """The producing end of a ring (exactly one per ring)."""

    @classmethod
    def create(
        cls,
        name: str,
        capacity: int = 1 << 16,
        slot_size: int = 256,
        policy: str = "overwrite",
        metadata: Any = None,
        *,
        max_consumers: int = 8,
        kinds: list[int] | None = None,
        meta_capacity: int = 1 << 16,
    ):
        """Create ring ``name``; see :meth:`ttxt_mp.shm.ShmQueue.create`."""
        check_name(name)
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        if slot_size < 64 or slot_size % 8:
            raise ValueError(f"slot_size must be a multiple of 8 and >= 64, got {slot_size}")
        if policy not in L.POLICIES:
            raise ValueError(f"policy must be 'overwrite' or 'block', got {policy!r}")
        if not 1 <= max_consumers <= L.MAX_CONSUMERS_LIMIT:
            raise ValueError(f"max_consumers must be 1..{L.MAX_CONSUMERS_LIMIT}")
        if kinds is not None:
            kinds = sorted(set(kinds))
            for k in kinds:
                codec.layout_for(k)  # unknown kind: LayoutError naming it
        blob = _meta_blob(kinds, metadata)
        meta_off, meta_cap, data_off, size = L.geometry(
            capacity, slot_size, max_consumers, max(meta_capacity, len(blob))
        )
        fields = {
            "version": L.VERSION, "header_size": L.HEADER_DTYPE.itemsize,
            "capacity": capacity, "slot_size": slot_size, "policy": L.POLICIES[policy],
            "layout_hash": _layout_hash(kinds), "max_consumers": max_consumers,
            "producer_pid": os.getpid(), "producer_uid": os.getuid(),
            "meta_offset": meta_off, "meta_capacity": meta_cap, "data_offset": data_off,
            "created_ns": time.time_ns(), "heartbeat_ns": time.monotonic_ns(),
        }  # fmt: skip
        shm = _create_shm(name, size)
        self = cls.__new__(cls)
        self.name = name
        try:
            self._init_ring(shm, size, fields, blob, kinds)
        except BaseException:
            with contextlib.suppress(Exception):
                posix_ipc.unlink_shared_memory(shm_name(name))
                shm.close_fd()
            raise
        return self

    def _init_ring(self, shm, size: int, fields: dict, blob: bytes, kinds) -> None:
        self._map(shm, size)
        meta_off = fields["meta_offset"]
        with flocked(self._fd):
            hdr = self._view(np.ndarray, (1,), L.HEADER_DTYPE, 0)[0]
            for k, v in fields.items():
                hdr[k] = v
            self._mv[meta_off : meta_off + len(blob)] = blob
            hdr["meta_len"] = len(blob)
            hdr["magic"] = L.MAGIC  # last: attachers wait for it
            del hdr
            self._views.clear()
        self._geometry()
        self._init_producer(kinds)

    def _init_producer(self, kinds: list[int] | None) -> None:
        self._kinds = None if kinds is None else frozenset(kinds)
        self._seq = 0
        self._evno = 0
        self._limit = (1 << 62) if self._policy == L.POLICY_OVERWRITE else 0
        self._beat = _BEAT_EVERY
        self._nwords = (self._maxc + 7) // 8
        self._fq = _FLAGS // 8
        self._woken = [0] * self._nwords
        self._w0 = 0
        self._wake_fds: dict[int, tuple[int, int]] = {}  # index -> (generation, fd)
        self._enc: dict[type, tuple[int, Any, Any]] = {}
        self._scratch = bytearray(self._pcap)
        ss, data = self._ss, self._data
        self._stamps = self._view(np.ndarray, (self._cap,), "<u8", data, (ss,))
        self._evnos = self._view(np.ndarray, (self._cap,), "<u8", data + 8, (ss,))
        self._w16 = self._view(np.ndarray, (self._cap,), "<u8", data + 16, (ss,))
        self._w24 = self._view(np.ndarray, (self._cap,), "<u8", data + 24, (ss,))
        self._payload = self._view(np.ndarray, (self._cap, self._pcap), "u1", data + _HS, (ss, 1))
        self._arange = np.arange(min(self._cap, 1 << 16), dtype=np.uint64)

    # ------------------------------------------------------------------ encoding
    def _encoder(self, cls: type) -> tuple[int, Any, Any]:
        lay = codec.layout_for(cls)
        self._check_kind(lay.kind)
        enc = self._enc[cls] = (lay.kind, lay._pack_into, lay.size)
        return enc

    def _check_kind(self, kind: int) -> None:
        allowed = kind < codec.USER_KIND_MIN if self._kinds is None else kind in self._kinds
        if not allowed:
            raise codec.LayoutError(
                f"ring {self.name!r} was created for kinds "
                f"{'<' + str(codec.USER_KIND_MIN) if self._kinds is None else sorted(self._kinds)}"
                f"; event kind {kind} is not one of them (pass kinds= to create)"
            )

    # ------------------------------------------------------------------ hot path
    def put(self, event: Any, timeout: float | None = None) -> None:
        """Publish ``event``. ``overwrite`` never waits; ``block`` waits up to ``timeout``
        (None: forever) for the slowest live consumer, then raises QueueFull."""
        try:
            kind, pack, size = self._enc[event.__class__]
        except KeyError:
            kind, pack, size = self._encoder(event.__class__)
        n = size(event)
        seq = self._seq
        if n > self._pcap or seq >= self._limit:
            return self._put_slow(event, kind, pack, n, timeout)
        mv = self._mv
        off = self._data + (seq & self._mask) * self._ss
        evno = self._evno
        _SH_PACK(mv, off, (seq + 1) | _W, evno, kind, 0, 1, n)
        try:
            pack(mv, off + _HS, event)
        except Exception as e:
            raise self._encode_error(event, e) from e
        Q = self._Q
        Q[off >> 3] = seq + 1
        self._seq = seq + 1
        self._evno = evno + 1
        Q[_HEAD] = seq + 1
        if Q[self._fq] != self._w0 or self._nwords > 1:
            self._wake_sleepers()
        self._beat -= 1
        if not self._beat:
            self.heartbeat()

    async def aput(self, event: Any) -> None:
        """Publish without blocking the loop (``block`` rings poll for room every 1 ms)."""
        while True:
            try:
                return self.put(event, timeout=0)
            except QueueFull:
                await asyncio.sleep(0.001)

    def put_raw(self, kind: int, payload: bytes | memoryview, timeout: float | None = None):
        """Publish already-encoded ``payload`` bytes of ``kind`` (the replayer's path)."""
        self._check_kind(kind)
        data = memoryview(payload).cast("B")
        self._write_frags(kind, data, timeout)

    def put_many(self, events: Any, kind: int | None = None, timeout: float | None = None):
        """Publish a list of events, or a numpy array of encoded records of one ``kind``
        (a structured array whose itemsize is the record size, or 2-D ``uint8`` rows):
        the array path copies whole batches into the slots with numpy."""
        if isinstance(events, np.ndarray):
            if kind is None:
                raise TypeError("put_many(array) needs kind= (the event kind of the records)")
            return self._put_records(kind, events, timeout)
        put = self.put
        for ev in events:
            put(ev, timeout)

    def _encode_error(self, event: Any, e: Exception) -> Exception:
        if isinstance(e, codec.LayoutError):
            return e
        return codec.LayoutError(f"{type(event).__name__}: cannot encode {event!r}: {e}")

    # ------------------------------------------------------------------ slow paths
    def _put_slow(self, event, kind, pack, n, timeout):
        if self._closed:
            raise QueueClosed(f"put on closed ring {self.name!r}")
        if len(self._scratch) < n:
            self._scratch = bytearray(max(n, 2 * len(self._scratch)))
        buf = self._scratch
        try:
            pack(buf, 0, event)
        except Exception as e:
            raise self._encode_error(event, e) from e
        self._write_frags(kind, memoryview(buf)[:n], timeout)

    def _write_frags(self, kind: int, data: memoryview, timeout: float | None) -> None:
        if self._closed:
            raise QueueClosed(f"put on closed ring {self.name!r}")
        n = len(data)
        pcap = self._pcap
        nfrag = max(1, -(-n // pcap))
        if nfrag > self._cap or nfrag > L.MAX_FRAGMENTS:
            raise EventTooLarge(
                f"ring {self.name!r}: an event of kind {kind} and {n} bytes needs {nfrag} "
                f"slots of {pcap} payload bytes, the ring has {self._cap} "
                f"(max {L.MAX_FRAGMENTS} fragments); create it with a larger capacity or "
                "slot_size"
            )
        seq = self._seq
        if seq + nfrag > self._limit:
            self._reserve(nfrag, timeout)
        mv, Q, evno = self._mv, self._Q, self._evno
        offs = [self._slot_off(seq + k) for k in range(nfrag)]
        for k, off in enumerate(offs):
            _SH_PACK(mv, off, (seq + k + 1) | _W, evno, kind, k, nfrag, 0)
        for k, off in enumerate(offs):
            chunk = data[k * pcap : (k + 1) * pcap]
            mv[off + _HS : off + _HS + len(chunk)] = chunk
            _SH_PACK(mv, off, (seq + k + 1) | _W, evno, kind, k, nfrag, len(chunk))
        for k in range(nfrag - 1, -1, -1):  # last fragment first: see module docstring
            Q[offs[k] >> 3] = seq + k + 1
        self._seq = seq + nfrag
        self._evno = evno + 1
        Q[_HEAD] = seq + nfrag
        self._wake_sleepers()

    def _put_records(self, kind: int, arr: np.ndarray, timeout: float | None) -> None:
        if self._closed:
            raise QueueClosed(f"put on closed ring {self.name!r}")
        self._check_kind(kind)
        if arr.ndim == 2 and arr.dtype == np.uint8:
            rows = np.ascontiguousarray(arr)
        elif arr.ndim == 1:
            rows = np.ascontiguousarray(arr).view(np.uint8).reshape(len(arr), arr.dtype.itemsize)
        else:
            raise TypeError(
                f"put_many(array): expected a 1-D structured array or 2-D uint8 rows, got "
                f"shape {arr.shape} dtype {arr.dtype}"
            )
        n, size = rows.shape
        if size > self._pcap:  # records that need fragments go one by one
            for row in rows:
                self._write_frags(kind, memoryview(row), timeout)
            return
        w16 = np.uint64(kind | (1 << 32))  # kind, fidx 0, fcnt 1
        done = 0
        ar = self._arange
        Q = self._Q
        while done < n:
            seq = self._seq
            if seq >= self._limit:
                self._reserve(1, timeout)
            i0 = seq & self._mask
            m = min(n - done, self._cap - i0, len(ar), self._limit - seq)
            j = slice(i0, i0 + m)
            st = self._stamps[j]
            np.add(ar[:m], np.uint64((seq + 1) | _W), out=st)
            self._w16[j] = w16
            self._w24[j] = size
            np.add(ar[:m], np.uint64(self._evno), out=self._evnos[j])
            self._payload[j, :size] = rows[done : done + m]
            np.add(ar[:m], np.uint64(seq + 1), out=st)
            self._seq = seq + m
            self._evno += m
            done += m
            Q[_HEAD] = seq + m
        self._wake_sleepers()
        self.heartbeat()

    # ------------------------------------------------------------------ block policy
    def _compute_limit(self, nslots: int = 1) -> int:
        """Highest sequence (exclusive) writable without overtaking a live consumer."""
        minc = None
        for i in range(self._maxc):
            _, state, cursor, _ = self._entry(i)
            if state == L.STATE_ACTIVE and (minc is None or cursor < minc):
                minc = cursor
        if minc is None:
            # Nobody to wait for. Keep half a ring of slack so that a consumer attaching
            # now at "latest" or "oldest" (RingReader._start_position) stays covered.
            return self._seq + max(self._cap // 2, nslots)
        return minc + self._cap

    def _reserve(self, nslots: int, timeout: float | None) -> None:
        need = self._seq + nslots
        self._limit = self._compute_limit(nslots)
        if need <= self._limit:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        next_reap = 0.0
        pause = 0.0
        while True:
            now = time.monotonic()
            if now >= next_reap:
                self.reap()
                next_reap = now + 0.02
                self._limit = self._compute_limit(nslots)
                if need <= self._limit:
                    return
            if deadline is not None and now >= deadline:
                slow = min(
                    (c for c in self.consumers()), key=lambda c: c["cursor"], default=None
                )
                raise QueueFull(
                    f"ring {self.name!r} (block): no room for {nslots} slot(s) within "
                    f"{timeout}s; slowest consumer pid {slow and slow['pid']} is "
                    f"{slow and self._seq - slow['cursor']} slots behind"
                )
            self._wake_sleepers(force=True)
            if pause:
                time.sleep(pause)
            pause = min(pause * 2 or 2e-5, 1e-3)
            self._limit = self._compute_limit(nslots)
            if need <= self._limit:
                return

    def reap(self) -> list[int]:
        """Free the table entries of consumers whose process died; return their pids."""
        dead = []
        with flocked(self._fd):
            for i in range(self._maxc):
                pid, state, _, gen = self._entry(i)
                if state == L.STATE_ACTIVE and not pid_alive(pid):
                    self._set_u32(L.consumer_offset(i) + _C_STATE, L.STATE_FREE)
                    self._mv[_FLAGS + i] = 0
                    dead.append(pid)
                    self._drop_wake_fd(i)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(fifo_path(self.name, i))
                    log.warning(
                        "ring %s: reaped consumer %d (pid %d died without detaching)",
                        self.name, i, pid,
                    )  # fmt: skip
        return dead

    # ------------------------------------------------------------------ wakeups
    def _wake_sleepers(self, force: bool = False) -> None:
        """Write one byte to the FIFO of each consumer that flagged itself asleep since
        its last wakeup (the flag byte is a token that changes on every sleep)."""
        Q = self._Q
        for w in range(self._nwords):
            cur = Q[self._fq + w]
            old = self._woken[w]
            if cur == old and not force:
                continue
            self._woken[w] = cur
            for b in range(8):
                tok = (cur >> (8 * b)) & 0xFF
                if tok and (force or tok != (old >> (8 * b)) & 0xFF):
                    self._poke(w * 8 + b)
        self._w0 = self._woken[0]

    def _poke(self, i: int) -> None:
        gen = self._entry(i)[3]
        cached = self._wake_fds.get(i)
        if cached is None or cached[0] != gen:
            self._drop_wake_fd(i)
            try:
                fd = os.open(fifo_path(self.name, i), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # consumer gone (ENOENT) or not reading (ENXIO)
                return
            self._wake_fds[i] = (gen, fd)
        else:
            fd = cached[1]
        try:
            os.write(fd, b"\1")
        except BlockingIOError:
            pass  # FIFO full: the consumer has plenty of wakeups pending
        except OSError:
            self._drop_wake_fd(i)

    def _drop_wake_fd(self, i: int) -> None:
        cached = self._wake_fds.pop(i, None)
        if cached is not None:
            with contextlib.suppress(OSError):
                os.close(cached[1])

    # ------------------------------------------------------------------ misc
    def heartbeat(self) -> None:
        """Store the time (CLOCK_MONOTONIC ns); called every 1024 puts, or by a timer."""
        self._beat = _BEAT_EVERY
        self._Q[_BEAT] = time.monotonic_ns()

    @property
    def head(self) -> int:
        """Next sequence to be written (slots published so far)."""
        return self._seq

    @property
    def events_published(self) -> int:
        return self._evno

    def set_metadata(self, metadata: Any) -> None:
        """Replace the metadata blob (readers see the old or the new one, never a mix)."""
        kinds = self._read_meta()["kinds"]
        blob = _meta_blob(kinds, metadata)
        if len(blob) > self._meta_cap:
            raise EventTooLarge(
                f"ring {self.name!r}: metadata of {len(blob)} bytes exceeds its "
                f"meta_capacity {self._meta_cap}"
            )
        Q = self._Q
        s = Q[_META_SEQ]
        Q[_META_SEQ] = s + 1
        self._mv[self._meta_off : self._meta_off + len(blob)] = blob
        Q[_META_LEN] = len(blob)
        Q[_META_SEQ] = s + 2

    def close(self) -> None:
        """Mark the ring closed (consumers drain it, then get QueueClosed) and unmap."""
        if self._closed:
            return
        self._Q[_CLOSED] = 1
        self.heartbeat()
        with contextlib.suppress(Exception):
            for i in range(self._maxc):
                if self._entry(i)[1] == L.STATE_ACTIVE:
                    self._poke(i)
        for i in list(self._wake_fds):
            self._drop_wake_fd(i)
        self._unmap()

    def unlink(self) -> None:
        """Remove the ring and its FIFOs from /dev/shm (mapped consumers keep working)."""
        remove_ring_objects(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create_shm(name: str, size: int) -> posix_ipc.SharedMemory:
    for _ in range(2):
        try:
            return posix_ipc.SharedMemory(
                shm_name(name), flags=posix_ipc.O_CREX, mode=0o600, size=size
            )
        except posix_ipc.ExistentialError:
            _clean_stale(name)
    raise RingExists(f"ring {name!r} keeps reappearing while being created; another producer?")


def _clean_stale(name: str) -> None:
    """Remove an existing ring ``name`` if its producer is dead or closed it; else refuse."""
    path = shm_path(name)
    owner = read_owner(path)
    if owner is None:
        # No valid header: either a creator is initializing it right now (it holds the
        # flock) or one crashed before finishing (nobody holds it).
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        except PermissionError:
            raise RingPermissionError(
                f"ring {name!r} ({path}) exists and belongs to another user"
            ) from None
        try:
            import fcntl

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise RingExists(f"ring {name!r} is being created by another process") from None
                raise
            removed = remove_ring_objects(name)
            log.warning("removed unfinished ring %r (no valid header): %s", name, removed)
        finally:
            os.close(fd)
        return
    pid, closed = owner
    if pid_alive(pid) and not closed:
        raise RingExists(
            f"ring {name!r} ({path}) exists and its producer pid {pid} is alive: stop that "
            "process or choose another name"
        )
    removed = remove_ring_objects(name)
    log.warning(
        "removed stale ring %r of %s producer pid %d: %s",
        name, "closed" if closed else "dead", pid, removed,
    )  # fmt: skip


# ============================================================================ consumer


class RingReader(_Mapped):
    """One consuming end of a ring, with its own cursor (see ``ShmQueue.attach``)."""

    @classmethod
    def attach(
        cls,
        name: str,
        start: str = "latest",
        *,
        spin_us: float = 50.0,
        busy: bool = False,
        wake_timeout: float = 0.1,
    ):
        check_name(name)
        if start not in ("latest", "oldest"):
            raise ValueError(f"start must be 'latest' or 'oldest', got {start!r}")
        shm = _open_existing(name)
        self = cls.__new__(cls)
        self.name = name
        try:
            self._validate_and_map(shm)
            self._geometry()
            self._init_consumer(spin_us, busy, wake_timeout)
            self._register(start)
        except BaseException:
            self._unmap_quiet()
            raise
        return self

    def _unmap_quiet(self) -> None:
        if not self._closed:
            self._unmap()
        else:
            with contextlib.suppress(Exception):
                self._shm.close_fd()

    def _validate_and_map(self, shm: posix_ipc.SharedMemory) -> None:
        name = self.name
        deadline = time.monotonic() + 1.0
        while True:  # a producer may be initializing it: magic is written last
            size = os.fstat(shm.fd).st_size
            head = os.pread(shm.fd, L.HEADER_DTYPE.itemsize, 0)
            if len(head) == L.HEADER_DTYPE.itemsize and head[:8] != bytes(8):
                break
            if time.monotonic() > deadline:
                shm.close_fd()
                raise RingLayoutError(f"ring {name!r} has no header (creator crashed?)")
            time.sleep(0.005)
        hdr = np.frombuffer(head, L.HEADER_DTYPE, 1)[0]
        problems = []
        if int(hdr["magic"]) != L.MAGIC:
            problems.append(f"magic {head[:8]!r} is not {L.MAGIC.to_bytes(8, 'little')!r}")
        elif int(hdr["version"]) != L.VERSION:
            problems.append(f"layout version {int(hdr['version'])}, this code reads {L.VERSION}")
        elif int(hdr["header_size"]) != L.HEADER_DTYPE.itemsize:
            problems.append(f"header size {int(hdr['header_size'])}")
        if problems:
            shm.close_fd()
            raise RingLayoutError(f"ring {name!r} is not a ttxt-mp ring this code can read: "
                                  + "; ".join(problems))  # fmt: skip
        if int(hdr["data_offset"]) + int(hdr["capacity"]) * int(hdr["slot_size"]) > size:
            shm.close_fd()
            raise RingLayoutError(f"ring {name!r} is smaller than its header says (truncated)")
        self._map(shm, size)
        self._meta_off = int(hdr["meta_offset"])
        self._meta_cap = int(hdr["meta_capacity"])
        self._meta_cache = (-1, None)
        self._closed = False
        kinds = self._read_meta()["kinds"]
        try:
            local = _layout_hash(kinds)
        except codec.LayoutError as e:
            raise RingLayoutError(f"ring {name!r} carries event kinds {kinds}: {e}") from None
        ring_hash = bytes(hdr["layout_hash"]).ljust(8, b"\0")
        if local != ring_hash:
            raise RingLayoutError(
                f"ring {name!r} was written with event layout hash {ring_hash.hex()}, this "
                f"process computes {local.hex()} for kinds "
                f"{'(library)' if kinds is None else kinds}: producer and consumer run "
                "different ttxt_mp versions or registered different custom events"
            )

    def _init_consumer(self, spin_us: float, busy: bool, wake_timeout: float) -> None:
        self._dec = _Decoders()
        self._spin = spin_us / 1e6
        self._busy = busy
        self._wake_timeout = wake_timeout
        self._tok = 0
        self._fifo_fd = -1
        self._scratch = bytearray(self._pcap * 4)
        self.lost = 0
        """Events lost to lapping so far (overwrite rings), also in GapNotice events."""
        self._index = -1

    def _register(self, start: str) -> None:
        with flocked(self._fd):
            self._reap_dead_entries()
            free = [i for i in range(self._maxc) if self._entry(i)[1] != L.STATE_ACTIVE]
            if not free:
                pids = [self._entry(i)[0] for i in range(self._maxc)]
                raise RingError(
                    f"ring {self.name!r}: all {self._maxc} consumer entries are taken "
                    f"(pids {pids}); create it with a larger max_consumers"
                )
            i = free[0]
            self._index = i
            path = fifo_path(self.name, i)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.mkfifo(path, 0o600)
            # O_RDWR: the FIFO never reports EOF when the producer closes its end.
            self._fifo_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            self._poller = select.poll()
            self._poller.register(self._fifo_fd, select.POLLIN)
            o = L.consumer_offset(i)
            self._ci = (o + _C_CURSOR) >> 3
            self._flag = _FLAGS + i
            self._mv[self._flag] = 0
            seq, evno = self._start_position(start)
            self._seq, self._evno = seq, evno
            Q = self._Q
            Q[self._ci] = seq
            self._gen = Q[(o + _C_GEN) >> 3] + 1
            Q[(o + _C_GEN) >> 3] = self._gen
            Q[(o + _C_LOST) >> 3] = 0
            Q[(o + _C_ATT) >> 3] = time.time_ns()
            self._set_u32(o + _C_PID, os.getpid())
            self._set_u32(o + _C_STATE, L.STATE_ACTIVE)

    def _reap_dead_entries(self) -> None:
        for i in range(self._maxc):
            pid, state, _, _ = self._entry(i)
            if state == L.STATE_ACTIVE and not pid_alive(pid):
                self._set_u32(L.consumer_offset(i) + _C_STATE, L.STATE_FREE)
                self._mv[_FLAGS + i] = 0
                log.warning("ring %s: freed entry %d of dead consumer pid %d", self.name, i, pid)

    def _start_position(self, start: str) -> tuple[int, int]:
        """(sequence, expected event number) to start at; see ShmQueue.attach."""
        while True:
            head = self._Q[_HEAD]
            if start == "latest" or head == 0:
                seq = head
            else:
                seq = max(0, head - self._cap)
                if self._policy == L.POLICY_BLOCK:
                    # Only positions the producer is already gating on are safe (see
                    # RingWriter._compute_limit): the slowest consumer, or half a ring.
                    cur = [c for _, s, c, _ in map(self._entry, range(self._maxc)) if s == 1]
                    seq = max(seq, min(cur) if cur else head - self._cap // 2)
                seq = self._locate(seq)
            evno = self._evno_before(seq)
            if evno is not None:
                return seq, evno

    def _evno_before(self, seq: int) -> int | None:
        """Event number of the event starting at ``seq`` (from the slot before it)."""
        if seq == 0:
            return 0
        off = self._slot_off(seq - 1)
        st, evno, _, _, _, _ = _SH_UNPACK(self._mv, off)
        if st == seq and self._Q[off >> 3] == st:
            return evno + 1
        st, evno, _, fidx, _, _ = _SH_UNPACK(self._mv, self._slot_off(seq))
        if st == seq + 1 and fidx == 0 and self._Q[self._slot_off(seq) >> 3] == st:
            return evno
        return None  # raced with the producer: recompute

    def _locate(self, cand: int) -> int:
        """First sequence >= ``cand`` that starts a complete event, or that is not written
        yet (the consumer waits there). Used at attach ("oldest") and after a lap."""
        mv, Q, cap = self._mv, self._Q, self._cap
        while True:
            off = self._slot_off(cand)
            st, _, _, fidx, fcnt, _ = _SH_UNPACK(mv, off)
            if Q[off >> 3] != st:
                continue
            written = (st & _UNW) - 1
            if written > cand:  # overwritten meanwhile
                cand = max(cand + 1, written - cap + 1)
            elif st != cand + 1:  # not written yet (or being written)
                return cand
            elif fidx:  # the tail of an event whose head is gone
                cand += fcnt - fidx
            else:
                return cand

    # ------------------------------------------------------------------ hot path
    def _poll(self) -> Any:
        """The next event, or None if nothing is ready."""
        seq = self._seq
        mv = self._mv
        off = self._data + (seq & self._mask) * self._ss
        st, evno, kind, _, fcnt, _ = _SH_UNPACK(mv, off)
        if st != seq + 1 or fcnt != 1 or evno != self._evno:
            return self._slow(False)
        try:
            ev = self._dec[kind](mv, off + _HS)[0]
        except Exception:
            if self._Q[off >> 3] == seq + 1:
                raise  # the slot is intact: a genuine decoding error
            return self._slow(False)  # torn by a lap
        if self._Q[off >> 3] != seq + 1:
            return self._slow(False)
        self._seq = seq + 1
        self._evno = evno + 1
        self._Q[self._ci] = seq + 1
        return ev

    def _slow(self, raw: bool) -> Any:
        """Everything off the fast path: not ready, laps, gaps, fragments, raw reads."""
        if self._closed:
            raise QueueClosed(f"consumer of ring {self.name!r} was closed")
        mv, Q = self._mv, self._Q
        while True:
            seq = self._seq
            off = self._slot_off(seq)
            st, evno, kind, fidx, fcnt, plen = _SH_UNPACK(mv, off)
            if st != seq + 1:
                written = (st & _UNW) - 1
                if written > seq:
                    self._seq = self._locate(max(seq + 1, written - self._cap + 1))
                    continue
                return None
            if Q[off >> 3] != st:  # header read raced with an overwrite
                continue
            if fidx:
                self._seq = seq + fcnt - fidx
                continue
            if evno != self._evno:
                lost = evno - self._evno
                if lost < 0:
                    raise RingError(
                        f"ring {self.name!r}: event number went back from {self._evno} to "
                        f"{evno} at sequence {seq} (ring recreated under a live consumer?)"
                    )
                self._evno = evno
                return self._gap(lost, raw)
            if fcnt == 1:
                got = self._read_single(seq, off, kind, plen, raw)
            else:
                got = self._read_multi(seq, off, kind, fcnt, raw)
            if got is not _RETRY:
                return got

    def _gap(self, lost: int, raw: bool) -> Any:
        self.lost += lost
        self._Q[(L.consumer_offset(self._index) + _C_LOST) >> 3] = self.lost
        ev = GapNotice(exchange="", lost=lost, local_ts=time.time_ns())
        return (_GAP_KIND, codec.layout_for(_GAP_KIND).encode(ev)) if raw else ev

    def _read_single(self, seq: int, off: int, kind: int, plen: int, raw: bool) -> Any:
        mv = self._mv
        if plen > self._pcap:
            plen = 0  # torn header; the stamp check below rejects it
        try:
            got = (kind, bytes(mv[off + _HS : off + _HS + plen])) if raw else (
                self._dec[kind](mv, off + _HS)[0]
            )
        except Exception:
            if self._Q[off >> 3] == seq + 1:
                raise
            return _RETRY
        if self._Q[off >> 3] != seq + 1:
            return _RETRY
        self._advance(seq + 1)
        return got

    def _read_multi(self, seq: int, off0: int, kind: int, fcnt: int, raw: bool) -> Any:
        mv, pcap = self._mv, self._pcap
        last = self._slot_off(seq + fcnt - 1)
        total = (fcnt - 1) * pcap + _SH_UNPACK(mv, last)[5]
        if total > fcnt * pcap:
            total = 0  # torn header; the stamp check below rejects it
        if len(self._scratch) < total:
            self._scratch = bytearray(max(total, 2 * len(self._scratch)))
        buf = self._scratch
        p = 0
        for k in range(fcnt):
            o = self._slot_off(seq + k) + _HS
            n = min(pcap, total - p)
            buf[p : p + n] = mv[o : o + n]
            p += n
        if self._Q[off0 >> 3] != seq + 1:
            return _RETRY
        view = memoryview(buf)[:total]
        got = (kind, bytes(view)) if raw else self._dec[kind](view, 0)[0]
        self._advance(seq + fcnt)
        return got

    def _advance(self, seq: int) -> None:
        self._seq = seq
        self._evno += 1
        self._Q[self._ci] = seq

    # ------------------------------------------------------------------ batches
    def _ready_batch(self, max_n: int) -> np.ndarray | None:
        Q = self._Q
        while True:
            seq = self._seq
            head = Q[_HEAD]
            if head <= seq:
                return None
            off = self._slot_off(seq)
            st = Q[off >> 3]
            if st != seq + 1:
                written = (st & _UNW) - 1
                if written > seq:
                    self._seq = self._locate(max(seq + 1, written - self._cap + 1))
                    continue
                return None
            i0 = seq & self._mask
            n = max(1, min(max_n, head - seq, self._cap - i0))
            out = self._slots[i0 : i0 + n].copy()
            if Q[off >> 3] != seq + 1:
                continue  # lapped while copying
            if out["fidx"][0]:  # cursor inside an event (after mixing APIs): skip its tail
                self._seq = seq + int(out["fcnt"][0] - out["fidx"][0])
                continue
            fidx, fcnt = int(out["fidx"][n - 1]), int(out["fcnt"][n - 1])
            if fidx + 1 != fcnt:  # do not split the last event
                keep = n - fidx - 1
                if keep == 0:  # one event longer than max_n or wrapping the ring end
                    idx = (np.arange(fcnt, dtype=np.uint64) + np.uint64(seq)) & np.uint64(
                        self._mask
                    )
                    out = self._slots[idx]
                    if Q[off >> 3] != seq + 1:
                        continue
                    n = fcnt
                else:
                    out = out[:keep]
                    n = keep
            first = int(out["evno"][0])
            if first != self._evno:
                lost = first - self._evno
                self.lost += lost
                self._Q[(L.consumer_offset(self._index) + _C_LOST) >> 3] = self.lost
            self._evno = int(out["evno"][n - 1]) + 1
            self._seq = seq + n
            Q[self._ci] = seq + n
            return out

    # ------------------------------------------------------------------ waiting
    def _check_end(self, fetch) -> Any:
        """Called when nothing is ready: QueueClosed / ProducerDied once drained."""
        if self._closed:
            raise QueueClosed(f"consumer of ring {self.name!r} was closed")
        if self._Q[_CLOSED]:
            got = fetch()
            if got is not None:
                return got
            raise QueueClosed(f"ring {self.name!r} was closed by its producer and is drained")
        return None

    def _check_producer(self, fetch) -> Any:
        if not pid_alive(self.producer_pid):
            got = fetch()
            if got is not None or self._Q[_CLOSED]:
                return got if got is not None else self._check_end(fetch)
            raise ProducerDied(
                f"producer pid {self.producer_pid} of ring {self.name!r} died without "
                "closing it; everything it published was delivered"
            )
        return None

    def _wait(self, timeout: float | None, fetch) -> Any:
        got = self._check_end(fetch)
        if got is not None:
            return got
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        spin_end = now + (1e9 if self._busy else self._spin)
        if deadline is not None:
            spin_end = min(spin_end, deadline)
        clock = time.monotonic
        k = 0
        while True:  # spin
            got = fetch()
            if got is not None:
                return got
            k += 1
            if not k & 63:
                if clock() >= spin_end:
                    break
                if not k & 0xFFFF:
                    got = self._check_end(fetch)
                    if got is None:
                        got = self._check_producer(fetch)
                    if got is not None:
                        return got
        try:
            got = self._announce_sleep(fetch)
            while got is None:
                got = self._check_end(fetch)
                if got is not None:
                    break
                t = self._wake_timeout
                if deadline is not None:
                    left = deadline - clock()
                    if left <= 0:
                        raise QueueEmpty
                    t = min(t, left)
                if self._poller.poll(t * 1000):
                    self._drain_fifo()
                    got = self._announce_sleep(fetch)  # new token: the next put wakes us
                else:
                    got = self._check_producer(fetch)
                    if got is None:
                        got = fetch()
            return got
        finally:
            self._mv[self._flag] = 0

    def _announce_sleep(self, fetch) -> Any:
        """Flag this consumer asleep with a new token, then keep looking for ``_SETTLE``
        seconds before the caller blocks (module docstring: the store-load race)."""
        self._tok = self._tok % 255 + 1
        self._mv[self._flag] = self._tok
        _FENCE.acquire()  # a locked instruction: our flag store is now globally visible
        _FENCE.release()
        clock = time.monotonic
        end = clock() + _SETTLE
        while True:
            got = fetch()
            if got is not None or clock() >= end:
                return got

    def _drain_fifo(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fifo_fd, 4096)

    async def _await(self, fetch) -> Any:
        got = fetch()
        if got is not None:
            return got
        got = self._check_end(fetch)
        if got is not None:
            return got
        loop = asyncio.get_running_loop()
        spin_end = time.monotonic() + self._spin
        while time.monotonic() < spin_end:
            got = fetch()
            if got is not None:
                return got
        try:
            got = self._announce_sleep(fetch)
            while got is None:
                got = self._check_end(fetch)
                if got is not None:
                    break
                fut = loop.create_future()
                loop.add_reader(self._fifo_fd, _resolve, fut, True)
                timer = loop.call_later(self._wake_timeout, _resolve, fut, False)
                try:
                    woken = await fut
                finally:
                    loop.remove_reader(self._fifo_fd)
                    timer.cancel()
                if woken:
                    self._drain_fifo()
                    got = self._announce_sleep(fetch)
                else:
                    got = self._check_producer(fetch)
                    if got is None:
                        got = fetch()
            return got
        finally:
            self._mv[self._flag] = 0

    # ------------------------------------------------------------------ public
    def get_nowait(self) -> Any:
        ev = self._poll()
        if ev is None:
            ev = self._check_end(self._poll)
            if ev is None:
                raise QueueEmpty
        return ev

    def get(self, timeout: float | None = None) -> Any:
        ev = self._poll()
        if ev is None:
            return self._wait(timeout, self._poll)
        return ev

    async def aget(self) -> Any:
        ev = self._poll()
        if ev is None:
            return await self._await(self._poll)
        return ev

    def get_raw(self, timeout: float | None = None) -> tuple[int, bytes]:
        """(kind, encoded payload) of the next event, exactly as the producer wrote it;
        a lap yields (GapNotice's kind, an encoded GapNotice)."""
        fetch = self._fetch_raw
        got = fetch()
        return got if got is not None else self._wait(timeout, fetch)

    def _fetch_raw(self) -> Any:
        return self._slow(True)

    def get_batch(self, max_n: int = 1024, timeout: float | None = 0) -> np.ndarray:
        """Up to ``max_n`` slot records (a copy), see ``ShmQueue.attach``."""
        if max_n < 1:
            raise ValueError("max_n must be >= 1")

        def fetch():
            return self._ready_batch(max_n)

        got = fetch()
        if got is not None:
            return got
        if timeout is not None and timeout <= 0:
            got = self._check_end(fetch)
            return got if got is not None else self._slots[:0].copy()
        try:
            return self._wait(timeout, fetch)
        except QueueEmpty:
            return self._slots[:0].copy()

    def __iter__(self):
        get = self.get
        try:
            while True:
                yield get()
        except QueueClosed:
            return

    @property
    def lag(self) -> int:
        """Slots published but not yet read by this consumer."""
        return max(0, self._Q[_HEAD] - self._seq)

    @property
    def cursor(self) -> int:
        return self._seq

    @property
    def producer_alive(self) -> bool:
        return pid_alive(self.producer_pid) and not self._Q[_CLOSED]

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the producer's last heartbeat."""
        return (time.monotonic_ns() - self._Q[_BEAT]) / 1e9

    def close(self) -> None:
        """Detach (free the consumer entry, remove its FIFO) and unmap."""
        if self._closed:
            return
        if self._index >= 0:
            with contextlib.suppress(Exception), flocked(self._fd):
                o = L.consumer_offset(self._index)
                pid, state, _, gen = self._entry(self._index)
                if state == L.STATE_ACTIVE and gen == self._gen and pid == os.getpid():
                    self._set_u32(o + _C_STATE, L.STATE_FREE)
                    self._mv[self._flag] = 0
        if self._fifo_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fifo_fd)
            with contextlib.suppress(OSError):
                os.unlink(fifo_path(self.name, self._index))
            self._fifo_fd = -1
        self._unmap()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(fut: asyncio.Future, value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
