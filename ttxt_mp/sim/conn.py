"""A simulated WebSocket connection: an outbound queue drained by one writer task, plus the fault
state (drop, malformed frame, skipped depth update, stall, delay) every venue shares."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

_ids = itertools.count(1)

MALFORMED_FRAMES = {
    # Truncated JSON: not parseable at all.
    "invalid_json": b'{"e":"depthUpdate","E":17000000000',
    # Valid JSON of a shape neither venue documents for a data frame.
    "wrong_shape": b'{"unexpected":[1,2,3],"data":"not-an-object"}',
}


class SimConnection:
    """Server side of one client WebSocket."""

    def __init__(self, venue: str, path: str, ws: web.WebSocketResponse, request: web.Request,
                 max_queue: int) -> None:
        self.id = next(_ids)
        self.venue = venue
        self.path = path
        self.ws = ws
        self.transport = request.transport
        self.max_queue = max_queue
        self.opened = time.monotonic()
        self.closed = False
        self.close_reason = ""
        self.subscriptions: dict[str, Any] = {}  # stream/topic name -> venue-specific state
        self.delay_s = 0.0
        self.stalled_until = 0.0
        self.skip_depth: dict[str | None, int] = {}  # symbol (None = any) -> frames to omit
        self.sent_frames = 0
        self._queue: deque[tuple[float, bytes]] = deque()
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._timers: list[asyncio.TimerHandle] = []

    # ------------------------------------------------------------ sending

    @property
    def stalled(self) -> bool:
        return self.stalled_until > time.monotonic()

    def send(self, data: bytes, depth_symbol: str | None = None) -> None:
        """Queue one text frame. `depth_symbol` marks order-book deltas (skip-update fault)."""
        if self.closed:
            return
        if depth_symbol is not None and self.skip_depth and self._take_skip(depth_symbol):
            return
        if self.stalled:
            return
        if len(self._queue) >= self.max_queue:
            self.abort("send queue overflow (slow consumer)")
            return
        self._queue.append((time.monotonic() + self.delay_s if self.delay_s else 0.0, data))
        self._wake.set()

    def _take_skip(self, symbol: str) -> bool:
        for key in (symbol, None):
            n = self.skip_depth.get(key, 0)
            if n > 0:
                if n == 1:
                    del self.skip_depth[key]
                else:
                    self.skip_depth[key] = n - 1
                return True
        return False

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while not self.closed:
                if not queue or self.stalled:
                    self._wake.clear()
                    if self.stalled:
                        await asyncio.sleep(min(0.05, self.stalled_until - time.monotonic()))
                        continue
                    await self._wake.wait()
                    continue
                due, data = queue[0]
                if due:
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue
                queue.popleft()
                await ws.send_frame(data, WSMsgType.TEXT)
                self.sent_frames += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    # ------------------------------------------------------------ faults

    def abort(self, reason: str = "dropped") -> None:
        """Abrupt close: the TCP connection is reset, no close frame is sent."""
        self.closed = True
        self.close_reason = reason
        if self.transport is not None:
            self.transport.abort()
        self._wake.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Orderly close with a close frame (timeouts, protocol violations)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason or f"closed {code}"
        self._wake.set()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()

    def inject_malformed(self, mode: str = "invalid_json") -> None:
        if mode not in MALFORMED_FRAMES:
            raise ValueError(f"malformed mode must be one of {sorted(MALFORMED_FRAMES)}, got {mode!r}")
        if self.closed:
            return
        self._queue.append((0.0, MALFORMED_FRAMES[mode]))
        self._wake.set()

    def stall(self, duration: float | None) -> None:
        """No frames out, no pings sent, no pings answered, for `duration` s (None: forever)."""
        self.stalled_until = math.inf if duration is None else time.monotonic() + duration
        self._queue.clear()

    def set_delay(self, delay_ms: float, duration: float | None) -> None:
        self.delay_s = delay_ms / 1000.0
        if duration is not None:
            self._timers.append(
                asyncio.get_running_loop().call_later(duration, self._clear_delay)
            )

    def _clear_delay(self) -> None:
        self.delay_s = 0.0

    def skip_updates(self, symbol: str | None, count: int = 1) -> None:
        key = symbol.upper() if symbol else None
        self.skip_depth[key] = self.skip_depth.get(key, 0) + count

    def finish(self) -> None:
        """Called when the handler returns: stop the writer and timers."""
        self.closed = True
        self._wake.set()
        self._writer.cancel()
        for t in self._timers:
            t.cancel()

    @property
    def queued(self) -> int:
        """Frames waiting for the writer task (blast mode lets these go first)."""
        return len(self._queue)

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "venue": self.venue,
            "path": self.path,
            "subscriptions": sorted(self.subscriptions),
            "stalled": self.stalled,
            "delay_ms": self.delay_s * 1000.0,
            "sent_frames": self.sent_frames,
            "queued": len(self._queue),
        }
