"""``ShmQueue``: the :class:`ttxt_mp.queues.IQueue` surface over a shared-memory ring.

``ShmQueue.create(...)`` returns the producing end (:class:`ShmPublisher`),
``ShmQueue.attach(...)`` a consuming end (:class:`ShmConsumer`). Both are ``ShmQueue``
(hence ``IQueue``) instances, so they go wherever an ``IQueue`` is expected; calling a
method of the other end raises ``TypeError``.
"""

from __future__ import annotations

from typing import Any

from ttxt_mp.queues import IQueue
from ttxt_mp.shm.reader import RingReader
from ttxt_mp.shm.writer import RingWriter

__all__ = ["ShmConsumer", "ShmPublisher", "ShmQueue"]


class ShmQueue(IQueue):
    """Factory and common type of the two ends of a shared-memory ring."""

    @staticmethod
    def create(
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
    ) -> ShmPublisher:
        """Create ring ``name`` (``/dev/shm/ttxt-<name>``, mode 0600) and return its producer.

        ``capacity`` slots (a power of two) of ``slot_size`` bytes (32-byte slot header +
        payload; an event larger than one slot spans consecutive slots, one larger than
        the whole ring raises :class:`EventTooLarge`). ``policy``: ``"overwrite"`` (the
        producer never waits; lapped consumers get a ``GapNotice``) or ``"block"`` (the
        producer waits for the slowest live consumer; dead consumers are reaped).
        ``metadata``: any msgspec-JSON-encodable value consumers read as ``.metadata``
        (e.g. the instrument table); the producer may replace it with ``set_metadata``.
        ``kinds``: event kinds carried (default: the library's); their layout hash is
        checked at attach. A stale ring of the same name (producer dead or closed) is
        removed with a warning; one with a live producer raises :class:`RingExists`.
        ``keeper_pid``: a process (the engine's supervisor) that keeps the ring alive
        across producer hand-overs (:meth:`adopt`/``release``): while it lives, consumers
        wait through a dead producer instead of raising ``ProducerDied``.
        ``instance_id``: the engine instance creating the ring, written into the header
        for consumers to check (0: none). ``group``: a gid to share the ring with
        (mode 0660, that group's members may attach with ``allow_gid``); None: 0600.

        Limits, checked before anything exists: ``capacity`` <= 2**32, ``slot_size``
        <= 64 MiB, ``max_consumers`` 1..64 (``ValueError``); the whole ring must fit
        ``limits.max_ring_bytes()`` (min(half of /dev/shm, 4 GiB), or
        ``$TTXT_MP_MAX_RING_BYTES``) and the free space of /dev/shm, and every page is
        allocated now (``posix_fallocate``), else :class:`RingTooLarge` and nothing is
        left behind. A leftover object of that name owned by another uid is never
        removed: :class:`RingPermissionError` names its owner and mode.
        """
        return ShmPublisher.create(
            name, capacity, slot_size, policy, metadata,
            max_consumers=max_consumers, kinds=kinds, meta_capacity=meta_capacity,
            keeper_pid=keeper_pid, instance_id=instance_id, group=group,
        )  # fmt: skip

    @staticmethod
    def adopt(name: str, *, instance_id: int | None = None) -> ShmPublisher:
        """Become the producer of existing ring ``name`` after its producer called
        ``release()`` or died; sequences continue, consumers keep their cursors.
        Only a ring of this uid is adopted (:class:`RingPermissionError`), of engine
        instance ``instance_id`` if given (:class:`RingForeign`). Raises
        :class:`RingExists` if the current producer is alive."""
        return ShmPublisher.adopt(name, instance_id=instance_id)

    @staticmethod
    def attach(
        name: str,
        start: str = "latest",
        *,
        spin_us: float = 50.0,
        busy: bool = False,
        wake_timeout: float = 0.1,
        instance_id: int | None = None,
        allow_gid: int | None = None,
    ) -> ShmConsumer:
        """Attach a consumer with its own cursor to ring ``name``.

        ``start="latest"``: the next event published; ``"oldest"``: the oldest event still
        in the ring (on a ``block`` ring: the oldest one the producer is still holding
        for the slowest consumer). When idle, ``get``/``aget`` spin up to ``spin_us`` µs
        (adaptively: less while waits end asleep, more while events come within the
        spin) then sleep on a FIFO the producer writes to (``busy=True``: spin forever,
        lowest latency, one full core); ``wake_timeout`` bounds a sleep (a safety net,
        see ring.py). Raises :class:`RingNotFound`, :class:`RingLayoutError`,
        :class:`RingPermissionError`.

        Trust checks before anything is read: the ring (opened without following a
        symlink) must be owned by this uid, or have group ``allow_gid`` when given, and
        give nothing to others; the header's ``producer_uid`` must be the file's owner;
        with ``instance_id`` (the engine instance attached to) the header's must match,
        else :class:`RingForeign`. The consumer's wake-up FIFO is created 0600 (0660 and
        group ``allow_gid`` when given) and checked the same way.
        """
        return ShmConsumer.attach(
            name, start, spin_us=spin_us, busy=busy, wake_timeout=wake_timeout,
            instance_id=instance_id, allow_gid=allow_gid,
        )  # fmt: skip

    def _wrong_end(self, what: str):
        other = "producer (ShmQueue.create)" if what == "put" else "consumer (ShmQueue.attach)"
        return TypeError(f"{type(self).__name__} of ring {self.name!r} cannot {what}: "
                         f"use a {other}")  # fmt: skip

    def put(self, event: Any, timeout: float | None = None) -> None:
        raise self._wrong_end("put")

    def get_nowait(self) -> Any:
        raise self._wrong_end("get")

    def get(self, timeout: float | None = None) -> Any:
        raise self._wrong_end("get")

    async def aget(self) -> Any:
        raise self._wrong_end("get")


class ShmPublisher(RingWriter, ShmQueue):
    """The producer of a ring. ``put``, ``aput``, ``put_many``, ``put_raw``,
    ``set_metadata``, ``heartbeat``, ``reap``, ``blocking_consumers``, ``close``,
    ``unlink``; ``instance_id``.

    On a ``block`` ring a full wait ends in :class:`ttxt_mp.queues.QueueFull` whose
    ``blocking`` attribute lists the pids of the live consumers holding the ring;
    ``aput(event, timeout)`` waits inside the event loop instead of blocking it."""

    name: str


class ShmConsumer(RingReader, ShmQueue):
    """A consumer of a ring. ``get``, ``get_nowait``, ``aget``, ``for``/``async for``,
    ``get_batch``, ``get_raw``, ``metadata``, ``lag``, ``lost``, ``close``;
    ``instance_id`` (the engine instance that created the ring, 0 if none).

    Events come back as the Structs that were put. A lap on an ``overwrite`` ring is
    reported in order as ``GapNotice(exchange="", lost=N)``: exactly N events were
    overwritten before this consumer could read them; the next event is the oldest
    still in the ring. ``get_batch`` reports laps in ``.lost`` and in the jump of the
    records' ``evno`` instead.
    """

    name: str

    def put(self, event: Any, timeout: float | None = None) -> None:
        raise self._wrong_end("put")

    def put_many(self, events: Any, kind: int | None = None, timeout: float | None = None):
        raise self._wrong_end("put")
