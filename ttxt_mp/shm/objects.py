"""Names of the OS objects behind a ring, liveness of pids, listing and cleaning.

A ring ``NAME`` is the POSIX shared-memory object ``/ttxt-NAME`` (``/dev/shm/ttxt-NAME``
on Linux) plus, per sleeping-capable consumer, a FIFO ``/dev/shm/ttxt-NAME.wI`` the
producer writes one byte to when that consumer asked to be woken. All are mode 0600
(0660 when a ring is shared with one group). ``/dev/shm/ttxt-ENGINE.lock`` is an engine's
host-wide lock file (``ttxt_mp.engine``): listed as kind ``"lock"``, never removed here.

``/dev/shm`` is writable by every local user, so nothing found there is trusted: objects
of another uid are skipped by :func:`list_objects` and never removed or touched by the
cleaning functions (a foreign object where a ring must be created is an error naming its
owner), and a ring is used only after :func:`check_ring_fd` accepted its open fd.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import posix_ipc

from ttxt_mp import trust
from ttxt_mp.shm import limits
from ttxt_mp.shm.errors import RingPermissionError, RingTooLarge
from ttxt_mp.shm.layout import MAGIC, OFF

log = logging.getLogger("ttxt_mp.shm")

SHM_DIR = "/dev/shm"
PREFIX = "ttxt-"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid ring name {name!r}: use 1-200 characters [A-Za-z0-9_-], "
            "starting with a letter or digit"
        )
    return name


def shm_name(name: str) -> str:
    return f"/{PREFIX}{name}"


def shm_path(name: str) -> str:
    return f"{SHM_DIR}/{PREFIX}{name}"


def fifo_path(name: str, index: int) -> str:
    return f"{SHM_DIR}/{PREFIX}{name}.w{index}"


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as dead: it will never read or write again)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")
    except (OSError, ValueError):
        return True  # no procfs: trust kill(0)


@contextlib.contextmanager
def flocked(fd: int) -> Iterator[None]:
    """Exclusive lock on a ring's shm file for attach/detach/reap.

    ``flock`` instead of a named semaphore: the kernel drops it when its holder dies, so a
    consumer SIGKILLed while attaching never wedges the others.
    """
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class RingObject:
    """One ``/dev/shm/ttxt-*`` object as seen by :func:`list_objects`."""

    path: str
    ring: str  # ring (or, for a lock, engine) name this object belongs to
    kind: str  # "ring", "fifo", "lock" or "other"
    producer_pid: int = 0  # rings only; 0 if the header is unreadable
    alive: bool = False  # rings: not closed, producer (or keeper) running
    uid: int = -1  # owner of the object (-1: unknown)


_HEAD = struct.Struct("<Q")
_PID = struct.Struct("<I")


def check_ring_fd(fd: int, name: str, *, allow_gid: int | None = None) -> os.stat_result:
    """Accept the open shm object of ring ``name`` only if it is a regular file owned by
    this uid (or group ``allow_gid`` when given) and closed to others; else
    :class:`RingPermissionError` (one line: path, owner, mode, expectation)."""
    path = shm_path(name)
    try:
        st = trust.check_fd(fd, path, allow_gid=allow_gid, what="ring")
    except trust.UntrustedObject as e:
        raise RingPermissionError(f"ring {name!r}: {e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise RingPermissionError(f"ring {name!r}: {path} is not a shared-memory object")
    return st


def _foreign(st: os.stat_result) -> bool:
    return st.st_uid != os.geteuid()


def owner_note(st: os.stat_result) -> str:
    """"uid U, mode 0MMM" of a stat result, for messages."""
    return f"uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"


def unlink_own(path: str) -> bool:
    """Unlink ``path`` only if it is ours (never an object of another uid); True if it
    was removed. ``/dev/shm`` is sticky, so nobody else can swap the entry meanwhile."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if _foreign(st):
        log.warning("not removing %s: it belongs to %s", path, owner_note(st))
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def read_pids(path: str) -> tuple[int, int, bool] | None:
    """(producer pid, keeper pid, closed flag) from a ring file, or None if it has no
    valid header (or is a symbolic link, which is never followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.pread(fd, OFF["closed"] + 8, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(head) < OFF["closed"] + 8 or _HEAD.unpack_from(head, 0)[0] != MAGIC:
        return None
    pid = _PID.unpack_from(head, OFF["producer_pid"])[0]
    keeper = _PID.unpack_from(head, OFF["keeper_pid"])[0]
    return pid, keeper, bool(_HEAD.unpack_from(head, OFF["closed"])[0])


def read_owner(path: str) -> tuple[int, bool] | None:
    """(producer pid, closed flag) from a ring file, or None if it has no valid header."""
    got = read_pids(path)
    return None if got is None else (got[0], got[2])


def _alive(pid: int, keeper: int, closed: bool) -> bool:
    """A ring is alive while not closed and its producer, or its keeper (an engine's
    supervisor between producer hand-overs), runs."""
    return not closed and (pid_alive(pid) or pid_alive(keeper))


def list_objects(prefix: str = "", *, include_foreign: bool = False) -> list[RingObject]:
    """Every ``/dev/shm/ttxt-<prefix>*`` object of this uid: rings (with their
    producer), FIFOs and engine locks. Objects of other uids are skipped (listed, with
    their ``uid``, only with ``include_foreign``)."""
    try:
        entries = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:
        return []
    out = []
    for fn in entries:
        if not fn.startswith(PREFIX + prefix):
            continue
        path = f"{SHM_DIR}/{fn}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        foreign = _foreign(st)
        if foreign and not include_foreign:
            continue
        base = fn[len(PREFIX) :]
        if "." in base:
            ring, _, suffix = base.partition(".")
            kind = "lock" if suffix == "lock" else "fifo" if suffix.startswith("w") else "other"
            out.append(RingObject(path, ring, kind, uid=st.st_uid))
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append(RingObject(path, base, "other", uid=st.st_uid))
            continue
        got = None if foreign else read_pids(path)
        pid, keeper, closed = got if got else (0, 0, True)
        out.append(RingObject(path, base, "ring", pid, _alive(pid, keeper, closed), st.st_uid))
    return out


def clean_objects(prefix: str = "", *, stale_only: bool = True) -> list[str]:
    """Remove this uid's ``/dev/shm/ttxt-<prefix>*`` objects; return the removed paths.

    With ``stale_only`` (the default) a ring is removed only if its producer is dead or it
    was closed, and a FIFO only if its ring is gone or removed; live rings are kept.
    Engine lock files and objects of other uids are never removed.
    """
    objs = list_objects(prefix)
    live = {o.ring for o in objs if o.kind == "ring" and o.alive} if stale_only else set()
    removed = []
    for o in objs:
        if o.ring in live or o.kind == "lock":
            continue
        if o.kind == "ring":
            if _unlink_ring(o.ring):
                removed.append(o.path)
        elif unlink_own(o.path):
            removed.append(o.path)
    if removed:
        log.info("removed %d stale shared-memory object(s): %s", len(removed), removed)
    return removed


def _unlink_ring(name: str) -> bool:
    """Unlink ring ``name``'s shm object if it is ours."""
    try:
        st = os.lstat(shm_path(name))
    except FileNotFoundError:
        return False
    if _foreign(st):
        log.warning("not removing ring %r (%s): it belongs to %s", name, shm_path(name),
                    owner_note(st))  # fmt: skip
        return False
    try:
        posix_ipc.unlink_shared_memory(shm_name(name))
    except posix_ipc.ExistentialError:
        return False
    return True


