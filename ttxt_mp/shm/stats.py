"""Read a ring's state from outside (supervisor, ``ttxt-mp status``, benchmarks) without
attaching: no consumer entry is taken, nothing is written. The ring is owner-checked like
an attach (another user's ring raises :class:`RingPermissionError`)."""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

from ttxt_mp.shm import layout as L
from ttxt_mp.shm.objects import pid_alive, remove_ring_objects
from ttxt_mp.shm.ring import _open_existing


def ring_stats(name: str, *, allow_gid: int | None = None) -> dict[str, Any]:
    """Policy, capacity, slots and events published, fill, producer and consumers."""
    shm = _open_existing(name, allow_gid=allow_gid)
    try:
        size = os.fstat(shm.fd).st_size
        mm = mmap.mmap(shm.fd, size, prot=mmap.PROT_READ)
    finally:
        shm.close_fd()
    try:
        hdr = np.frombuffer(mm, L.HEADER_DTYPE, 1)[0]
        cap, ss, data = int(hdr["capacity"]), int(hdr["slot_size"]), int(hdr["data_offset"])
        head = int(hdr["head"])
        events = 0
        if head:
            last = data + ((head - 1) & (cap - 1)) * ss
            events = int(np.frombuffer(mm, "<u8", 1, last + 8)[0]) + 1
        consumers = []
        for i in range(int(hdr["max_consumers"])):
            c = np.frombuffer(mm, L.CONSUMER_DTYPE, 1, L.consumer_offset(i))[0]
            if int(c["state"]) == L.STATE_ACTIVE:
                consumers.append({"pid": int(c["pid"]), "cursor": int(c["cursor"]),
                                  "lag": head - int(c["cursor"]), "lost": int(c["lost"]),
                                  "alive": pid_alive(int(c["pid"]))})  # fmt: skip
        lag = max((c["lag"] for c in consumers), default=0)
        out = {
            "name": name, "policy": "block" if int(hdr["policy"]) == L.POLICY_BLOCK else "overwrite",
            "capacity": cap, "slot_size": ss, "published": head, "events": events,
            "fill": min(1.0, lag / cap) if consumers else min(1.0, head / cap),
            "producer_pid": int(hdr["producer_pid"]), "keeper_pid": int(hdr["keeper_pid"]),
            "producer_uid": int(hdr["producer_uid"]), "instance_id": int(hdr["instance_id"]),
            "closed": bool(int(hdr["closed"])), "consumers": consumers,
            # block rings: live consumers a full ring waits for (what freezes a producer)
            "blocking": [c["pid"] for c in consumers if c["alive"] and c["lag"] >= cap]
            if int(hdr["policy"]) == L.POLICY_BLOCK else [],
        }  # fmt: skip
        del hdr, c
        return out
    finally:
        try:
            mm.close()
        except BufferError:  # a numpy view still alive; the GC unmaps it
            pass


def remove_ring(name: str) -> list[str]:
    """Unlink ring ``name`` and its FIFOs (mapped processes keep working); objects of
    another uid are left alone."""
    return remove_ring_objects(name)
