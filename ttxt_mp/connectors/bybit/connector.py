"""Bybit v5 public market data connector, spot or linear (``cfg.market``).

``/v5/public/{spot|linear}`` with ``{"op":"subscribe","args":[...]}`` (spot: at most 10
topics per request; linear: no count limit; both at most 21,000 characters of args):
``orderbook.{levels}.{SYMBOL}``, ``publicTrade.{SYMBOL}``,
``kline.{interval}.{SYMBOL}``, and with ``streams.book_ticker`` the level-1 book
``orderbook.1.{SYMBOL}`` as ``BookTicker`` events (the book's own topic when its depth is
1: then each message gives both); linear adds ``tickers.{SYMBOL}`` (``streams.mark_price`` /
``open_interest``: one topic, merged snapshot and deltas) and ``allLiquidation.{SYMBOL}``
(``streams.liquidations``). Books come in-band (a snapshot after subscribing, then
deltas) and are checked by :class:`BybitBookSync` (``u`` contiguous and never backwards,
``u == 1`` resets). On a gap the topic is unsubscribed and subscribed again, which makes
Bybit send a fresh snapshot; deltas in between are dropped. If no snapshot comes within
:meth:`resync_timeout` the connector reconnects.

Heartbeat: the docs ask for ``{"op":"ping"}`` every 20 s; it is sent every
``min(20, heartbeat_timeout / 2)`` s so its pong also proves a quiet stream alive, and no
frame for ``heartbeat_timeout`` s means a stalled stream (reconnect).

Symbols are validated against ``GET /v5/market/instruments-info?category=<market>`` at start
(linear: every page):
the instrument list trading uses too, fetched once per process, and the REST budget is the
process's one limiter for the host (:mod:`ttxt_mp.connectors.bybit.rest`).
"""

from __future__ import annotations

import itertools
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.bybit import rest as venue_rest
from ttxt_mp.connectors.bybit.normalizer import BybitDenormalizer, BybitNormalizer
from ttxt_mp.connectors.bybit.sync import BybitBookSync
from ttxt_mp.connectors.normalizer import Stream, SymbolMap
from ttxt_mp.connectors.resync import InBandResyncConnector
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    AppHeartbeat,
    RESTAssistant,
    WebAssistantFactory,
    WSAssistant,
    WSJSONRequest,
)

__all__ = ["BybitConnector"]

PING_INTERVAL_S = 20.0  # "Connect": send a ping heartbeat every 20 seconds
MIN_PING_INTERVAL_S = 0.25


class BybitConnector(InBandResyncConnector):
    """Bybit v5 spot or linear connector; see the module docstring."""

    exchange = "bybit"
    waiting_message = "new connection: waiting for the orderbook snapshot"
    no_snapshot_message = ("no orderbook snapshot for {symbol} within {timeout:g} s of "
                           "subscribing")  # fmt: skip

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, BybitBookSync] = {}
        self._req_ids = itertools.count(1)
        self.category = self.spec.market or "spot"  # REST category and WebSocket path
        self.denormalizer = BybitDenormalizer()

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        # "Rate Limit": 600 requests per 5 s per IP for HTTP (shared with trading).
        return self._rest_factory(venue_rest.rate_limiter(self.cfg.rest_url()))

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        """The market's instruments, shared with trading in this process."""
        insts = await venue_rest.instruments(rest, self.cfg.rest_url(), self.category)
        return SymbolMap.from_instruments(insts, exchange=self.exchange)

    def _make_normalizer(self, symbols: SymbolMap) -> BybitNormalizer:
        plan = self.plan
        max_args = BybitDenormalizer.MAX_ARGS if self.category == "spot" else None
        self.denormalizer = BybitDenormalizer(symbols, book_depth=plan.depth or 50,
                                              max_args=max_args)  # fmt: skip
        return BybitNormalizer(symbols, book_depth=plan.depth, book_ticker=plan.book_ticker,
                               mark_price=plan.mark_price,
                               open_interest=plan.open_interest)  # fmt: skip

    def _ws_url(self) -> str:
        return f"{self.cfg.ws_url().rstrip('/')}/v5/public/{self.category}"

    async def _subscribe(self, ws: WSAssistant) -> None:
        streams = self.plan.streams(self.active_symbols)
        await self.send_frames(self.denormalizer.subscribe(streams, next(self._req_ids)))

    def _heartbeat(self) -> AppHeartbeat:
        interval = max(min(PING_INTERVAL_S, self.cfg.heartbeat_timeout / 2), MIN_PING_INTERVAL_S)
        return AppHeartbeat(interval, lambda: WSJSONRequest({"op": "ping"}))

    # ------------------------------------------------------------------ books

    def _new_sync(self, symbol: str) -> BybitBookSync:
        return BybitBookSync(symbol)

    def _synced_message(self, sync: BybitBookSync) -> str:
        return f"book synced at u={sync.book.update_id}"

    def _resubscribe_frames(self, symbol: str) -> list[bytes]:
        stream = [Stream("book", symbol, depth=self.plan.depth)]
        rid = next(self._req_ids)
        return (self.denormalizer.unsubscribe(stream, f"u{rid}")
                + self.denormalizer.subscribe(stream, f"s{rid}"))  # fmt: skip
