"""``ToyConnector``: the toy exchange's public market data, a ttxt-mp ConnectorBase.

What a venue subclass provides (everything else, connection life-cycle, reconnects,
statuses, backlog, stats, state on join, is ConnectorBase's):

- ``_make_factory``: the web assistants (here without rate limits: a local toy);
- ``_load_symbols``: the instrument list (``GET /api/instruments``) as a SymbolMap;
- ``_make_normalizer``: frames -> events (:mod:`ttxt_toyvenue.protocol`);
- ``_ws_url`` / ``_subscribe`` / ``_heartbeat``: where to connect, what to send;
- ``_on_connected`` / ``_on_book`` / ``_on_disconnected``: the book sync. The syncs live
  in ``self.syncs`` (symbol -> an object with a ``book``, a ttxt-mp ``OrderBook``): that
  is where ConnectorBase's state on join takes the books a late consumer starts with.

Book sync (see the protocol docstring): a snapshot replaces the book; a delta must carry
``seq`` = book seq + 1 (an older one is dropped), else it is a gap: the book is dropped
(nothing more is published for it) and the book channel is subscribed again, which makes
the exchange send a fresh snapshot. No snapshot within ``resync_timeout()`` s: reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.normalizer import SymbolMap
from ttxt_mp.events import ConnectorState, Orderbook
from ttxt_mp.orderbook import OrderBook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    AppHeartbeat,
    RESTAssistant,
    WebAssistantFactory,
    WSAssistant,
    WSJSONRequest,
)
from ttxt_toyvenue import EXCHANGE
from ttxt_toyvenue.protocol import ToyDenormalizer, ToyNormalizer, symbols_from_instruments

__all__ = ["ToyBookSync", "ToyConnector"]

S = ConnectorState


class ToyBookSync:
    """The local book of one symbol under the toy exchange's ``seq`` rule."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = OrderBook(EXCHANGE, symbol, rules="none")
        self.resyncs = 0
        self.last_gap = ""

    @property
    def needs_resync(self) -> bool:
        return not self.book.synced

    def on_event(self, ev: Orderbook) -> list[Orderbook]:
        """A snapshot or delta -> the events to publish (none while out of sync)."""
        book = self.book
        if ev.is_snapshot:
            book.update(ev)
            return [ev]
        if not book.synced:
            return []
        seq, have = ev.last_update_id, book.update_id
        if seq <= have:
            return []  # old news
        if seq != have + 1:
            self.resyncs += 1
            self.last_gap = f"seq {seq} after {have} (missed {have + 1}..{seq - 1})"
            self.book = OrderBook(EXCHANGE, self.symbol, rules="none")  # unsynced, empty
            return []
        book.update(ev)
        return [ev]


class ToyConnector(ConnectorBase):
    """The toy exchange's connector; see the module docstring."""

    exchange = EXCHANGE

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, ToyBookSync] = {}
        self.denormalizer = ToyDenormalizer()
        self._ids = itertools.count(1)

    def resync_timeout(self) -> float:
        return max(5.0, 2 * self.cfg.heartbeat_timeout)

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return WebAssistantFactory(rest_base_url=self.cfg.rest_url(), rng=self._rng)

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        url = f"{self.cfg.rest_url().rstrip('/')}/api/instruments"
        resp = await rest.request("GET", url, raw=True)
        return symbols_from_instruments(resp.body)

    def _make_normalizer(self, symbols: SymbolMap) -> ToyNormalizer:
        self.denormalizer = ToyDenormalizer(symbols)
        return ToyNormalizer(symbols)

    def _ws_url(self) -> str:
        return f"{self.cfg.ws_url().rstrip('/')}/ws"

    async def _subscribe(self, ws: WSAssistant) -> None:
        streams = self.plan.streams(self.active_symbols)
        await self.send_frames(self.denormalizer.subscribe(streams, next(self._ids)))

    def _heartbeat(self) -> AppHeartbeat:
        interval = max(self.cfg.heartbeat_timeout / 3, 0.25)
        return AppHeartbeat(interval, lambda: WSJSONRequest({"op": "ping"}))

    # ------------------------------------------------------------------ books

    def _on_connected(self) -> None:
        if not self.plan.depth:
            return
        for sym in self.active_symbols:
            sync = self.syncs[sym] = ToyBookSync(sym)
            self.set_symbol_state(sym, S.RESYNCING, "new connection: waiting for the snapshot")
            self.spawn(self._expect_snapshot(sym, sync), name=f"snapshot {sym}")

    def _on_disconnected(self) -> None:
        self.syncs.clear()

    def _on_book(self, ev: Orderbook) -> None:
        sym = ev.symbol
        sync = self.syncs.get(sym)
        if sync is None:
            return
        before = sync.resyncs
        out = sync.on_event(ev)
        if out:
            self.publish_book(out)
            if self.symbol_states.get(sym) is not S.UP:
                self.set_symbol_state(sym, S.UP, f"book synced at seq {sync.book.update_id}")
            return
        if sync.resyncs != before:
            self.gaps += 1
            self.resyncs += 1
            self.set_symbol_state(sym, S.GAP, f"order book gap: {sync.last_gap}")
            self.set_symbol_state(sym, S.RESYNCING, "subscribing again for a fresh snapshot")
            self.spawn(self._resubscribe(sym, sync), name=f"resubscribe {sym}")

    async def _resubscribe(self, sym: str, sync: ToyBookSync) -> None:
        await self.send_frames(self.denormalizer.resubscribe_book(sym, next(self._ids)))
        await self._expect_snapshot(sym, sync)

    async def _expect_snapshot(self, sym: str, sync: ToyBookSync) -> None:
        timeout = self.resync_timeout()
        await asyncio.sleep(timeout)  # a deadline, not a synchronisation
        if self.syncs.get(sym) is sync and sync.needs_resync:
            self.request_reconnect(f"no book snapshot for {sym} within {timeout:g} s")
