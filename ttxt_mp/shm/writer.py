"""The producing end of a ring: hot-path put, fragments, numpy batches, block policy,
wakeups of sleeping consumers, stale-ring cleanup. See ring.py for the memory ordering.

Creation checks sizes first (``limits.py``: nothing is created for a ring too large for
the limit or for the free shared memory), then allocates every page with
``posix_fallocate`` under the ring's flock, so running out of memory is an error at
creation, never a SIGBUS later. A leftover object of the same name is removed only if it
is this uid's and its producer and keeper are dead; another user's is refused, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import stat
import time
from typing import Any

import numpy as np
import posix_ipc

from ttxt_mp import codec, trust
from ttxt_mp.queues import QueueClosed, QueueFull
from ttxt_mp.shm import cring, limits
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.errors import (
    EventTooLarge,
    RingExists,
    RingForeign,
    RingLayoutError,
    RingPermissionError,
    RingTooLarge,
)
from ttxt_mp.shm.objects import (
    check_name,
    create_object,
    discard,
    fifo_path,
    flocked,
    owner_note,
    pid_alive,
    read_pids,
    remove_ring_objects,
    shm_name,
    shm_path,
    unlink_own,
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
    check_header_owner,
    log,
)


def _check_int(what: str, value: Any, lo: int, hi: int, rule: str = "an integer") -> int:
    """One-line ValueError (never an OverflowError later) for an out-of-range parameter."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{what} must be {rule} from {lo} to {hi}, got {value!r}")
    return value


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
        instance_id: int = 0,
        group: int | None = None,
    ):
        """Create ring ``name``; see :meth:`ttxt_mp.shm.ShmQueue.create`."""
        check_name(name)
        _check_int("capacity", capacity, 2, limits.MAX_CAPACITY, "a power of two")
        if capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        _check_int("slot_size", slot_size, 64, limits.MAX_SLOT_SIZE, "a multiple of 8")
        if slot_size % 8:
            raise ValueError(f"slot_size must be a multiple of 8, got {slot_size}")
        if policy not in L.POLICIES:
            raise ValueError(f"policy must be 'overwrite' or 'block', got {policy!r}")
        _check_int("max_consumers", max_consumers, 1, L.MAX_CONSUMERS_LIMIT,
                   "an integer (consumer entries per ring)")  # fmt: skip
        _check_int("meta_capacity", meta_capacity, 0, limits.MAX_META_CAPACITY)
        _check_int("keeper_pid", keeper_pid, 0, (1 << 32) - 1)
        _check_int("instance_id", instance_id, 0, (1 << 64) - 1)
        if group is not None:
            _check_int("group", group, 0, (1 << 32) - 2, "a group id")
        if kinds is not None:
            kinds = sorted(set(kinds))
            for k in kinds:
                codec.layout_for(k)  # unknown kind: LayoutError naming it
        blob = _meta_blob(kinds, metadata)
        if len(blob) > limits.MAX_META_CAPACITY:
            raise RingTooLarge(
                f"ring {name!r}: metadata of {limits.human(len(blob))} exceeds the maximum "
                f"of {limits.human(limits.MAX_META_CAPACITY)}"
            )
        meta_off, meta_cap, data_off, size = L.geometry(
            capacity, slot_size, max_consumers, max(meta_capacity, len(blob))
        )
        limits.check_ring_size(name, size, capacity, slot_size)
        fields = {
            "version": L.VERSION, "header_size": L.HEADER_DTYPE.itemsize,
            "capacity": capacity, "slot_size": slot_size, "policy": L.POLICIES[policy],
            "layout_hash": _layout_hash(kinds), "max_consumers": max_consumers,
            "producer_pid": os.getpid(), "producer_uid": os.geteuid(),
            "meta_offset": meta_off, "meta_capacity": meta_cap, "data_offset": data_off,
            "created_ns": time.time_ns(), "heartbeat_ns": time.monotonic_ns(),
            "keeper_pid": keeper_pid, "instance_id": instance_id,
        }  # fmt: skip
        shm = _create_shm(name, size, group)  # flocked until _init_ring is done
        self = cls.__new__(cls)
        self.name = name
        self._allow_gid = group
        try:
            self._init_ring(shm, size, fields, blob, kinds)
        except BaseException:
            discard(shm, shm_name(name))
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
    def adopt(cls, name: str, *, instance_id: int | None = None):
        """Become the producer of existing ring ``name`` whose producer released it
        (:meth:`release`) or died. Sequences and event numbers continue where they
        stopped and consumers keep their cursors, so a restarted producer process is
        invisible to them. A slot the dead producer left half-written (stamped WRITING,
        never published) is simply written again. Only a ring of this uid is adopted
        (header ``producer_uid`` too), and, when ``instance_id`` is given, only one of
        that engine instance (else :class:`RingForeign`)."""
        check_name(name)
        shm = _open_existing(name, allow_gid=_own_group(name))
        try:
            st = os.fstat(shm.fd)
            if st.st_uid != os.geteuid():
                raise RingPermissionError(
                    f"refusing to adopt ring {name!r} ({shm_path(name)}): owned by "
                    f"{owner_note(st)}; only this uid ({os.geteuid()}) produces its rings"
                )
        except BaseException:
            shm.close_fd()
            raise
        self = cls.__new__(cls)
        self.name = name
        self._allow_gid = st.st_gid if stat.S_IMODE(st.st_mode) & 0o070 else None
        self._map(shm, st.st_size)
        try:
            with flocked(self._fd):
                hdr = self._view(np.ndarray, (1,), L.HEADER_DTYPE, 0)[0]
                if int(hdr["magic"]) != L.MAGIC or int(hdr["version"]) != L.VERSION:
                    raise RingLayoutError(
                        f"ring {name!r} is not a version {L.VERSION} ttxt-mp ring"
                    )
                check_header_owner(name, bytes(self._mv[: L.HEADER_DTYPE.itemsize]), st.st_uid)
                have = int(hdr["instance_id"])
                if instance_id is not None and have != instance_id:
                    raise RingForeign(
                        f"ring {name!r} belongs to engine instance {have:x}, not {instance_id:x}"
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

    @property
    def next_evno(self) -> int:
        """Event number the next ``put`` will carry (= events published so far)."""
        return self._evno

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
        self._refused: set[tuple[int, int]] = set()  # (index, generation) of bad FIFOs
        self._next_reap = 0.0
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
        if cring.active():  # the compiled hot path (cring.py); this class stays the reference
            cring.compile_writer(self)

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
        _FENCE.acquire()  # head before the flag load (ring.py: sleeping)
        _FENCE.release()
        if Q[self._fq] != self._w0 or self._nwords > 1:
            self._wake_sleepers()
        self._beat -= 1
        if not self._beat:
            self.heartbeat()

    async def aput(self, event: Any, timeout: float | None = None) -> None:
        """Publish without blocking the event loop: a full ``block`` ring is polled for
        room (every 1 ms, the heartbeat kept fresh) while other tasks run; after
        ``timeout`` seconds (None: no limit) :class:`QueueFull` is raised, its
        ``blocking`` attribute naming the pids of the consumers that hold the ring."""
        try:
            return self.put(event, timeout=0)
        except QueueFull:
            pass
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            await asyncio.sleep(0.001)
            try:
                return self.put(event, timeout=0)
            except QueueFull as e:
                if deadline is not None and loop.time() >= deadline:
                    raise self._full_error(getattr(e, "nslots", 1), timeout) from None

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
        _FENCE.acquire()  # head before the flag load (ring.py: sleeping)
        _FENCE.release()
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
        pause = 0.0
        while True:
            now = time.monotonic()
            if now >= self._next_reap:  # an instance attribute: aput polls via timeout=0
                self.reap()
                self.heartbeat()  # waiting is not dying: keep the heartbeat fresh
                self._next_reap = now + 0.02
                self._limit = self._compute_limit(nslots)
                if need <= self._limit:
                    return
            if deadline is not None and now >= deadline:
                raise self._full_error(nslots, timeout)
            self._wake_sleepers(force=True)
            if pause:
                time.sleep(pause)
            pause = min(pause * 2 or 2e-5, 1e-3)
            self._limit = self._compute_limit(nslots)
            if need <= self._limit:
                return

    def blocking_consumers(self, nslots: int = 1) -> list[int]:
        """Pids of the live consumers that keep the next ``nslots`` slot(s) from being
        written (a ``block`` ring is full up to their cursor); [] when there is room."""
        if self._policy != L.POLICY_BLOCK or self._closed:
            return []
        need = self._seq + nslots
        pids = [
            c["pid"] for c in sorted(self.consumers(), key=lambda c: c["cursor"])
            if c["alive"] and c["cursor"] + self._cap < need
        ]  # fmt: skip
        return list(dict.fromkeys(pids))  # slowest first, each process once

    def _full_error(self, nslots: int, timeout: float | None) -> QueueFull:
        """QueueFull naming the consumers that hold the ring (also as ``.blocking``)."""
        pids = self.blocking_consumers(nslots)
        behind = [self._seq - c["cursor"] for c in self.consumers() if c["pid"] in pids]
        who = (
            f"blocked by consumer pid(s) {', '.join(map(str, pids))} "
            f"({max(behind, default=0)} slots behind)"
            if pids else "no live consumer holds it any more"
        )  # fmt: skip
        err = QueueFull(
            f"ring {self.name!r} (block): no room for {nslots} slot(s) within {timeout}s; {who}"
        )
        err.blocking = pids  # type: ignore[attr-defined]
        err.nslots = nslots  # type: ignore[attr-defined]
        return err

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
                    unlink_own(fifo_path(self.name, i))  # never another uid's FIFO
                    log.warning(
                        "ring %s: reaped consumer %d (pid %d died without detaching)",
                        self.name, i, pid,
                    )  # fmt: skip
        return dead

    # ------------------------------------------------------------------ wakeups
    def _wake_sleepers(self, force: bool = False) -> None:
        """Write one byte to the FIFO of each consumer that flagged itself asleep since
        its last wakeup (the flag byte is a token that changes on every sleep). Callers
        that did not fence since storing head are the batch paths: fence here."""
        _FENCE.acquire()
        _FENCE.release()
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
            fd = self._open_fifo(i, gen)
            if fd < 0:
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

    def _open_fifo(self, i: int, gen: int) -> int:
        """Open consumer ``i``'s wake-up FIFO for writing, never through a symlink and
        only if it is a FIFO of this uid (or of the ring's group); -1 if not usable."""
        if (i, gen) in self._refused:
            return -1
        path = fifo_path(self.name, i)
        try:
            fd = trust.open_checked(path, os.O_WRONLY | os.O_NONBLOCK,
                                    allow_gid=self._allow_gid, what="wake-up FIFO")  # fmt: skip
        except trust.UntrustedObject as e:
            self._refused.add((i, gen))
            log.warning("ring %s: not waking consumer %d: %s", self.name, i, e)
            return -1
        except OSError:  # consumer gone (ENOENT) or not reading (ENXIO)
            return -1
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            self._refused.add((i, gen))
            log.warning("ring %s: not waking consumer %d: %s is not a FIFO", self.name, i, path)
            return -1
        return fd

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


def _own_group(name: str) -> int | None:
    """The group of this uid's ring ``name`` if it was created shared with one (0660)."""
    try:
        st = os.lstat(shm_path(name))
    except OSError:
        return None
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o070:
        return st.st_gid
    return None


def _create_shm(name: str, size: int, group: int | None) -> posix_ipc.SharedMemory:
    """Ring ``name``'s object, created by :func:`create_object` (flocked, allocated); a
    stale one of ours is removed first. The caller gets it still flocked (``_init_ring``
    unlocks once the header is written)."""
    for _ in range(2):
        try:
            return create_object(shm_name(name), f"ring {name!r}", size, group,
                                 hint="; lower capacity or slot_size")  # fmt: skip
        except posix_ipc.ExistentialError:
            _clean_stale(name)
    raise RingExists(f"ring {name!r} keeps reappearing while being created; another producer?")


def _clean_stale(name: str) -> None:
    """Remove an existing ring ``name`` if it is ours and its producer (and keeper) are
    dead or it was closed; else refuse. Another user's object is never touched."""
    path = shm_path(name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "an object"
        raise RingPermissionError(
            f"cannot create ring {name!r}: {path} exists, {what} owned by {owner_note(st)}; "
            f"it is not removed (this process is uid {os.geteuid()}): ask its owner to "
            "remove it or choose another name"
        )
    got = read_pids(path)
    if got is None:
        # No valid header: either a creator is initializing it right now (it holds the
        # flock) or one crashed before finishing (nobody holds it).
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return
        except PermissionError:
            raise RingPermissionError(
                f"ring {name!r} ({path}) exists and belongs to another user"
            ) from None
        try:
            if os.fstat(fd).st_uid != os.geteuid():  # swapped since the lstat
                raise RingPermissionError(f"ring {name!r} ({path}) belongs to another user")
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
    pid, keeper, closed = got
    if pid_alive(pid) and not closed:
        raise RingExists(
            f"ring {name!r} ({path}) exists and its producer pid {pid} is alive: stop that "
            "process or choose another name"
        )
    if keeper and keeper != os.getpid() and pid_alive(keeper) and not closed:
        raise RingExists(
            f"ring {name!r} ({path}) exists and is kept by pid {keeper} (an engine's "
            "supervisor) that is alive: stop that engine or choose another name"
        )
    removed = remove_ring_objects(name)
    log.warning(
        "removed stale ring %r of %s producer pid %d: %s",
        name, "closed" if closed else "dead", pid, removed,
    )  # fmt: skip