def remove_ring_objects(name: str) -> list[str]:
    """Unlink ring ``name`` and its FIFOs (whatever state they are in), except objects of
    other uids (left alone, with a warning) and the engine lock ``ttxt-<name>.lock``."""
    removed = []
    if _unlink_ring(name):
        removed.append(shm_path(name))
    for o in list_objects(name):
        if o.kind in ("fifo", "other") and o.ring == name and unlink_own(o.path):
            removed.append(o.path)
    return removed


def create_object(posix_name: str, what: str, size: int, group: int | None, *,
                  hint: str = "") -> posix_ipc.SharedMemory:  # fmt: skip
    """Create shm object ``posix_name`` exclusively (0600, or 0660 with ``group``), flock
    it and allocate all ``size`` bytes (:func:`allocate`); on any failure it is unlinked
    again. Returned still flocked. ``posix_ipc.ExistentialError`` if it exists."""
    shm = posix_ipc.SharedMemory(posix_name, flags=posix_ipc.O_CREX, mode=0o600)
    try:
        fcntl.flock(shm.fd, fcntl.LOCK_EX)
        if group is not None:
            try:
                os.fchown(shm.fd, -1, group)
                os.fchmod(shm.fd, 0o660)
            except PermissionError:
                raise RingPermissionError(
                    f"{what}: cannot share it with group {group}: this process "
                    f"(uid {os.geteuid()}) is not a member of that group"
                ) from None
        allocate(shm.fd, what, size, hint)
    except BaseException:
        discard(shm, posix_name)
        raise
    return shm


def allocate(fd: int, what: str, size: int, hint: str = "") -> None:
    """Reserve every page of the first ``size`` bytes now (growing the object if needed):
    exhaustion is :class:`RingTooLarge` here, not SIGBUS in a reader later."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.ENOMEM, errno.EFBIG):
            space = limits.shm_space()
            free = f" ({limits.human(space[1])} free)" if space else ""
            raise RingTooLarge(
                f"{what}: cannot allocate {limits.human(size)} in "
                f"{limits.SHM_DIR}{free}: {e.strerror}{hint}"
            ) from None
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)  # a filesystem without fallocate: sparse, as before


def discard(shm: posix_ipc.SharedMemory, posix_name: str) -> None:
    """Unlink a half-made object and close its fd (each step whatever the other did)."""
    with contextlib.suppress(Exception):
        posix_ipc.unlink_shared_memory(posix_name)
    with contextlib.suppress(Exception):
        shm.close_fd()
