"""The events in a ``get_batch`` result: one ``(evno, kind, payload)`` per event.

``get_batch`` hands out slots; an event larger than a slot spans ``fcnt`` consecutive
slots (its fragments). Consumers that forward raw records (the recorder, the Redis bridge)
need whole payloads: one slot's payload is a zero-copy view, a fragmented event's is
joined once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["batch_events"]


def batch_events(recs: np.ndarray) -> list[tuple[int, int, Any]]:
    """``(evno, kind, payload)`` of each event in ``recs`` (views valid while ``recs`` is)."""
    evnos = recs["evno"].tolist()
    kinds, plens, fcnts = recs["kind"].tolist(), recs["plen"].tolist(), recs["fcnt"].tolist()
    ss = recs.dtype.itemsize
    po = recs.dtype.fields["payload"][1]
    mv = memoryview(recs.view(np.uint8))
    out: list[tuple[int, int, Any]] = []
    n = len(evnos)
    i = 0
    while i < n:
        fc = fcnts[i]
        base = i * ss + po
        if fc == 1:
            payload: Any = mv[base : base + plens[i]]
        else:
            payload = b"".join(mv[(i + k) * ss + po : (i + k) * ss + po + plens[i + k]]
                               for k in range(fc))  # fmt: skip
        out.append((evnos[i], kinds[i], payload))
        i += fc
    return out
