"""In-band book resync per symbol: the shared logic of venues whose books come on the socket.

Such a venue sends a snapshot after a book is subscribed, then updates. Each symbol has a
sync object (``book``, ``resyncs``, ``last_gap``, ``needs_resync``, ``on_event``); when
``on_event`` counts a new resync (a gap, a checksum mismatch) only that symbol's book is
subscribed again, which makes the venue send a fresh snapshot (GAP, then RESYNCING, then
UP when the snapshot is in). No snapshot within :meth:`ConnectorBase.resync_timeout` s
after (re)subscribing: reconnect.

A venue subclass of :class:`InBandResyncConnector` provides :meth:`_new_sync`,
:meth:`_resubscribe_frames` (or overrides :meth:`_send_resubscribe`) and
:meth:`_synced_message`; the message texts are class attributes; :meth:`_feed_book` and
:meth:`_on_gap` are there for venue-specific inputs and counters.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any

from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.events import ConnectorState, Orderbook

__all__ = ["InBandResyncConnector"]

S = ConnectorState


class InBandResyncConnector(ConnectorBase):
    """A connector whose books resync per symbol by subscribing again; see the module."""

    waiting_message = "new connection: waiting for the book snapshot"
    """The RESYNCING status of each book after a new connection."""
    resubscribing_message = "resubscribing for a fresh snapshot"
    """The RESYNCING status after a gap."""
    no_snapshot_message = "no book snapshot for {symbol} within {timeout:g} s of subscribing"
    """The reconnect reason when a snapshot is late (``symbol``, ``timeout``)."""

    syncs: dict[str, Any]

    @abstractmethod
    def _new_sync(self, symbol: str) -> Any:
        """A fresh (unsynced) book sync for ``symbol``."""

    @abstractmethod
    def _synced_message(self, sync: Any) -> str:
        """The UP status of a book once it is synced."""

    def _gap_message(self, sync: Any) -> str:
        """The GAP status of a book that lost its sync."""
        return f"order book gap: {sync.last_gap}"

    def _feed_book(self, sync: Any, ev: Orderbook) -> list[Orderbook]:
        """One book event through the sync -> the events to publish."""
        return sync.on_event(ev)  # type: ignore[no-any-return]

    def _on_gap(self, sync: Any) -> None:  # noqa: B027 - optional hook
        """A resync was counted (after ``gaps`` / ``resyncs``, before the statuses)."""

    def _resubscribe_frames(self, symbol: str) -> list[bytes]:
        """The frames that subscribe ``symbol``'s book again."""
        raise NotImplementedError

    async def _send_resubscribe(self, symbol: str) -> None:
        """Send :meth:`_resubscribe_frames` (override to pace them)."""
        await self.send_frames(self._resubscribe_frames(symbol))

    # ------------------------------------------------------------------ the flow

    def _on_connected(self) -> None:
        if not self.plan.depth:
            return
        for sym in self.active_symbols:
            sync = self.syncs[sym] = self._new_sync(sym)
            self.set_symbol_state(sym, S.RESYNCING, self.waiting_message)
            self.spawn(self._expect_snapshot(sym, sync), name=f"snapshot {sym}")

    def _on_disconnected(self) -> None:
        self.syncs.clear()

    def _on_book(self, ev: Orderbook) -> None:
        sym = ev.symbol
        sync = self.syncs.get(sym)
        if sync is None:
            return
        before = sync.resyncs
        out = self._feed_book(sync, ev)
        if out:
            self.publish_book(out)
            if self.symbol_states.get(sym) is not S.UP:
                self.set_symbol_state(sym, S.UP, self._synced_message(sync))
            return
        if sync.resyncs != before:
            self.gaps += 1
            self.resyncs += 1
            self._on_gap(sync)
            self.set_symbol_state(sym, S.GAP, self._gap_message(sync))
            self.set_symbol_state(sym, S.RESYNCING, self.resubscribing_message)
            self.spawn(self._resubscribe(sym, sync), name=f"resubscribe {sym}")

    async def _resubscribe(self, sym: str, sync: Any) -> None:
        await self._send_resubscribe(sym)
        await self._expect_snapshot(sym, sync)

    async def _expect_snapshot(self, sym: str, sync: Any) -> None:
        timeout = self.resync_timeout()
        await asyncio.sleep(timeout)  # a deadline, not a synchronisation
        if self.syncs.get(sym) is sync and sync.needs_resync:
            self.request_reconnect(self.no_snapshot_message.format(symbol=sym, timeout=timeout))
