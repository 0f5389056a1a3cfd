"""Binance public market data connectors: Spot (:class:`BinanceConnector`) and USDⓈ-M
futures (:class:`BinanceLinearConnector`, market ``linear``; what differs is below).

Streams (Binance "Web Socket Streams"): the combined endpoint ``/stream?streams=a/b/c``
when the names fit in a URL, else ``/stream`` plus ``SUBSCRIBE`` requests (at most
:data:`MAX_PARAMS_PER_SUBSCRIBE` names each, spaced to stay under the documented 5
incoming messages per second). Diff depth ``<sym>@depth@100ms`` is synced as the docs'
"How to manage a local order book correctly" says, by :class:`BinanceBookSync` and
``GET /api/v3/depth?limit=<levels>`` (weight 5/25/50/250 by limit, charged to the
REQUEST_WEIGHT limit of 6000 per minute); ``@trade`` (``@aggTrade`` instead with
``streams.agg_trades``), ``@kline_<interval>`` and, with ``streams.book_ticker``,
``@bookTicker`` (best bid/offer on every change, as ``BookTicker`` events).

Liveness: the server pings every 20 s (aiohttp answers), but pings are not data frames
and a quiet symbol may send nothing for long, so a ``LIST_SUBSCRIPTIONS`` request every
``heartbeat_timeout / 2`` s gets a reply that proves the stream is alive; no reply for
``heartbeat_timeout`` means a stalled stream, and the connector reconnects.

Symbols are validated against ``GET /api/v3/exchangeInfo`` at start: the instrument list
trading uses too, fetched once per process, and the REST budget is the process's one
limiter for the host (:mod:`ttxt_mp.connectors.binance.rest`).

USDⓈ-M futures (``fstream.binance.com`` / ``fapi.binance.com``, same stream protocol with
10 incoming messages per second): instruments from ``GET /fapi/v1/exchangeInfo``
(``BTCUSDT`` -> ``BTC/USDT:USDT``), snapshots from ``GET /fapi/v1/depth`` (weight
2/5/10/20 by limit, REQUEST_WEIGHT 2400 per minute) synced by the futures rule of the
docs' procedure (first event ``U <= lastUpdateId <= u``, then ``pu`` == previous ``u``;
:mod:`ttxt_mp.connectors.binance.book_rule`); trades always from ``@aggTrade`` (the
futures public trade stream); ``streams.mark_price`` -> ``@markPrice@1s``,
``streams.liquidations`` -> ``@forceOrder``; ``streams.open_interest`` has no stream:
``GET /fapi/v1/openInterest`` (weight 1) per symbol every :data:`OPEN_INTEREST_POLL_S`
(slower with many symbols, see :meth:`BinanceLinearConnector.open_interest_interval`),
published when its value or time changed.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.binance import rest as venue_rest
from ttxt_mp.connectors.binance.normalizer import BinanceDenormalizer, BinanceNormalizer
from ttxt_mp.connectors.binance.sync import BinanceBookSync
from ttxt_mp.connectors.normalizer import MalformedFrame, Stream, SymbolMap
from ttxt_mp.events import ConnectorState, OpenInterest, Orderbook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    AppHeartbeat,
    Backoff,
    RESTAssistant,
    WebAssistantFactory,
    WebError,
    WSAssistant,
    WSJSONRequest,
)

__all__ = ["BinanceConnector", "BinanceLinearConnector", "depth_weight", "futures_depth_weight"]

S = ConnectorState

MAX_URL_STREAMS = 200
"""Beyond this many streams the names go in SUBSCRIBE requests instead of the URL."""
MAX_PARAMS_PER_SUBSCRIBE = 200
SUBSCRIBE_SPACING_S = 0.25  # "5 incoming messages per second" (pings, pongs, JSON requests)
MIN_PROBE_INTERVAL_S = 0.5  # <= 2 probes/s + pongs stay under the 5 messages/s limit
SNAPSHOT_WAIT_FIRST_DIFF_S = 1.0


OPEN_INTEREST_POLL_S = 3.0
"""Seconds between two open-interest requests for a symbol (few symbols)."""
OPEN_INTEREST_WEIGHT_PER_MIN = 600
"""At most this much of the 2400 per minute REQUEST_WEIGHT goes to open interest: with
many symbols each is polled less often (snapshots must still get through)."""


def depth_weight(limit: int) -> int:
    """Request weight of GET /api/v3/depth by limit (Binance Spot REST docs)."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def futures_depth_weight(limit: int) -> int:
    """Request weight of GET /fapi/v1/depth by limit (USDⓈ-M "Order Book": 5, 10, 20, 50:
    2; 100: 5; 500: 10; 1000: 20)."""
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


