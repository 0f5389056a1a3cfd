"""OKX v5 public market data connector, spot or linear swaps (``cfg.market``).

Endpoints ("WebSocket" overview): ``/ws/v5/public`` for books, trades and the swap
channels, ``/ws/v5/business`` for candles (moved there in June 2023); with klines planned
a second socket to the business endpoint runs beside the public one, tied to it (either one
failing reconnects both). Connection attempts to a host are spaced under 3 per second for
the whole process, and each connection's ``{"id","op":"subscribe","args":[{"channel",
"instId"}]}`` requests are counted against its 480 per hour
(:mod:`~ttxt_mp.connectors.okx.limits`; past 480 the connector reconnects for a fresh
budget). Instruments: ``GET /api/v5/public/instruments?instType=SPOT|SWAP`` (shared with
the process's other users, :mod:`~ttxt_mp.connectors.okx.rest`).

Books (``books``, 400 levels): the snapshot comes in-band after subscribing, then updates
chained by seqId/prevSeqId and, while OKX sends one, a non-zero checksum verified against
the best 25 levels as text (``checksum = false`` turns it off) in
:class:`~ttxt_mp.connectors.okx.sync.OkxBookSync`. A broken chain or a mismatch resyncs
that instrument only: GAP, RESYNCING, unsubscribe + subscribe its ``books`` (a new
snapshot), UP; no snapshot within :meth:`resync_timeout` reconnects.

Liveness ("Connect"): OKX closes a connection after 30 s without data; as the docs ask, a
timer of N s (``min(25, heartbeat_timeout / 2)``, under 30) restarts on every frame
received, and when it fires the text ``ping`` is sent (:meth:`_keepalive`, per socket), so
a busy stream sends none and a quiet one gets its ``pong``; nothing at all for
``heartbeat_timeout`` s (no ``pong`` either) is a stall (reconnect).

On ``linear`` every quantity (book sizes, trades, candles' volume, open interest,
liquidations) is a number of contracts, as OKX sends them: a contract is the instrument's
``ctVal`` of ``ctValCcy`` (0.01 BTC for BTC-USDT-SWAP).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.base import ConnectorBase
from ttxt_mp.connectors.normalizer import Stream, SymbolMap
from ttxt_mp.connectors.okx import rest as venue_rest
from ttxt_mp.connectors.okx.limits import OpBudget, pacer
from ttxt_mp.connectors.okx.normalizer import BUSINESS, BookText, OkxDenormalizer, OkxNormalizer
from ttxt_mp.connectors.okx.sync import OkxBookSync
from ttxt_mp.connectors.resync import InBandResyncConnector
from ttxt_mp.events import Orderbook
from ttxt_mp.queues import IQueuePublisher
from ttxt_mp.web import (
    FrameKind,
    RESTAssistant,
    WebAssistantFactory,
    WebError,
    WSAssistant,
    WSPlainTextRequest,
    WSResponse,
)

__all__ = ["OkxConnector"]

PING_INTERVAL_S = 25.0  # under the 30 s after which OKX closes a silent connection
MIN_PING_INTERVAL_S = 0.25


class OkxConnector(InBandResyncConnector):
    """OKX v5 spot or linear connector; see the module docstring."""

    exchange = "okx"

    def __init__(self, cfg: ConnectorConfig, publisher: IQueuePublisher, **kwargs: Any) -> None:
        super().__init__(cfg, publisher, **kwargs)
        self.syncs: dict[str, OkxBookSync] = {}
        self._ids = itertools.count(1)
        self.market = self.spec.market or "spot"
        self.denormalizer = OkxDenormalizer()
        self.budget = OpBudget()
        self.checksum_errors = 0
        self.pings_sent = 0
        self._seen_public = 0.0

    # ------------------------------------------------------------------ setup

    def _make_factory(self) -> WebAssistantFactory:
        return self._rest_factory(venue_rest.rate_limiter(self.cfg.rest_url()))

    async def _load_symbols(self, rest: RESTAssistant) -> SymbolMap:
        insts = await venue_rest.instruments(rest, self.cfg.rest_url(), self.market)
        return SymbolMap.from_instruments(insts, exchange=self.exchange)

    def _make_normalizer(self, symbols: SymbolMap) -> OkxNormalizer:
        plan = self.plan
        self.denormalizer = OkxDenormalizer(symbols, book_depth=plan.depth or 400)
        liq = [symbols.native(s) for s in plan.symbols] if plan.liquidations else None
        return OkxNormalizer(symbols, book_depth=plan.depth, book_ticker=plan.book_ticker,
                             keep_text=self.cfg.checksum, mark_price=plan.mark_price,
                             open_interest=plan.open_interest,
                             liquidation_symbols=liq)  # fmt: skip

    def _ws_url(self) -> str:
        return f"{self.cfg.ws_url().rstrip('/')}/ws/v5/public"

    def _business_url(self) -> str:
        return f"{self.cfg.ws_url().rstrip('/')}/ws/v5/business"

    def _streams(self, business: bool) -> list[Stream]:
        return [s for s in self.plan.streams(self.active_symbols)
                if (OkxDenormalizer.endpoint(s) == BUSINESS) == business]  # fmt: skip

    async def _subscribe(self, ws: WSAssistant) -> None:
        self.budget = OpBudget()  # per connection
        await self._send_ops(self.denormalizer.subscribe(self._streams(False), next(self._ids)))

    async def _send_ops(self, frames: list[bytes], ws: WSAssistant | None = None,
                        budget: OpBudget | None = None) -> None:  # fmt: skip
        """Send subscribe/unsubscribe requests within the connection's budget."""
        budget = budget or self.budget
        for frame in frames:
            if budget.exhausted():
                self.request_reconnect("480 subscribe requests this hour on this connection: "
                                       "reconnecting for a fresh budget")  # fmt: skip
                return
            budget.take()
            if ws is None:
                await self.send_frames([frame])
            else:
                await ws.connection.send_raw(frame, FrameKind.TEXT)

    async def _connect(self) -> float:
        await pacer(self._host()).acquire()  # "Connection limit: 3 requests per second"
        return await super()._connect()

    def _host(self) -> str:
        return self.cfg.ws_url().split("//", 1)[-1].split("/", 1)[0]

    def ping_after(self) -> float:
        """N: seconds without a frame before a ``ping`` (under OKX's 30 s)."""
        return max(min(PING_INTERVAL_S, self.cfg.heartbeat_timeout / 2), MIN_PING_INTERVAL_S)

    def _handle_frame(self, resp: WSResponse) -> None:
        self._seen_public = time.monotonic()
        super()._handle_frame(resp)

    async def _keepalive(self, ws: WSAssistant, last_seen: Callable[[], float]) -> None:
        """Send ``ping`` whenever N s passed since the last frame received (or ping)."""
        n = self.ping_after()
        sent = 0.0
        while True:
            wait = max(last_seen(), sent) + n - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            sent = time.monotonic()
            self.pings_sent += 1
            try:
                await ws.connection.send(WSPlainTextRequest("ping"))
            except (WebError, ConnectionError, RuntimeError):
                return  # the socket is gone: its receive loop reports and reconnects

    # ------------------------------------------------------------------ business socket

    async def _business(self, streams: list[Stream]) -> None:
        """The candles' socket: lives and dies with the public one."""
        ws = self.factory.get_ws_assistant()
        reason = "business endpoint closed"
        try:
            await pacer(self._host()).acquire()
            await ws.connect(self._business_url(), timeout=self.connect_timeout,
                             idle_timeout=self.cfg.heartbeat_timeout)  # fmt: skip
            seen = [time.monotonic()]
            self.spawn(self._keepalive(ws, lambda: seen[0]), name="business keep-alive")
            await self._send_ops(self.denormalizer.subscribe(streams, next(self._ids)), ws,
                                 OpBudget())  # fmt: skip
            async for resp in ws.iter_messages():
                seen[0] = time.monotonic()
                ConnectorBase._handle_frame(self, resp)  # not the public socket's clock
                if self._backlog:
                    await self.drain_backlog()
        except WebError as exc:  # WSError included
            reason = f"business endpoint: {type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                await ws.disconnect()
        self.request_reconnect(reason)

    # ------------------------------------------------------------------ books

    def _on_connected(self) -> None:
        ws = self._ws
        if ws is not None:
            self._seen_public = time.monotonic()
            self.spawn(self._keepalive(ws, lambda: self._seen_public), name="keep-alive")
        business = self._streams(True)
        if business:
            self.spawn(self._business(business), name="business socket")
        super()._on_connected()

    def _new_sync(self, symbol: str) -> OkxBookSync:
        return OkxBookSync(symbol, verify=self.cfg.checksum)

    def _on_book(self, ev: Orderbook) -> None:
        if ev.symbol not in self.syncs:  # its checksum text must not reach a later book
            self._book_text(ev.symbol)
        super()._on_book(ev)

    def _book_text(self, symbol: str) -> BookText | None:
        norm = self.normalizer
        return norm.texts.pop(symbol, None) if isinstance(norm, OkxNormalizer) else None

    def _feed_book(self, sync: OkxBookSync, ev: Orderbook) -> list[Orderbook]:
        bad = sync.checksum_errors
        out = sync.on_event(ev, self._book_text(ev.symbol))
        self.checksum_errors += sync.checksum_errors - bad  # only with a resync
        return out

    def _synced_message(self, sync: OkxBookSync) -> str:
        return f"book synced at seqId={sync.book.update_id}"

    async def _send_resubscribe(self, symbol: str) -> None:
        stream = [Stream("book", symbol, depth=self.plan.depth)]
        rid = next(self._ids)
        await self._send_ops(self.denormalizer.unsubscribe(stream, f"u{rid}")
                             + self.denormalizer.subscribe(stream, f"s{rid}"))  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "checksum_errors": self.checksum_errors}
