"""Kraken Spot public market data connector (WebSocket API v2).

``<ws>/v2`` with one ``{"method": "subscribe", "params": {...}}`` request per channel (every
symbol in its list): ``book`` (``depth``, ``snapshot: true``), ``trade``, ``ohlc``
(``interval``) and with ``streams.book_ticker`` the ``ticker`` channel with
``event_trigger: "bbo"`` as ``BookTicker`` events. Kraken answers each symbol on its own; a
refused one (``success: false``) becomes an ERROR status naming it.

Books come in-band (a snapshot after subscribing, then updates) and are checked by
:class:`KrakenBookSync`: truncated to the subscribed depth and verified against each
message's CRC32 ``checksum`` (``[[connectors]] checksum = false`` turns the check off). On a
mismatch only that symbol's book is unsubscribed and subscribed again with
``snapshot: true`` (GAP, then RESYNCING, then UP when the snapshot checks out); updates in
between are dropped. If no snapshot comes within :meth:`resync_timeout` the connector
reconnects.

Liveness: Kraken sends ``{"channel": "heartbeat"}`` about once a second when no other
channel has data, so ``heartbeat_timeout`` s of silence means a stalled stream (reconnect);
``{"method": "ping"}`` is also sent every ``min(30, heartbeat_timeout / 2)`` s (its pong
proves the request path alive). Subscriptions: the documented request budget is a
per-connection message rate that varies with load ("Exceeded msg rate"), so the requests
(a handful: one per channel) are sent :data:`REQUEST_PAUSE_S` apart.

Symbols are validated against ``GET /0/public/AssetPairs`` at start (the instrument list,
fetched once per process; its ``pair_decimals`` / ``lot_decimals`` are the checksum's
precisions).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.kraken import rest as venue_rest
from ttxt_mp.connectors.kraken.checksum import BookChecksum
from ttxt_mp.connectors.kraken.normalizer import KrakenDenormalizer, KrakenNormalizer
from ttxt_mp.connectors.kraken.sync import KrakenBookSync
from ttxt_mp.connectors.normalizer import Stream, SymbolMap
from ttxt_mp.events import ConnectorState, Orderbook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    AppHeartbeat,
    RESTAssistant,
    WebAssistantFactory,
    WSAssistant,
    WSJSONRequest,
)

__all__ = ["KrakenConnector"]

S = ConnectorState

PING_INTERVAL_S = 30.0
MIN_PING_INTERVAL_S = 0.25
REQUEST_PAUSE_S = 0.02


class KrakenConnector(ConnectorBase):
    """Kraken Spot v2 connector; see the module docstring."""

    exchange = "kraken"

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, KrakenBookSync] = {}
        self.precisions: dict[str, tuple[int, int]] = {}
        self.checksum_mismatches = 0
        self._req_ids = itertools.count(1)
        self.denormalizer = KrakenDenormalizer()

    def resync_timeout(self) -> float:
        """Seconds to wait for a snapshot after (re)subscribing before reconnecting."""
        return max(5.0, 2 * self.cfg.heartbeat_timeout)

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return WebAssistantFactory(
            rate_limiter=venue_rest.rate_limiter(self.cfg.rest_url()),
            rest_base_url=self.cfg.rest_url(),
            rng=self._rng,
        )

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        insts = await venue_rest.instruments(rest, self.cfg.rest_url())
        self.precisions = {i.symbol: (i.price_precision, i.qty_precision) for i in insts}
        return SymbolMap.from_instruments(insts, exchange=self.exchange)

    def _make_normalizer(self, symbols: SymbolMap) -> KrakenNormalizer:
        self.denormalizer = KrakenDenormalizer(symbols)
        return KrakenNormalizer(symbols)

    def _ws_url(self) -> str:
        return f"{self.cfg.ws_url().rstrip('/')}/v2"

    async def _subscribe(self, ws: WSAssistant) -> None:
        streams = self.plan.streams(self.active_symbols)
        await self.send_frames(self.denormalizer.subscribe(streams, next(self._req_ids)),
                               pause=REQUEST_PAUSE_S)  # fmt: skip

    def _heartbeat(self) -> AppHeartbeat:
        interval = max(min(PING_INTERVAL_S, self.cfg.heartbeat_timeout / 2), MIN_PING_INTERVAL_S)
        return AppHeartbeat(
            interval, lambda: WSJSONRequest({"method": "ping", "req_id": next(self._req_ids)}))

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["checksum_mismatches"] = self.checksum_mismatches
        return out

    # ------------------------------------------------------------------ books

    def _check(self, sym: str) -> BookChecksum | None:
        if not self.cfg.checksum:
            return None
        return BookChecksum(*self.precisions[sym])

    def _on_connected(self) -> None:
        if not self.plan.depth:
            return
        for sym in self.active_symbols:
            self.syncs[sym] = KrakenBookSync(sym, self.plan.depth, self._check(sym))
            self.set_symbol_state(sym, S.RESYNCING, "new connection: waiting for the book "
                                  "snapshot")  # fmt: skip
            self.spawn(self._expect_snapshot(sym, self.syncs[sym]), name=f"snapshot {sym}")

    def _on_disconnected(self) -> None:
        self.syncs.clear()

    def _on_book(self, ev: Orderbook) -> None:
        sym = ev.symbol
        sync = self.syncs.get(sym)
        if sync is None:
            return
        before = sync.resyncs
        norm = self.normalizer
        out = sync.on_event(ev, norm.checksums.get(sym) if norm is not None else None)  # type: ignore[attr-defined]
        if out:
            self.publish_book(out)
            if self.symbol_states.get(sym) is not S.UP:
                checked = "checksum verified" if sync.check is not None else "checksum off"
                self.set_symbol_state(sym, S.UP, f"book synced ({checked})")
            return
        if sync.resyncs != before:
            self.gaps += 1
            self.resyncs += 1
            self.checksum_mismatches += 1
            self.set_symbol_state(sym, S.GAP, f"order book {sync.last_gap}")
            self.set_symbol_state(sym, S.RESYNCING, "resubscribing for a fresh snapshot")
            self.spawn(self._resubscribe(sym, sync), name=f"resubscribe {sym}")

    async def _resubscribe(self, sym: str, sync: KrakenBookSync) -> None:
        stream = [Stream("book", sym, depth=self.plan.depth)]
        frames = self.denormalizer.unsubscribe(stream, next(self._req_ids))
        frames += self.denormalizer.subscribe(stream, next(self._req_ids))
        await self.send_frames(frames, pause=REQUEST_PAUSE_S)
        await self._expect_snapshot(sym, sync)

    async def _expect_snapshot(self, sym: str, sync: KrakenBookSync) -> None:
        timeout = self.resync_timeout()
        await asyncio.sleep(timeout)
        if self.syncs.get(sym) is sync and sync.needs_resync:
            self.request_reconnect(f"no book snapshot for {sym} within {timeout:g} s of "
                                   "subscribing")  # fmt: skip
