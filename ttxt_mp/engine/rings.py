"""The rings of one engine, owned by the supervisor for the engine's whole life.

The supervisor creates each connector's market ring (and a private ring for connectors
with credentials) and then hands the producer end over: a connector process adopts it,
and when that process dies the supervisor adopts it back just long enough to publish the
connector's DOWN status. The ring, its sequence numbers and its consumers' cursors
outlive any connector restart, which is why consumers never have to re-attach.

Every ring carries the engine's ``instance_id`` (consumers that attach by engine name
accept only rings carrying the one in the engine's lock file) and is created 0600, or
0660 shared with ``[engine] trading_group`` when one is configured (its members may then
read the market/private rings and trade).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from ttxt_mp.config import Config, RingConfig
from ttxt_mp.engine.naming import ring_name
from ttxt_mp.events import ConnectorState, ConnectorStatus

log = logging.getLogger("ttxt_mp.supervisor")


class EngineRings:
    def __init__(self, cfg: Config, instance_id: int = 0):
        self.cfg = cfg
        self.engine = cfg.engine.name
        self.instance_id = instance_id
        self.group = cfg.engine.trading_gid()
        self._rings: dict[str, tuple[str, RingConfig, str]] = {}  # name -> (conn, cfg, stream)
        for c in cfg.connectors:
            self._rings[ring_name(self.engine, c.id, "market")] = (c.id, cfg.rings.market, "market")
            if c.credentials is not None:
                self._rings[ring_name(self.engine, c.id, "private")] = (
                    c.id, cfg.rings.private, "private",
                )  # fmt: skip
        self._created: list[str] = []

    def names(self) -> list[str]:
        return list(self._rings)

    def kinds(self) -> list[int] | None:
        """The event kinds of the engine's rings: None (the library's) unless the config
        has ``[events] modules``, which its processes import when they load it; then
        every kind registered in this process, the library's and those custom ones."""
        from ttxt_mp import codec

        return codec.kinds() if self.cfg.events.modules else None

    def create(self) -> None:
        from ttxt_mp.shm import ShmQueue

        kinds = self.kinds()
        for name, (conn, rc, stream) in self._rings.items():
            meta = {"engine": self.engine, "connector": conn, "stream": stream,
                    "exchange": self._exchange(conn),
                    "symbols": self._symbols(conn)}  # fmt: skip
            pub = ShmQueue.create(name, rc.capacity, rc.slot_size, rc.policy, metadata=meta,
                                  keeper_pid=os.getpid(), max_consumers=rc.max_consumers,
                                  instance_id=self.instance_id, group=self.group,
                                  kinds=kinds)  # fmt: skip
            self._created.append(name)
            pub.put(ConnectorStatus(exchange=self._exchange(conn), state=ConnectorState.STARTING,
                                    message="engine started; connector process starting",
                                    local_ts=time.time_ns()))  # fmt: skip
            pub.release()  # the connector process adopts the producer end

    def _exchange(self, conn: str) -> str:
        return next(c.exchange for c in self.cfg.connectors if c.id == conn)

    def _symbols(self, conn: str) -> list[str]:
        return next(c.symbols for c in self.cfg.connectors if c.id == conn)

    def publish_status(self, conn: str, state: ConnectorState, message: str,
                       restarts: int = 0) -> None:  # fmt: skip
        """Publish a status into ``conn``'s market ring while its process is dead."""
        from ttxt_mp.shm import ShmQueue

        name = ring_name(self.engine, conn, "market")
        try:
            pub = ShmQueue.adopt(name, instance_id=self.instance_id or None)
        except Exception as e:  # the ring is gone or owned: nothing to tell consumers
            log.warning("cannot publish %s status for %s: %s", state.name, conn, e)
            return
        try:
            pub.put(ConnectorStatus(exchange=self._exchange(conn), state=state, message=message,
                                    reconnects=restarts, local_ts=time.time_ns()),
                    timeout=0.5)  # fmt: skip
        except Exception as e:
            log.warning("cannot publish %s status for %s: %s", state.name, conn, e)
        finally:
            pub.release()

    def stats(self) -> list[dict[str, Any]]:
        from ttxt_mp.shm import ring_stats

        out = []
        for name in self._created:
            try:
                out.append(ring_stats(name))
            except Exception as e:
                out.append({"name": name, "policy": "?", "capacity": 0, "published": 0,
                            "fill": 0.0, "consumers": [], "error": str(e)})  # fmt: skip
        return out

    def destroy(self) -> None:
        from ttxt_mp.shm import remove_ring

        for name in self._created:
            with contextlib.suppress(Exception):
                remove_ring(name)
        self._created.clear()
