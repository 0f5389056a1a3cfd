"""A consuming end of a ring: seqlocked reads, laps and exact gaps, batches, waiting
(spin, then sleep on a FIFO). See ring.py for the memory ordering.

Attaching trusts nothing found in ``/dev/shm``: the ring's open fd must be this uid's (or
the opted-in group's) and closed to others, its header's ``producer_uid`` must be the
file's owner, and, when the caller knows its engine instance, the header's
``instance_id`` must match (:class:`RingForeign`). The wake-up FIFO is created 0600 (0660
for a group) and opened with ``O_NOFOLLOW``, then checked the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import stat
import time
from typing import Any

import numpy as np
import posix_ipc

from ttxt_mp import codec, trust
from ttxt_mp.events import ConnectorStatus, GapNotice
from ttxt_mp.queues import QueueClosed, QueueEmpty
from ttxt_mp.shm import cring
from ttxt_mp.shm import layout as L
from ttxt_mp.shm.errors import (
    ProducerDied,
    RingError,
    RingForeign,
    RingLayoutError,
    RingPermissionError,
)
from ttxt_mp.shm.objects import (
    check_name,
    fifo_path,
    flocked,
    owner_note,
    pid_alive,
    unlink_own,
)
from ttxt_mp.shm.ring import (
    _BEAT,
    _C_ATT,
    _C_CURSOR,
    _C_GEN,
    _C_LOST,
    _C_PID,
    _C_STATE,
    _CLOSED,
    _FENCE,
    _FLAGS,
    _FLOOR,
    _GAP_KIND,
    _HEAD,
    _HS,
    _RETRY,
    _SH_UNPACK,
    _UNW,
    _Decoders,
    _layout_hash,
    _Mapped,
    _open_existing,
    adapt_spin,
    check_header_owner,
    log,
)

_STATUS_KIND = codec.layout_for(ConnectorStatus).kind


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
        instance_id: int | None = None,
        allow_gid: int | None = None,
    ):
        """Attach to ring ``name``; see :meth:`ttxt_mp.shm.ShmQueue.attach`."""
        check_name(name)
        if start not in ("latest", "oldest"):
            raise ValueError(f"start must be 'latest' or 'oldest', got {start!r}")
        shm = _open_existing(name, allow_gid=allow_gid)
        self = cls.__new__(cls)
        self.name = name
        self._allow_gid = allow_gid
        self._want_instance = instance_id
        try:
            self._validate_and_map(shm)
            self._geometry()
            self._init_consumer(spin_us, busy, wake_timeout)
            self._register(start)
            if cring.active():  # the compiled hot path (cring.py); this class stays the reference
                cring.compile_reader(self)
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
        try:
            check_header_owner(name, head, os.fstat(shm.fd).st_uid)
            have, want = int(hdr["instance_id"]), self._want_instance
            if want is not None and have != want:
                raise RingForeign(
                    f"ring {name!r} belongs to engine instance {have:x}, not {want:x} (the "
                    "engine attached to): another engine of that name created it"
                )
        except BaseException:
            shm.close_fd()
            raise
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
        self._spin_now = self._spin  # the adaptive budget (_adapt)
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
            self._fifo_fd = self._make_fifo(fifo_path(self.name, i))
            self._poller = select.poll()
            self._poller.register(self._fifo_fd, select.POLLIN)
            o = L.consumer_offset(i)
            self._ci = (o + _C_CURSOR) >> 3
            self._flag = _FLAGS + i
            self._mv[self._flag] = 0
            seq, evno = self._start_position(start, 0)
            self._seq, self._evno = seq, evno
            self.history_start = evno
            """Event number of the first event this consumer can read: events before it
            were overwritten (or, at ``latest``, published) before it attached."""
            Q = self._Q
            Q[self._ci] = seq
            self._gen = Q[(o + _C_GEN) >> 3] + 1
            Q[(o + _C_GEN) >> 3] = self._gen
            Q[(o + _C_LOST) >> 3] = 0
            Q[(o + _C_ATT) >> 3] = time.time_ns()
            self._set_u32(o + _C_PID, os.getpid())
            self._set_u32(o + _C_STATE, L.STATE_ACTIVE)
            if self._policy == L.POLICY_BLOCK:  # see RingWriter._compute_limit
                _FENCE.acquire()
                _FENCE.release()
                floor = Q[_FLOOR]
                if floor > seq:
                    self._seq, self._evno = self._start_position(start, floor)
                    self.history_start = self._evno
                    Q[self._ci] = self._seq

    def _make_fifo(self, path: str) -> int:
        """Create this consumer's wake-up FIFO (0600; 0660 with ``allow_gid``, so a
        producer of that group can write it) and open it, never through a symlink. A
        leftover of another uid at that path is refused, not removed."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if st.st_uid != os.geteuid():
                raise RingPermissionError(
                    f"ring {self.name!r}: wake-up FIFO {path} exists and belongs to "
                    f"{owner_note(st)}; it is not removed: ask its owner to remove it"
                )
            unlink_own(path)
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            raise RingPermissionError(
                f"ring {self.name!r}: wake-up FIFO {path} was created by someone else "
                "while attaching"
            ) from None
        # O_RDWR: the FIFO never reports EOF when the producer closes its end.
        try:
            fd = trust.open_checked(path, os.O_RDWR | os.O_NONBLOCK, what="wake-up FIFO")
        except trust.UntrustedObject as e:
            raise RingPermissionError(f"ring {self.name!r}: {e}") from None
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise RingPermissionError(f"ring {self.name!r}: {path} is not a FIFO")
            if self._allow_gid is not None:
                try:
                    os.fchown(fd, -1, self._allow_gid)
                    os.fchmod(fd, 0o660)
                except PermissionError:
                    raise RingPermissionError(
                        f"ring {self.name!r}: cannot give wake-up FIFO {path} to group "
                        f"{self._allow_gid}: uid {os.geteuid()} is not a member"
                    ) from None
        except BaseException:
            os.close(fd)
            unlink_own(path)
            raise
        return fd

    def _reap_dead_entries(self) -> None:
        for i in range(self._maxc):
            pid, state, _, _ = self._entry(i)
            if state == L.STATE_ACTIVE and not pid_alive(pid):
                self._set_u32(L.consumer_offset(i) + _C_STATE, L.STATE_FREE)
                self._mv[_FLAGS + i] = 0
                log.warning("ring %s: freed entry %d of dead consumer pid %d", self.name, i, pid)

    def _start_position(self, start: str, floor: int) -> tuple[int, int]:
        """(sequence, expected event number) to start at, not below ``floor``."""
        while True:
            head = self._Q[_HEAD]
            if start == "latest":
                seq = max(head, floor)
            else:
                seq = max(head - self._cap, floor, 0)
                if self._policy == L.POLICY_BLOCK:  # only what the producer holds for us
                    seq = max(seq, self._Q[_FLOOR])
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
        if not self._producer_or_keeper_alive():
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
        spin_end = now + (1e9 if self._busy else self._spin_now)
        if deadline is not None:
            spin_end = min(spin_end, deadline)
        clock = time.monotonic
        k = 0
        while True:  # spin
            got = fetch()
            if got is not None:
                self._adapt(True)
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
            self._adapt(got is not None)
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

    def _adapt(self, hit: bool) -> None:
        """Spin less when waits end asleep, more when they end spinning (adapt_spin)."""
        self._spin_now = adapt_spin(self._spin_now, self._spin, hit)

    def _announce_sleep(self, fetch) -> Any:
        """Flag this consumer asleep with a new token, fence, look once more before the
        caller blocks (module docstring: the producer fences too, so one look suffices)."""
        self.arm_sleep()
        _FENCE.acquire()  # a locked instruction: our flag store is now globally visible
        _FENCE.release()
        return fetch()

    def prefer_kinds(self, kinds: Any) -> None:
        """A hint from a caller that keeps only events of ``kinds`` (ids; None: all): the
        compiled reader passes other kinds over without decoding them (read from the slot
        header); the pure one decodes everything and the caller's filter drops them.
        GapNotice and ConnectorStatus are always kept."""
        core = self.__dict__.get("_core")
        if core is not None:
            keep = None if kinds is None else {*kinds, _GAP_KIND, _STATUS_KIND}
            core.set_kinds(keep)

    def prefer_instruments(self, exchanges: Any, symbols: Any) -> None:
        """Like :meth:`prefer_kinds` for instruments (strs; None: all): the compiled
        reader passes over events whose ``exchange`` (``symbol``) field is not among
        them, reading the field's bytes in the slot; kinds without the field, GapNotice
        and ConnectorStatus are always decoded (the caller's filter decides)."""
        core = self.__dict__.get("_core")
        if core is not None:
            enc = lambda xs: None if xs is None else {x.encode() for x in xs}  # noqa: E731
            core.set_instruments(enc(exchanges), enc(symbols), {_GAP_KIND, _STATUS_KIND})

    # ------------------------------------------------------------------ wait sets
    # A caller serving several rings from one thread (ttxt_mp.waitset) uses these:
    # poll_event each, arm_sleep all, one fence, poll_event each once more, then block
    # on every wake_fd together; disarm_sleep all afterwards.
    def poll_event(self) -> Any:
        """The next event or None, never waiting; QueueClosed once closed and drained."""
        ev = self._poll()
        return ev if ev is not None else self._check_end(self._poll)

    def wake_fd(self) -> int:
        """The wake-up FIFO the producer writes to once this consumer is armed."""
        return self._fifo_fd

    def arm_sleep(self) -> None:
        """Flag this consumer asleep with a new token (the caller fences, then looks)."""
        self._tok = self._tok % 255 + 1
        self._mv[self._flag] = self._tok

    def disarm_sleep(self) -> None:
        if not self._closed:
            self._mv[self._flag] = 0

    def drain_wakeups(self) -> None:
        self._drain_fifo()

    def check_alive(self) -> Any:
        """After a wait with no wake-up: an event that came meanwhile, or None; raises
        ProducerDied if the producer (and keeper) died and everything was read."""
        return self._check_producer(self._poll)

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
        spin_end = time.monotonic() + self._spin_now
        while time.monotonic() < spin_end:
            got = fetch()
            if got is not None:
                self._adapt(True)
                return got
        try:
            got = self._announce_sleep(fetch)
            self._adapt(got is not None)
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
        """``_poll`` for raw bytes: the same seqlocked read, copying instead of decoding."""
        seq = self._seq
        mv = self._mv
        off = self._data + (seq & self._mask) * self._ss
        st, evno, kind, _, fcnt, plen = _SH_UNPACK(mv, off)
        if st != seq + 1 or fcnt != 1 or evno != self._evno or plen > self._pcap:
            return self._slow(True)
        got = (kind, mv[off + _HS : off + _HS + plen].tobytes())
        if self._Q[off >> 3] != seq + 1:
            return self._slow(True)
        self._seq = seq + 1
        self._evno = evno + 1
        self._Q[self._ci] = seq + 1
        return got

    def get_batch(self, max_n: int = 1024, timeout: float | None = 0) -> np.ndarray:
        """Up to ``max_n`` slot records: a numpy copy with dtype ``layout.slot_dtype``
        (``stamp, evno, kind, fidx, fcnt, plen, payload[slot_size - 32]``), no Python
        objects. Events are never split: a multi-slot event comes as its ``fcnt``
        consecutive fragments (``payload[:plen]`` of each, concatenated, is the encoding).
        View one-slot records of a kind without decoding::

            lay = ttxt_mp.codec.layout_for(kind)
            heads = lay.view(recs["payload"][recs["kind"] == kind])  # lay.header_dtype
            heads["exch_ts"], heads["symbol"] ...

        ``timeout``: 0 (default) returns an empty array at once when nothing is ready,
        None waits. Laps add to ``.lost`` and show as a jump in ``evno`` (no GapNotice)."""
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
    def last_evno(self) -> int:
        """Event number of the event ``get`` returned last (-1 before the first)."""
        return self._evno - 1

    @property
    def lag(self) -> int:
        """Slots published but not yet read by this consumer."""
        return max(0, self._Q[_HEAD] - self._seq)

    @property
    def cursor(self) -> int:
        return self._seq

    @property
    def producer_alive(self) -> bool:
        return self._producer_or_keeper_alive() and not self._Q[_CLOSED]

    def _producer_or_keeper_alive(self) -> bool:
        """The producer may change (hand-over between a supervisor and the connector
        processes it restarts): read its pid live; while the ring's keeper lives, a
        dead producer is one about to be replaced."""
        mv = self._mv
        o, k = L.OFF["producer_pid"], L.OFF["keeper_pid"]
        self.producer_pid = int.from_bytes(mv[o : o + 4], "little")
        keeper = int.from_bytes(mv[k : k + 4], "little")
        return pid_alive(self.producer_pid) or (keeper != 0 and pid_alive(keeper))

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
                unlink_own(fifo_path(self.name, self._index))
            self._fifo_fd = -1
        self._unmap()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(fut: asyncio.Future, value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
