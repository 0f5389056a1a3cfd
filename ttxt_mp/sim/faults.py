"""Fault requests: what to break, on which venue/connection, now or on a schedule."""

from __future__ import annotations

from typing import Literal

import msgspec

FaultKind = Literal["drop", "malformed", "skip_update", "stall", "delay"]


class FaultSpec(msgspec.Struct, forbid_unknown_fields=True):
    """One fault. Body of `POST /_sim/fault` and argument of `Simulator.fault`.

    - drop: abort the TCP connection, no close frame.
    - malformed: send one frame that is invalid JSON (mode="invalid_json") or valid JSON of an
      undocumented shape (mode="wrong_shape").
    - skip_update: omit the next `count` order-book delta frames (the venue's incremental
      depth stream) for `symbol` (any symbol if None), so the update ids jump.
    - stall: socket stays open; no frames, no pings, pings not answered, for `duration` s
      (forever if None).
    - delay: every outgoing frame is delayed by `delay_ms`, for `duration` s (forever if None).
    `venue` is a simulated venue's id (an unknown one: KeyError, HTTP 404). `conn_id` None
    targets every open connection of the venue. `after` delays the fault by that
    many seconds; `every` repeats it with that period, `times` times in all (1 = once).
    """

    venue: str
    kind: FaultKind
    conn_id: int | None = None
    symbol: str | None = None
    count: int = 1
    mode: Literal["invalid_json", "wrong_shape"] = "invalid_json"
    duration: float | None = None
    delay_ms: float = 0.0
    after: float = 0.0
    every: float | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.times < 1:
            raise ValueError("times must be >= 1")
        if self.after < 0 or (self.every is not None and self.every <= 0):
            raise ValueError("after must be >= 0 and every > 0")
        if self.kind == "delay" and self.delay_ms <= 0:
            raise ValueError("delay fault needs delay_ms > 0")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be > 0 (or null for forever)")
