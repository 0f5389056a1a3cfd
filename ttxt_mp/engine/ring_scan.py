"""Finding an engine's rings to consume, trusting only the genuine ones.

Shared by the engine recorder and the Redis bridge: both attach to every ring of an engine
as it appears. Only rings of this uid qualify, and while the engine runs only rings carrying
its instance id (from its lock file), so a ring planted under the engine's name is never
read. A refusal is logged once per ring and distinct reason, not on every scan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container

from ttxt_mp.engine.naming import RingName, discover, read_engine
from ttxt_mp.trust import UntrustedObject

__all__ = ["RingScan"]


class RingScan:
    """New rings of ``engine`` on ``streams``; ``doing`` names the consumer in warnings
    (``"not recording"``, ``"bridge redis0: not publishing"``)."""

    def __init__(self, engine: str, streams: tuple[str, ...], doing: str,
                 log: logging.Logger) -> None:  # fmt: skip
        self.engine = engine
        self.streams = streams
        self.doing = doing
        self.log = log
        self._refused: dict[str, str] = {}

    def new(self, known: Container[str], key: Callable[[RingName], str] = lambda r: r.name,
            ) -> tuple[list[RingName], int | None]:  # fmt: skip
        """The rings whose ``key`` is not in ``known``, and the instance id to attach them
        with (None while no engine of that name runs); none if the engine's lock file is
        not trusted."""
        rings = [r for r in discover(self.engine, self.streams) if key(r) not in known]
        if not rings:
            return [], None
        try:
            info = read_engine(self.engine)
        except UntrustedObject as e:
            self.refuse(f"{self.engine}.lock", str(e))
            return [], None
        return rings, (info.instance_id if info is not None and info.alive else None)

    def refuse(self, name: str, why: str) -> None:
        """Log a refused ring once per distinct reason."""
        if self._refused.get(name) != why:
            self._refused[name] = why
            self.log.warning("%s %s: %s", self.doing, name, why)
