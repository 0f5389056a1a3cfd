"""Lock-free shared-memory rings: one producer, many broadcast consumers (x86-64 only).

    from ttxt_mp.shm import ShmQueue
    with ShmQueue.create("eng1-trades", policy="overwrite") as q:   # producer process
        q.put(MarketTrades(...))
    with ShmQueue.attach("eng1-trades", start="oldest") as c:      # any consumer process
        for ev in c: ...

See ``ring.py`` for the memory-ordering argument and ``layout.py`` for the bytes.
"""

from ttxt_mp.shm.errors import (
    EventTooLarge,
    ProducerDied,
    RingError,
    RingExists,
    RingLayoutError,
    RingNotFound,
    RingPermissionError,
)
from ttxt_mp.shm.objects import RingObject, clean_objects, list_objects
from ttxt_mp.shm.queue import ShmConsumer, ShmPublisher, ShmQueue
from ttxt_mp.shm.stats import remove_ring, ring_stats

__all__ = [
    "EventTooLarge", "ProducerDied", "RingError", "RingExists", "RingLayoutError",
    "RingNotFound", "RingObject", "RingPermissionError", "ShmConsumer", "ShmPublisher",
    "ShmQueue", "clean_objects", "list_objects", "remove_ring", "ring_stats",
]  # fmt: skip
