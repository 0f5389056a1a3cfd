"""Where an engine's objects live, so any process can find them by engine name alone.

Rings are named ``<engine>-<connector>-<stream>`` (``stream`` is ``market`` or
``private``; the shm layer stores them as ``/dev/shm/ttxt-<name>``); engine and connector names allow only ``[A-Za-z0-9_]``, so the name parses
back unambiguously. Discovery lists ``/dev/shm``: it needs no running supervisor, so a
replay publishing under an engine name is found exactly like a live engine.
The supervisor's control socket and lock file live in a per-user runtime directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

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
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/ttxt-mp-{os.getuid()}"
    path = Path(base) / "ttxt-mp" if "XDG_RUNTIME_DIR" in os.environ else Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def control_socket(engine: str) -> Path:
    return runtime_dir() / f"{engine}.sock"


def lock_file(engine: str) -> Path:
    return runtime_dir() / f"{engine}.lock"