class BinanceConnector(ConnectorBase):
    """Binance Spot connector; see the module docstring."""

    exchange = "binance"
    market = "spot"
    depth_path = "/api/v3/depth"
    depth_weight = staticmethod(depth_weight)

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, BinanceBookSync] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._first_diff: dict[str, asyncio.Event] = {}
        self._probe_ids = itertools.count(1)
        self.snapshot_retries = 0
        self.denormalizer = BinanceDenormalizer()

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return WebAssistantFactory(
            rate_limiter=venue_rest.rate_limiter(self.cfg.rest_url(), self.market),
            rest_base_url=self.cfg.rest_url(),
            rng=self._rng,
        )

    def _url(self, path: str) -> str:
        return f"{self.cfg.rest_url().rstrip('/')}{path}"

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        """exchangeInfo for the planned symbols (the full list if one is unknown), shared
        with trading in this process."""
        insts = await venue_rest.instruments(rest, self.cfg.rest_url(), self.plan.symbols,
                                             market=self.market)  # fmt: skip
        return SymbolMap.from_instruments(insts, exchange=self.exchange)

    def _make_normalizer(self, symbols: SymbolMap) -> BinanceNormalizer:
        self.denormalizer = BinanceDenormalizer(symbols)
        return BinanceNormalizer(symbols)

    def _topics(self) -> list[str]:
        streams = (self._wire_stream(s) for s in self.plan.streams(self.active_symbols))
        return [self.denormalizer.topic(s) for s in streams if s is not None]

    def _wire_stream(self, s: Stream) -> Stream | None:
        """The stream subscribed for a planned one (None: not a WebSocket stream). Binance's
        diff stream is one (full-depth) stream; ``plan.depth`` is the REST limit."""
        return msgspec.structs.replace(s, depth=0) if s.channel == "book" else s

    def _ws_url(self) -> str:
        base = self.cfg.ws_url().rstrip("/")
        topics = self._topics()
        if len(topics) <= MAX_URL_STREAMS:
            return f"{base}/stream?streams={'/'.join(topics)}"
        return f"{base}/stream"

    async def _subscribe(self, ws: WSAssistant) -> None:
        topics = self._topics()
        if len(topics) <= MAX_URL_STREAMS:
            return  # already named in the URL
        chunks = [topics[i : i + MAX_PARAMS_PER_SUBSCRIBE]
                  for i in range(0, len(topics), MAX_PARAMS_PER_SUBSCRIBE)]  # fmt: skip
        frames = [
            msgspec.json.encode({"method": "SUBSCRIBE", "params": c, "id": n})
            for n, c in enumerate(chunks, 1)
        ]
        await self.send_frames(frames, pause=SUBSCRIBE_SPACING_S)

    def _heartbeat(self) -> AppHeartbeat:
        ids = self._probe_ids

        def probe() -> WSJSONRequest:
            return WSJSONRequest({"method": "LIST_SUBSCRIPTIONS", "id": 1_000_000 + next(ids)})

        return AppHeartbeat(max(self.cfg.heartbeat_timeout / 2, MIN_PROBE_INTERVAL_S), probe)

    # ------------------------------------------------------------------ books

    def _on_connected(self) -> None:
        if not self.plan.depth:
            return
        for sym in self.active_symbols:
            self.syncs[sym] = BinanceBookSync(sym)
            self._first_diff[sym] = asyncio.Event()
            self.set_symbol_state(sym, S.RESYNCING, "new connection: buffering diffs, "
                                  "fetching a depth snapshot")  # fmt: skip
            self._start_fetch(sym)

    def _on_disconnected(self) -> None:
        self.syncs.clear()
        self._fetching.clear()
        self._first_diff.clear()

    def _on_book(self, ev: Orderbook) -> None:
        sync = self.syncs.get(ev.symbol)
        if sync is None:
            return  # a book we did not ask for (or no book planned)
        before = sync.resyncs
        out = sync.on_diff(ev)
        if out:
            self.publish_book(out)
            return
        first = self._first_diff.get(ev.symbol)
        if first is not None:
            first.set()
        if sync.resyncs != before:
            self.gaps += 1
            self.resyncs += 1
            self.set_symbol_state(ev.symbol, S.GAP, f"order book gap: {sync.last_gap}")
            self.set_symbol_state(ev.symbol, S.RESYNCING, "resyncing after the gap: "
                                  "fetching a new depth snapshot")  # fmt: skip
        if sync.needs_snapshot:
            self._start_fetch(ev.symbol)

    def _start_fetch(self, sym: str) -> None:
        task = self._fetching.get(sym)
        if task is not None and not task.done():
            return
        self._fetching[sym] = self.spawn(self._fetch_snapshot(sym), name=f"snapshot {sym}")

    async def _fetch_snapshot(self, sym: str) -> None:
        """REST snapshot until one is accepted (buffer first, as the docs say)."""
        sync = self.syncs[sym]
        first = self._first_diff[sym]
        if sync.buffered == 0:
            # a quiet book may send nothing: then any later diff is checked against the
            # snapshot id. (asyncio.wait, not wait_for, never swallows a cancellation.)
            waiter = asyncio.ensure_future(first.wait())
            try:
                await asyncio.wait({waiter}, timeout=SNAPSHOT_WAIT_FIRST_DIFF_S)
            finally:
                waiter.cancel()
        rest = self.factory.get_rest_assistant()
        assert self.normalizer is not None
        native = self.symbol_map.native(sym) if self.symbol_map else sym.replace("/", "")
        limit = self.plan.depth
        retry = Backoff(0.05, max(self.cfg.reconnect_backoff_max, 0.05), rng=self._rng)
        while sync.needs_snapshot:
            try:
                resp = await rest.request(
                    "GET", self._url(self.depth_path), params={"symbol": native, "limit": limit},
                    weight=self.depth_weight(limit), raw=True,
                )  # fmt: skip
                snap = self.normalizer.normalize_snapshot(resp.body, sym)
            except (WebError, MalformedFrame) as exc:
                self._error_status(f"depth snapshot for {sym} failed: {exc}", sym)
                await asyncio.sleep(retry.next_delay())
                continue
            if self.syncs.get(sym) is not sync:
                return  # the connection changed meanwhile
            out = sync.on_snapshot(snap)
            if not out:
                self.snapshot_retries += 1  # older than the first buffered diff: again
                await asyncio.sleep(retry.next_delay())
                continue
            self.publish_book(out)
            if sync.synced:
                self.set_symbol_state(
                    sym, S.UP, f"book synced at update id {sync.book.update_id} "
                    f"({len(out) - 1} buffered diffs applied)",
                )  # fmt: skip
            else:  # a gap inside the buffered diffs: the sync restarted
                self.gaps += 1
                self.resyncs += 1
                self.set_symbol_state(sym, S.GAP, f"order book gap: {sync.last_gap}")
                self.set_symbol_state(sym, S.RESYNCING, "resyncing after the gap")


