"""Command ring discovery: the connector finds each trading client's command ring in
``/dev/shm`` (only rings it may trust) and feeds it to the session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import stat
from typing import Any

from ttxt_mp.connectors.trading.session import TradingSession
from ttxt_mp.trust import UntrustedObject

__all__ = ["CommandRings", "DISCOVERY_INTERVAL_S"]

log = logging.getLogger("ttxt_mp.trading")

DISCOVERY_INTERVAL_S = 0.5

_CLIENT = re.compile(r"^[A-Za-z0-9_]+$")  # excludes the rings' wake-up FIFOs (``.w0``)


class CommandRings:
    """Finds the command rings of one connector and feeds them to a session."""

    def __init__(self, engine: str, connector_id: str, session: TradingSession,
                 interval: float = DISCOVERY_INTERVAL_S, *,
                 trading_gid: int | None = None) -> None:  # fmt: skip
        from ttxt_mp.engine.naming import command_ring_name

        self.session = session
        self.interval = interval
        self.trading_gid = trading_gid
        self.prefix = "ttxt-" + command_ring_name(engine, connector_id, "")
        self.attached: dict[str, Any] = {}
        self.finished: set[str] = set()  # ring ids drained to the end (producer gone)
        self.refused: dict[str, tuple[int, int]] = {}  # name -> (dev, ino) warned about once

    def scan(self) -> list[str]:
        from ttxt_mp.engine.naming import SHM_DIR

        try:
            entries = os.listdir(SHM_DIR)
        except OSError:
            return []
        n = len(self.prefix)
        return sorted(e[len("ttxt-"):] for e in entries
                      if e.startswith(self.prefix) and _CLIENT.match(e[n:]))  # fmt: skip

    def attach_new(self) -> int:
        from ttxt_mp.shm import RingError, ShmQueue

        added = 0
        for name in self.scan():
            if name in self.attached:
                continue
            why = self._untrusted(name)
            if why is not None:
                self._refuse(name, why)
                continue
            try:
                ring = ShmQueue.attach(name, start="oldest", allow_gid=self.trading_gid)
            except UntrustedObject as e:  # checked again on the fd: it changed meanwhile
                self._refuse(name, str(e))
                continue
            except (RingError, OSError, ValueError) as e:
                log.debug("cannot attach command ring %s: %s", name, e)
                continue
            meta = ring.metadata if isinstance(ring.metadata, dict) else {}
            key = str(meta.get("ring_id") or name)
            if key in self.finished:
                ring.close()
                continue
            self.attached[name] = ring

            def ended(name: str = name, key: str = key, ring: Any = ring) -> None:
                self.attached.pop(name, None)
                self.finished.add(key)
                with contextlib.suppress(Exception):
                    ring.close()

            self.session.add_source(ring, key, ended)
            log.info("attached command ring %s (client %s)", name, meta.get("client", "?"))
            added += 1
        return added

    def _untrusted(self, name: str) -> str | None:
        """Why ring ``name`` may not send orders, or None if it may.

        Why: a command ring is an order entry with the engine's API keys. Only rings of
        the engine's own uid are accepted, and, only when ``[engine] trading_group`` is
        configured, rings whose group is that group (never anything open to others).
        The shm layer checks the same on the opened fd, so a swap after this lstat
        gains nothing; this pre-check keeps foreign rings from being opened at all."""
        from ttxt_mp.engine.naming import SHM_DIR

        path = SHM_DIR / f"ttxt-{name}"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None  # gone: attach will say so (debug)
        mode = stat.S_IMODE(st.st_mode)
        me = os.geteuid()
        who = f"owned by uid {st.st_uid}, gid {st.st_gid}, mode {mode:04o}"
        allowed = f"only uid {me}" + (f" or group {self.trading_gid}"
                                      if self.trading_gid is not None else "")  # fmt: skip
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is not a shared-memory object ({who})"
        group_ok = self.trading_gid is not None and st.st_gid == self.trading_gid
        if st.st_uid != me and not group_ok:
            return f"{who}; {allowed} may trade through this engine"
        if mode & 0o007 or (mode & 0o070 and not group_ok):
            return f"{who}; it is open to other users ({allowed} may trade)"
        return None

    def _refuse(self, name: str, why: str) -> None:
        """One WARNING per ring instance (not per scan), naming the ring and its owner."""
        from ttxt_mp.engine.naming import SHM_DIR

        try:
            st = os.lstat(SHM_DIR / f"ttxt-{name}")
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = (0, 0)
        if self.refused.get(name) == ident:
            return
        self.refused[name] = ident
        log.warning("ignoring command ring %s: %s", name, why)

    async def run(self) -> None:
        await self.session.ready.wait()
        try:
            while True:
                try:
                    self.attach_new()
                except Exception:  # discovery trouble must not drop the attached rings
                    log.exception("command ring discovery failed")
                await asyncio.sleep(self.interval)
        finally:
            for ring in list(self.attached.values()):
                with contextlib.suppress(Exception):
                    ring.close()
            self.attached.clear()
