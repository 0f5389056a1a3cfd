"""Coinbase Advanced Trade public market data connector (spot).

``wss://advanced-trade-ws.coinbase.com``, no authentication (the public channels need none;
"Advanced Trade WebSocket Channels"). One subscribe message per channel, each with every
``product_ids`` (:class:`~.normalizer.CoinbaseDenormalizer`): ``level2`` (the book, the
whole depth), ``market_trades``, ``candles`` (5-minute klines), ``ticker`` (with
``streams.book_ticker``: best bid/offer), and ``heartbeats``, which "keep all
subscriptions open" (quiet channels otherwise close within 60-90 s) and, once a second,
prove the socket alive: no frame for ``heartbeat_timeout`` s is a stalled stream
(reconnect). Client messages are paced to the documented 8 per second per IP.

Books: ``level2`` snapshot, then updates. Every message of the connection carries the
next ``sequence_num``; a skipped one means lost messages, of unknown product, so every
book of the connection goes GAP then RESYNCING (counted once in ``gaps``, per book in
``resyncs``) and ``level2`` is unsubscribed and subscribed again for those products,
which brings fresh snapshots; trades, candles and tickers keep flowing. No snapshot
within :meth:`resync_timeout` s: reconnect.

Symbols are validated against ``GET /api/v3/brokerage/market/products`` at start
(:mod:`ttxt_mp.connectors.coinbase.rest`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.coinbase import rest as venue_rest
from ttxt_mp.connectors.coinbase.normalizer import CoinbaseDenormalizer, CoinbaseNormalizer
from ttxt_mp.connectors.coinbase.sync import CoinbaseBookSync
from ttxt_mp.connectors.normalizer import Stream, SymbolMap
from ttxt_mp.events import ConnectorState, Orderbook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import RESTAssistant, WebAssistantFactory, WSAssistant, WSResponse

__all__ = ["CoinbaseConnector", "MESSAGES_PER_SEC"]

S = ConnectorState

MESSAGES_PER_SEC = 8  # "WebSocket Rate Limits": unauthenticated messages, 8 per second per IP


class CoinbaseConnector(ConnectorBase):
    """Coinbase Advanced Trade spot connector; see the module docstring."""

    exchange = "coinbase"

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, CoinbaseBookSync] = {}
        self.denormalizer = CoinbaseDenormalizer()
        self._sent: deque[float] = deque()  # send times of the last client messages
        self._gaps_seen = 0

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return self._rest_factory(venue_rest.rate_limiter(self.cfg.rest_url()))

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        insts = await venue_rest.instruments(rest, self.cfg.rest_url())
        return SymbolMap.from_instruments(insts, exchange=self.exchange)

    def _make_normalizer(self, symbols: SymbolMap) -> CoinbaseNormalizer:
        self.denormalizer = CoinbaseDenormalizer(symbols)
        return CoinbaseNormalizer(symbols)

    def _ws_url(self) -> str:
        return self.cfg.ws_url().rstrip("/") + "/"

    async def _subscribe(self, ws: WSAssistant) -> None:
        streams = self.plan.streams(self.active_symbols)
        await self._send_paced(self.denormalizer.subscribe(streams, heartbeats=True))

    async def _send_paced(self, frames: list[bytes]) -> None:
        """Send ``frames`` keeping to :data:`MESSAGES_PER_SEC` in any rolling second."""
        sent = self._sent
        for frame in frames:
            while True:
                now = time.monotonic()
                while sent and now - sent[0] >= 1.0:
                    sent.popleft()
                if len(sent) < MESSAGES_PER_SEC:
                    break
                await asyncio.sleep(1.0 - (now - sent[0]) + 0.005)
            await self.send_frames([frame])
            sent.append(time.monotonic())

    # ------------------------------------------------------------------ frames

    def _handle_frame(self, resp: WSResponse) -> None:
        super()._handle_frame(resp)
        self._check_sequence()

    def _check_sequence(self) -> None:
        """A skipped ``sequence_num`` since the last look: resync every book."""
        norm = self.normalizer
        if norm is None or norm.sequence.gaps == self._gaps_seen:
            return
        self._gaps_seen = norm.sequence.gaps
        self.gaps += 1
        why = norm.sequence.last_gap
        lost = [s for s in self.active_symbols if s in self.syncs]
        for sym in lost:
            self.syncs[sym].lost()
            self.resyncs += 1
            self.set_symbol_state(sym, S.GAP, f"order book gap: {why}")
            self.set_symbol_state(sym, S.RESYNCING, "resubscribing level2 for a fresh snapshot")
        if lost:
            self.spawn(self._resubscribe(lost), name="resubscribe level2")

    # ------------------------------------------------------------------ books

    def _on_connected(self) -> None:
        if self.normalizer is not None:
            self.normalizer.sequence.reset()
            self._gaps_seen = self.normalizer.sequence.gaps
        if not self.plan.depth:
            return
        for sym in self.active_symbols:
            self.syncs[sym] = CoinbaseBookSync(sym)
            self.set_symbol_state(sym, S.RESYNCING, "new connection: waiting for the level2 "
                                  "snapshot")  # fmt: skip
        self.spawn(self._expect_snapshots(list(self.active_symbols)), name="level2 snapshots")

    def _on_disconnected(self) -> None:
        self.syncs.clear()

    def _on_book(self, ev: Orderbook) -> None:
        self._check_sequence()  # a loss seen in this very frame: its updates are not trusted
        sym = ev.symbol
        sync = self.syncs.get(sym)
        if sync is None:
            return
        out = sync.on_event(ev)
        if out:
            self.publish_book(out)
            if self.symbol_states.get(sym) is not S.UP:
                self.set_symbol_state(sym, S.UP, "book synced from the level2 snapshot")

    async def _resubscribe(self, symbols: list[str]) -> None:
        streams = [Stream("book", s, depth=self.plan.depth) for s in symbols]
        await self._send_paced(self.denormalizer.unsubscribe(streams)
                               + self.denormalizer.subscribe(streams))  # fmt: skip
        await self._expect_snapshots(symbols)

    async def _expect_snapshots(self, symbols: list[str]) -> None:
        timeout = self.resync_timeout()
        syncs = {s: self.syncs.get(s) for s in symbols}
        await asyncio.sleep(timeout)
        late = [s for s, sync in syncs.items()
                if sync is not None and self.syncs.get(s) is sync and sync.needs_resync]  # fmt: skip
        if late:
            self.request_reconnect(f"no level2 snapshot for {', '.join(late)} within "
                                   f"{timeout:g} s of subscribing")  # fmt: skip