class BinanceLinearConnector(BinanceConnector):
    """Binance USDⓈ-M futures (market ``linear``); see the module docstring."""

    market = "linear"
    depth_path = "/fapi/v1/depth"
    depth_weight = staticmethod(futures_depth_weight)

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self._oi_last: dict[str, tuple[float, int]] = {}
        self.open_interest_polls = 0

    def _wire_stream(self, s: Stream) -> Stream | None:
        if s.channel == "trades":  # the futures public trade stream is @aggTrade
            return msgspec.structs.replace(s, channel="agg_trades")
        if s.channel == "open_interest":
            return None  # polled over REST
        return super()._wire_stream(s)

    def _on_connected(self) -> None:
        super()._on_connected()
        if self.plan.open_interest:
            self.spawn(self._poll_open_interest(), name="open interest")

    def open_interest_interval(self) -> float:
        """Seconds between two polls of one symbol: :data:`OPEN_INTEREST_POLL_S`, longer
        when the symbols would spend more than :data:`OPEN_INTEREST_WEIGHT_PER_MIN`."""
        n = len(self.active_symbols)
        return max(OPEN_INTEREST_POLL_S, n * 60.0 / OPEN_INTEREST_WEIGHT_PER_MIN)

    async def _poll_open_interest(self) -> None:
        """``GET /fapi/v1/openInterest`` per symbol, round after round (tied to the
        connection: a reconnect restarts it); an unchanged value is not published again."""
        rest = self.factory.get_rest_assistant()
        interval = self.open_interest_interval()
        while True:
            for sym in self.active_symbols:
                ev = await self._open_interest(rest, sym)
                if ev is None:
                    continue
                key = (ev.open_interest, ev.exch_ts)
                if self._oi_last.get(sym) != key:
                    self._oi_last[sym] = key
                    self._put(ev)
            await asyncio.sleep(interval)

    async def _open_interest(self, rest: RESTAssistant, sym: str) -> OpenInterest | None:
        assert self.normalizer is not None and self.symbol_map is not None
        native = self.symbol_map.native(sym)
        try:
            resp = await rest.request("GET", self._url("/fapi/v1/openInterest"),
                                      params={"symbol": native}, weight=1, raw=True)  # fmt: skip
            self.open_interest_polls += 1
            return self.normalizer.normalize_open_interest(resp.body)
        except (WebError, MalformedFrame) as exc:
            self._error_status(f"open interest for {sym} failed: {exc}", sym)
            return None
