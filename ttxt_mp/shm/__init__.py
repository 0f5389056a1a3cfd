"""Lock-free shared-memory rings: one producer, many broadcast consumers (x86-64 only).

    from ttxt_mp.shm import ShmQueue
    with ShmQueue.create("eng1-trades", policy="overwrite") as q:   # producer process
        q.put(MarketTrades(...))
    with ShmQueue.attach("eng1-trades", start="oldest") as c:      # any consumer process
        for ev in c: ...

See ``ring.py`` for the memory-ordering argument and ``layout.py`` for the bytes.

Trust: ``/dev/shm`` is shared by every local user, so every object is created 0600 (0660
when shared with one group on purpose) and checked on open (owner uid, mode, no symlink:
``O_NOFOLLOW`` + ``fstat``, see ``ttxt_mp.trust``); the header's ``producer_uid`` must be
the file's owner and its ``instance_id`` the engine's. Objects of another uid are never
used or removed. Limits: ``limits.py`` (sizes checked before creation, pages allocated
at creation).
"""

from ttxt_mp.shm.errors import (
    EventTooLarge,
    ProducerDied,
    RingError,
    RingExists,
    RingForeign,
    RingLayoutError,
    RingNotFound,
    RingPermissionError,
    RingTooLarge,
)
from ttxt_mp.shm.limits import max_ring_bytes
from ttxt_mp.shm.objects import RingObject, clean_objects, list_objects
from ttxt_mp.shm.queue import ShmConsumer, ShmPublisher, ShmQueue
from ttxt_mp.shm.stats import remove_ring, ring_stats

__all__ = [
    "EventTooLarge", "ProducerDied", "RingError", "RingExists", "RingForeign",
    "RingLayoutError", "RingNotFound", "RingObject", "RingPermissionError", "RingTooLarge",
    "ShmConsumer", "ShmPublisher", "ShmQueue", "clean_objects", "list_objects",
    "max_ring_bytes", "remove_ring", "ring_stats",
]  # fmt: skip
