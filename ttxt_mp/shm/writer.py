"""The producing end of a ring: hot-path put, fragments, numpy batches, block policy,
wakeups of sleeping consumers, stale-ring cleanup. See ring.py for the memory ordering."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from typing import Any

import numpy as np
import posix_ipc

from ttxt_mp import codec
from ttxt_mp.queues import QueueClosed, QueueFull
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.errors import (
    EventTooLarge,
    RingExists,
    RingLayoutError,
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
from ttxt_mp.shm.ring import (
    _BEAT,
    _BEAT_EVERY,
    _C_STATE,
    _CLOSED,
    _FENCE,
    _FLAGS,
    _FLOOR,
    _HEAD,
    _HS,
    _META_LEN,
    _META_SEQ,
    _SH_PACK,
    _SH_UNPACK,
    _W,
    _layout_hash,
    _Mapped,
    _meta_blob,
    _open_existing,
    log,
)


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
        keeper_pid: int = 0,
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
            "keeper_pid": keeper_pid,
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

    @classmethod
    def adopt(cls, name: str):
        """Become the producer of existing ring ``name`` whose producer released it
        (:meth:`release`) or died. Sequences and event numbers continue where they
        stopped and consumers keep their cursors, so a restarted producer process is
        invisible to them. A slot the dead producer left half-written (stamped WRITING,
        never published) is simply written again."""
        check_name(name)
        shm = _open_existing(name)
        self = cls.__new__(cls)
        self.name = name
        self._map(shm, os.fstat(shm.fd).st_size)
        try:
            with flocked(self._fd):
                hdr = self._view(np.ndarray, (1,), L.HEADER_DTYPE, 0)[0]
                if int(hdr["magic"]) != L.MAGIC or int(hdr["version"]) != L.VERSION:
                    raise RingLayoutError(
                        f"ring {name!r} is not a version {L.VERSION} ttxt-mp ring"
                    )
                pid = int(hdr["producer_pid"])
                if pid and pid != os.getpid() and pid_alive(pid):
                    raise RingExists(
                        f"ring {name!r}: its producer pid {pid} is alive and did not release it"
                    )
                hdr["producer_pid"] = os.getpid()
                del hdr
                self._views.clear()
            self._geometry()
            kinds = self._read_meta()["kinds"]
            if bytes(self._mv[L.OFF["layout_hash"] : L.OFF["layout_hash"] + 8]) != _layout_hash(kinds):
                raise RingLayoutError(
                    f"ring {name!r} was created with other event layouts than this code's"
                )
            self._init_producer(kinds)
            head = self._Q[_HEAD]
            self._seq = head
            if head:
                self._evno = _SH_UNPACK(self._mv, self._slot_off(head - 1))[1] + 1
            self._Q[_CLOSED] = 0
            self.heartbeat()
        except BaseException:
            with contextlib.suppress(Exception):
                self._unmap()
            raise
        return self

    def release(self) -> None:
        """Give up the producing end without closing the ring, so another process can
        :meth:`adopt` it; consumers just see no events meanwhile."""
        if self._closed:
            return
        with flocked(self._fd):
            self._mv[L.OFF["producer_pid"] : L.OFF["producer_pid"] + 4] = bytes(4)
        self.heartbeat()
        for i in list(self._wake_fds):
            self._drop_wake_fd(i)
        self._unmap()

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
        self._raw_kinds: set[int] = set()
        self._scratch = bytearray(self._pcap)
        ss, data = self._ss, self._data
        self._stamps = self._view(np.ndarray, (self._cap,), "<u8", data, (ss,))
        self._evnos = self._view(np.ndarray, (self._cap,), "<u8", data + 8, (ss,))
        self._w16 = self._view(np.ndarray, (self._cap,), "<u8", data + 16, (ss,))
        self._w24 = self._view(np.ndarray, (self._cap,), "<u8", data + 24, (ss,))
        self._payload_views: dict[int, np.ndarray] = {}  # record size -> V<size> slot view
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
        if kind not in self._raw_kinds:
            self._check_kind(kind)
            self._raw_kinds.add(kind)
        n = len(payload)
        seq = self._seq
        if n > self._pcap or seq >= self._limit or not isinstance(payload, bytes):
            return self._write_frags(kind, memoryview(payload).cast("B"), timeout)
        mv = self._mv
        off = self._data + (seq & self._mask) * self._ss
        _SH_PACK(mv, off, (seq + 1) | _W, self._evno, kind, 0, 1, n)
        mv[off + _HS : off + _HS + n] = payload
        self._commit(seq, off, 1)

    def _commit(self, seq: int, off: int, nslots: int) -> None:
        """Publish an event whose slots are written: stamp, head, wakeups, heartbeat.
        (``put`` inlines the same steps: it is the per-event hot path.)"""
        Q = self._Q
        Q[off >> 3] = seq + 1
        self._seq = seq + nslots
        self._evno += 1
        Q[_HEAD] = seq + nslots
        if Q[self._fq] != self._w0 or self._nwords > 1:
            self._wake_sleepers()
        self._beat -= 1
        if not self._beat:
            self.heartbeat()

    def put_many(self, events: Any, kind: int | None = None, timeout: float | None = None):
        """Publish a list of events, or a numpy array of encoded records of one ``kind``
        (a structured array whose itemsize is the record size, or 2-D ``uint8`` rows):
        the array path copies whole batches into the slots with numpy. On a ``block``
        ring a QueueFull after ``timeout`` means a prefix was published
        (``events_published`` tells how many)."""
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
        vt = np.dtype(f"V{size}")  # one memcpy per record, not a byte loop
        recs = rows.view(vt)[:, 0]
        pay = self._payload_views.get(size)
        if pay is None:
            pay = self._payload_views[size] = self._view(
                np.ndarray, (self._cap,), vt, self._data + _HS, (self._ss,)
            )
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
            pay[j] = recs[done : done + m]
            np.add(ar[:m], np.uint64(seq + 1), out=st)
            self._seq = seq + m
            self._evno += m
            done += m
            Q[_HEAD] = seq + m
        self._wake_sleepers()
        self.heartbeat()

    # ------------------------------------------------------------------ block policy
    def _compute_limit(self, nslots: int = 1) -> int:
        """Highest sequence (exclusive) writable without overtaking a live consumer.

        Attach protocol (Dekker, a fence on each side): the producer stores ``floor``
        (= limit - capacity, the oldest sequence it promises to keep), fences, and scans
        the consumer table again; a consumer stores its entry, fences, and re-reads
        ``floor``, moving its start up if needed. At least one of them sees the other,
        so a consumer never starts below what the producer may overwrite.
        """
        limit = self._scan_limit(nslots)
        self._Q[_FLOOR] = max(0, limit - self._cap)
        _FENCE.acquire()
        _FENCE.release()
        return min(limit, self._scan_limit(nslots))

    def _scan_limit(self, nslots: int) -> int:
        minc = None
        for i in range(self._maxc):
            _, state, cursor, _ = self._entry(i)
            if state == L.STATE_ACTIVE and (minc is None or cursor < minc):
                minc = cursor
        if minc is None:
            # Nobody to wait for; keep half a ring for a consumer attaching at "oldest".
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
    def floor(self) -> int:
        """Block rings: the oldest sequence held for consumers (where "oldest" starts)."""
        return self._Q[_FLOOR]

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


