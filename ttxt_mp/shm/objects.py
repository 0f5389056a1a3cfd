"""Names of the OS objects behind a ring, liveness of pids, listing and cleaning.

A ring ``NAME`` is the POSIX shared-memory object ``/ttxt-NAME`` (``/dev/shm/ttxt-NAME``
on Linux) plus, per sleeping-capable consumer, a FIFO ``/dev/shm/ttxt-NAME.wI`` the
producer writes one byte to when that consumer asked to be woken. All are mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import posix_ipc

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
    ring: str  # ring name this object belongs to
    kind: str  # "ring", "fifo" or "other"
    producer_pid: int = 0  # rings only; 0 if the header is unreadable
    alive: bool = False  # rings: producer running and ring not closed


_HEAD = struct.Struct("<Q")
_PID = struct.Struct("<I")


def read_owner(path: str) -> tuple[int, bool] | None:
    """(producer pid, closed flag) from a ring file, or None if it has no valid header."""
    try:
        with open(path, "rb") as f:
            head = f.read(OFF["closed"] + 8)
    except OSError:
        return None
    if len(head) < OFF["closed"] + 8 or _HEAD.unpack_from(head, 0)[0] != MAGIC:
        return None
    pid = _PID.unpack_from(head, OFF["producer_pid"])[0]
    return pid, bool(_HEAD.unpack_from(head, OFF["closed"])[0])


def list_objects(prefix: str = "") -> list[RingObject]:
    """Every ``/dev/shm/ttxt-<prefix>*`` object: rings (with their producer) and FIFOs."""
    try:
        entries = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:
        return []
    out = []
    for fn in entries:
        if not fn.startswith(PREFIX + prefix):
            continue
        path = f"{SHM_DIR}/{fn}"
        base = fn[len(PREFIX) :]
        if "." in base:
            ring, _, suffix = base.partition(".")
            out.append(RingObject(path, ring, "fifo" if suffix.startswith("w") else "other"))
            continue
        owner = read_owner(path)
        pid, closed = owner if owner else (0, True)
        out.append(RingObject(path, base, "ring", pid, pid_alive(pid) and not closed))
    return out


def clean_objects(prefix: str = "", *, stale_only: bool = True) -> list[str]:
    """Remove ``/dev/shm/ttxt-<prefix>*`` objects; return the removed paths.

    With ``stale_only`` (the default) a ring is removed only if its producer is dead or it
    was closed, and a FIFO only if its ring is gone or removed; live rings are kept.
    """
    objs = list_objects(prefix)
    live = {o.ring for o in objs if o.kind == "ring" and o.alive} if stale_only else set()
    removed = []
    for o in objs:
        if o.ring in live:
            continue
        with contextlib.suppress(FileNotFoundError):
            if o.kind == "ring":
                posix_ipc.unlink_shared_memory(shm_name(o.ring))
            else:
                os.unlink(o.path)
            removed.append(o.path)
    if removed:
        log.info("removed %d stale shared-memory object(s): %s", len(removed), removed)
    return removed


def remove_ring_objects(name: str) -> list[str]:
    """Unlink ring ``name`` and its FIFOs (whatever state they are in)."""
    removed = []
    with contextlib.suppress(posix_ipc.ExistentialError):
        posix_ipc.unlink_shared_memory(shm_name(name))
        removed.append(shm_path(name))
    for o in list_objects(name):
        if o.kind != "ring" and o.ring == name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(o.path)
                removed.append(o.path)
    return removed
