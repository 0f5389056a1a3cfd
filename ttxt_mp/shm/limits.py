"""Size limits of a ring, checked before anything is created.

A ring lives in ``/dev/shm`` (tmpfs, i.e. RAM). One sized beyond the free space would be
"created" sparse and later kill every process that maps it with SIGBUS when a page cannot
be allocated; one sized like the host's memory takes the machine with it. So ``create``
checks the size against :func:`max_ring_bytes` and the free space first, and then
allocates every page with ``posix_fallocate`` (see ``writer.py``).
"""

from __future__ import annotations

import os

from ttxt_mp.shm.errors import RingTooLarge

SHM_DIR = "/dev/shm"
ENV_MAX = "TTXT_MP_MAX_RING_BYTES"
DEFAULT_MAX = 4 << 30
"""Hard default cap of one ring: 4 GiB (lowered to half of /dev/shm when smaller)."""

MAX_CAPACITY = 1 << 32
"""Slots per ring; far above any sane ring and keeps numpy indices small."""
MAX_SLOT_SIZE = 1 << 26
"""Bytes per slot (64 MiB); larger events span several slots."""
MAX_META_CAPACITY = 1 << 28
"""Bytes of metadata (instrument tables are a few MiB at most)."""


def human(n: int) -> str:
    """``n`` bytes as a short human-readable size (for error messages)."""
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if x < 1024 or unit == "PiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    raise AssertionError  # pragma: no cover


def _parse_size(text: str) -> int:
    """``"123"``, ``"64k"``, ``"512M"``, ``"2G"`` (binary units) -> bytes."""
    s = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = 1
    if s and s[-1] in "kmgt":
        mult = 1 << (10 * ("kmgt".index(s[-1]) + 1))
        s = s[:-1]
    try:
        n = int(s) * mult
    except ValueError:
        n = -1
    if n <= 0:
        raise ValueError(
            f"{ENV_MAX}={text!r} is not a size in bytes (e.g. 1073741824, 512M or 2G)"
        )
    return n


def shm_space(path: str = SHM_DIR) -> tuple[int, int] | None:
    """(total, free) bytes of the shared-memory filesystem; None if unknown."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def max_ring_bytes() -> int:
    """The largest ring ``create`` accepts: ``$TTXT_MP_MAX_RING_BYTES`` if set, else
    min(half of /dev/shm, 4 GiB)."""
    env = os.environ.get(ENV_MAX)
    if env:
        return _parse_size(env)
    space = shm_space()
    return min(space[0] // 2, DEFAULT_MAX) if space and space[0] else DEFAULT_MAX


def check_ring_size(name: str, size: int, capacity: int, slot_size: int) -> None:
    """Raise :class:`RingTooLarge` if a ring of ``size`` bytes is over the maximum or
    over the free space of /dev/shm."""
    what = f"ring {name!r}: {capacity} slots x {slot_size} bytes need {human(size)}"
    limit = max_ring_bytes()
    if size > limit:
        raise RingTooLarge(
            f"{what}, more than the maximum ring size {human(limit)}: lower capacity or "
            f"slot_size, or raise {ENV_MAX}"
        )
    space = shm_space()
    if space is not None and size > space[1]:
        free = space[1]
        raise RingTooLarge(
            f"{what}, but {SHM_DIR} has only {human(free)} free: lower capacity or "
            "slot_size, or free shared memory"
        )
