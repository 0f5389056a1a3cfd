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

import itertools
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.kraken import rest as venue_rest
from ttxt_mp.connectors.kraken.checksum import BookChecksum
from ttxt_mp.connectors.kraken.normalizer import KrakenDenormalizer, KrakenNormalizer
from ttxt_mp.connectors.kraken.sync import KrakenBookSync
from ttxt_mp.connectors.normalizer import Stream, SymbolMap
from ttxt_mp.connectors.resync import InBandResyncConnector
from ttxt_mp.events import Orderbook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    AppHeartbeat,
    RESTAssistant,
    WebAssistantFactory,
    WSAssistant,
    WSJSONRequest,
)

__all__ = ["KrakenConnector"]

PING_INTERVAL_S = 30.0
MIN_PING_INTERVAL_S = 0.25
REQUEST_PAUSE_S = 0.02


class KrakenConnector(InBandResyncConnector):
    """Kraken Spot v2 connector; see the module docstring."""

    exchange = "kraken"

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, KrakenBookSync] = {}
        self.precisions: dict[str, tuple[int, int]] = {}
        self.checksum_mismatches = 0
        self._req_ids = itertools.count(1)
        self.denormalizer = KrakenDenormalizer()

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return self._rest_factory(venue_rest.rate_limiter(self.cfg.rest_url()))

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

    def _new_sync(self, symbol: str) -> KrakenBookSync:
        return KrakenBookSync(symbol, self.plan.depth, self._check(symbol))

    def _feed_book(self, sync: KrakenBookSync, ev: Orderbook) -> list[Orderbook]:
        norm = self.normalizer
        return sync.on_event(ev, norm.checksums.get(ev.symbol) if norm is not None else None)  # type: ignore[attr-defined]

    def _synced_message(self, sync: KrakenBookSync) -> str:
        checked = "checksum verified" if sync.check is not None else "checksum off"
        return f"book synced ({checked})"

    def _gap_message(self, sync: KrakenBookSync) -> str:
        return f"order book {sync.last_gap}"

    def _on_gap(self, sync: KrakenBookSync) -> None:
        self.checksum_mismatches += 1

    async def _send_resubscribe(self, symbol: str) -> None:
        stream = [Stream("book", symbol, depth=self.plan.depth)]
        frames = self.denormalizer.unsubscribe(stream, next(self._req_ids))
        frames += self.denormalizer.subscribe(stream, next(self._req_ids))
        await self.send_frames(frames, pause=REQUEST_PAUSE_S)
