"""Where an engine's objects live, so any process can find them by engine name alone.

Rings are named ``<engine>-<connector>-<stream>`` (``stream`` is ``market`` or
``private``; the shm layer stores them as ``/dev/shm/ttxt-<name>``); engine and connector names allow only ``[A-Za-z0-9_]``, so the name parses
back unambiguously. Discovery lists ``/dev/shm``: it needs no running supervisor, so a
replay publishing under an engine name is found exactly like a live engine.

Engine identity is host-wide: the lock file ``/dev/shm/ttxt-<engine>.lock`` sits in the
same namespace as the rings, so two engines of one name cannot coexist whatever their
runtime directories or uids. It holds ``{"pid", "uid", "instance_id", "runtime_dir"}``;
consumers read the ``instance_id`` (:func:`read_engine`) and accept only rings that carry
it. The control socket lives in a private (0700, owner-checked) runtime directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ttxt_mp import trust

SHM_DIR = Path("/dev/shm")
PREFIX = "ttxt-"
STREAMS = ("market", "private")
_RING = re.compile(r"^ttxt-([A-Za-z0-9_]+)-([A-Za-z0-9_]+)-(market|private)$")


@dataclass(frozen=True)
class RingName:
    engine: str
    connector: str
    stream: str

    @property
    def name(self) -> str:
        """The ring's name as ``ShmQueue.create``/``attach`` take it."""
        return f"{self.engine}-{self.connector}-{self.stream}"


_ENGINE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def check_engine_name(engine: str) -> str:
    """Refuse a name that could escape /dev/shm or clash with ring names (one line)."""
    if not isinstance(engine, str) or not _ENGINE.match(engine):
        raise ValueError(f"invalid engine name {engine!r}: use letters, digits or '_'")
    return engine


def ring_name(engine: str, connector: str, stream: str = "market") -> str:
    return RingName(engine, connector, stream).name


def command_ring_name(engine: str, connector: str, client: str) -> str:
    """A trading client's command ring into one connector."""
    return f"{engine}-{connector}-cmd_{client}"


def discover(engine: str, streams: tuple[str, ...] = STREAMS) -> list[RingName]:
    """The rings currently published under ``engine``, sorted by connector."""
    found = []
    try:
        entries = os.listdir(SHM_DIR)
    except OSError:
        return []
    for entry in entries:
        m = _RING.match(entry)
        if m and m.group(1) == engine and m.group(3) in streams:
            found.append(RingName(*m.groups()))
    return sorted(found, key=lambda r: (r.connector, r.stream))


def engine_objects(engine: str) -> list[Path]:
    """Every /dev/shm object that belongs to ``engine`` (rings, semaphores, fifos)."""
    out = []
    try:
        entries = os.listdir(SHM_DIR)
    except OSError:
        return []
    for entry in entries:
        bare = entry[4:] if entry.startswith("sem.") else entry
        if bare.startswith(f"{PREFIX}{engine}-"):
            out.append(SHM_DIR / entry)
    return sorted(out)


def runtime_dir() -> Path:
    """The per-user directory of control sockets and journals, created 0700.

    Why checked: ``/tmp/ttxt-mp-<uid>`` can be created first by another user, who would
    then own our lock, journal and socket; a foreign, loose or symlinked directory is
    refused with :class:`~ttxt_mp.trust.UntrustedObject` (one line, how to fix it)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(xdg) / "ttxt-mp" if xdg else Path(f"/tmp/ttxt-mp-{os.geteuid()}")
    return trust.secure_dir(path)


def control_socket(engine: str) -> Path:
    return runtime_dir() / f"{engine}.sock"


def lock_file(engine: str) -> Path:
    """The host-wide engine lock: in /dev/shm, next to the rings it protects."""
    check_engine_name(engine)
    return SHM_DIR / f"{PREFIX}{engine}.lock"


class LockRecord(msgspec.Struct, frozen=True):
    """What the engine lock file holds (msgspec JSON)."""

    pid: int
    uid: int
    instance_id: int
    runtime_dir: str


@dataclass(frozen=True)
class EngineInfo:
    """The engine holding (or last holding) a name: see :func:`read_engine`."""

    pid: int
    uid: int
    instance_id: int
    runtime_dir: str
    alive: bool
    """Its pid runs (a SIGKILLed engine's file remains until the next launch)."""


_LOCK_DEC = msgspec.json.Decoder(LockRecord)


def decode_lock(data: bytes) -> LockRecord | None:
    """The record of a lock file, or None if it is empty/being written/not ours."""
    try:
        rec = _LOCK_DEC.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return rec if rec.instance_id > 0 else None


def read_engine(engine: str) -> EngineInfo | None:
    """The engine named ``engine`` from its lock file, or None when there is none (no
    engine, a replay without one, or an engine still starting).

    The file must be ours (owner, mode, not a symlink): an engine of this name run by
    another uid, or a file planted by one, raises :class:`~ttxt_mp.trust.UntrustedObject`
    naming its owner, so nobody attaches to another user's rings by mistake."""
    from ttxt_mp.shm.objects import pid_alive

    path = lock_file(engine)
    try:
        fd = trust.open_checked(path, os.O_RDONLY | os.O_NONBLOCK, what="engine lock file")
    except FileNotFoundError:
        return None
    try:
        rec = decode_lock(os.pread(fd, 4096, 0))
        if rec is None:
            return None
        # Liveness by pid, not by probing the flock: a probe's shared lock, however
        # brief, could make a launching engine's LOCK_NB fail as "already running".
        alive = rec.uid == os.geteuid() and pid_alive(rec.pid)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return EngineInfo(rec.pid, rec.uid, rec.instance_id, rec.runtime_dir, alive)
