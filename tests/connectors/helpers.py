"""Helpers for connector tests: configs pointing at the simulator, and a consumer that
rebuilds books from what a connector published and compares them with the truth."""

from __future__ import annotations

import asyncio
from typing import Any

from ttxt_mp.config import ConnectorConfig, DepthStream, Endpoints, Streams
from ttxt_mp.connectors.venue import venues
from ttxt_mp.events import (
    BookTicker,
    ConnectorState,
    ConnectorStatus,
    Kline,
    Liquidation,
    MarketTrades,
    MarkPrice,
    OpenInterest,
    Orderbook,
)
from ttxt_mp.orderbook import OrderBook, UpdateResult
from ttxt_mp.queues import AsyncioQueue, QueueEmpty
from ttxt_mp.sim import Simulator

S = ConnectorState
# binance, coinbase: the whole book at once (binance_linear: its 1000 levels hold the
# simulated book)
DEPTH = {"binance": 5000, "bybit": 50, "bybit_linear": 50, "binance_linear": 1000,
         "kraken": 100, "coinbase": 10000, "okx": 400, "okx_linear": 400}  # fmt: skip
SYMBOLS = {"binance": ("BTCUSDT", "ETHUSDT"), "bybit": ("BTCUSDT", "XRPUSDT"),
           "bybit_linear": ("BTCUSDT", "XRPUSDT"),
           "binance_linear": ("BTCUSDT", "ETHUSDT"), "kraken": ("BTCUSDT", "ETHUSDT"),
           "coinbase": ("BTCUSDT", "XRPUSDT"), "okx": ("BTCUSDT", "ETHUSDT"),
           "okx_linear": ("BTCUSDT", "ETHUSDT")}  # fmt: skip
KLINE = {"coinbase": "5m"}
"""The kline interval subscribed per venue (default 1m; coinbase has 5-minute candles only)."""
WHOLE_BOOK = {"binance", "coinbase"}
"""Venues whose book stream is the whole book (truth: every level), all their markets."""
NO_BOOK_ID = {"coinbase"}
"""Venues whose book id is per connection (books compared by levels only)."""
TRUTH_ID = {"okx": "books:{native}", "okx_linear": "books:{native}"}
"""The simulator's name of a venue's book id (``TrueBook.topics``; default Bybit's topic).

All of these are per simulated venue id (a venue's market other than its first is
``<id>_<market>``)."""


def market_of(sim_venue: str) -> tuple[str, str]:
    """(exchange, market) of a simulated venue id (``bybit_linear`` -> bybit, linear)."""
    for spec in venues().values():
        for m in spec.markets:
            if spec.for_market(m).sim_id == sim_venue:
                return spec.id, m
    raise KeyError(sim_venue)


def norm(native: str, sim_venue: str = "") -> str:
    """USDT pairs only in these tests; on a derivative market the USDT-settled perpetual."""
    market = market_of(sim_venue)[1] if sim_venue else "spot"
    return f"{native[:-4]}/{native[-4:]}" + ("" if market == "spot" else ":USDT")


def make_cfg(
    sim: Simulator, exchange: str, symbols: list[str] | None = None, **kw: Any
) -> ConnectorConfig:
    """A connector of the simulated venue ``exchange`` (a sim id: a market's own venue
    gives the config's exchange and market)."""
    urls = getattr(sim.urls, exchange)
    streams = kw.pop("streams", None) or Streams(
        depth=DepthStream(levels=DEPTH[exchange]), trades=True,
        klines=[KLINE.get(exchange, "1m")]
    )
    kw.setdefault("heartbeat_timeout", 2.0)
    kw.setdefault("reconnect_backoff", 0.05)
    kw.setdefault("reconnect_backoff_max", 0.4)
    venue, market = market_of(exchange)
    return ConnectorConfig(
        exchange=venue,
        market=market,
        symbols=symbols or [norm(s, exchange) for s in SYMBOLS[exchange]],
        endpoints=Endpoints(ws=urls.ws, rest=urls.rest),
        streams=streams,
        **kw,
    )


class Consumer:
    """What a client process would do with the published stream: keep one OrderBook per
    symbol (the venue's own sequence rules) and remember everything else."""

    def __init__(self, queue: AsyncioQueue, exchange: str) -> None:
        self.queue = queue
        self.exchange = exchange
        self.books: dict[str, OrderBook] = {}
        self.results: list[tuple[str, UpdateResult]] = []
        self.statuses: list[ConnectorStatus] = []
        self.trades: list[MarketTrades] = []
        self.klines: list[Kline] = []
        self.tickers: dict[str, BookTicker] = {}  # the latest per symbol
        self.marks: dict[str, MarkPrice] = {}  # the latest per symbol
        self.open_interest: dict[str, OpenInterest] = {}  # the latest per symbol
        self.mark_events: list[MarkPrice] = []  # all of them, in order
        self.oi_events: list[OpenInterest] = []
        self.liquidations: list[Liquidation] = []
        self.ticker_events = 0
        self.book_events = 0
        self.snapshots: dict[str, int] = {}

    def drain(self) -> None:
        while True:
            try:
                ev = self.queue.get_nowait()
            except QueueEmpty:
                return
            if isinstance(ev, Orderbook):
                book = self.books.get(ev.symbol)
                if book is None:
                    book = self.books[ev.symbol] = OrderBook(self.exchange, ev.symbol)
                self.results.append((ev.symbol, book.update(ev)))
                self.book_events += 1
                if ev.is_snapshot:
                    self.snapshots[ev.symbol] = self.snapshots.get(ev.symbol, 0) + 1
            elif isinstance(ev, ConnectorStatus):
                self.statuses.append(ev)
            elif isinstance(ev, MarketTrades):
                self.trades.append(ev)
            elif isinstance(ev, Kline):
                self.klines.append(ev)
            elif isinstance(ev, BookTicker):
                self.tickers[ev.symbol] = ev
                self.ticker_events += 1
            elif isinstance(ev, MarkPrice):
                self.marks[ev.symbol] = ev
                self.mark_events.append(ev)
            elif isinstance(ev, OpenInterest):
                self.open_interest[ev.symbol] = ev
                self.oi_events.append(ev)
            elif isinstance(ev, Liquidation):
                self.liquidations.append(ev)

    def bad_results(self) -> list[tuple[str, UpdateResult]]:
        """Published book events a consumer could not apply cleanly (must be none)."""
        ok = (UpdateResult.SNAPSHOT, UpdateResult.APPLIED)
        return [(s, r) for s, r in self.results if r not in ok]

    def status_log(self, last: int = 25) -> str:
        return "\n".join(
            f"  {s.symbol or '-'} {s.state.name}: {s.message}" for s in self.statuses[-last:]
        )

    def has_status(
        self, state: ConnectorState, symbol: str | None = None, contains: str = "", after: int = 0
    ) -> bool:
        return any(
            s.state == state and (symbol is None or s.symbol == symbol) and contains in s.message
            for s in self.statuses[after:]
        )

    async def until(self, pred: Any, timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            self.drain()
            if pred():
                return
            if loop.time() > end:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; "
                    f"last statuses:\n{self.status_log()}"
                )
            await asyncio.sleep(0.02)


def _truth(sim: Simulator, exchange: str, native: str, depth: int | None = None
           ) -> tuple[int | None, list, list]:  # fmt: skip
    whole = market_of(exchange)[0] in WHOLE_BOOK
    depth = None if whole else depth or DEPTH[exchange]
    tb = sim.truth(exchange, native, depth)
    # a venue without book ids (no per-topic id in the truth) leaves the consumer's at 0
    key = TRUTH_ID.get(exchange, "orderbook.{depth}.{native}").format(depth=depth, native=native)
    uid = (None if exchange in NO_BOOK_ID else tb.update_id if whole
           else tb.topics.get(key, 0))  # fmt: skip
    bids, asks = tb.as_floats()
    return uid, bids, asks


async def checkpoint(
    sim: Simulator,
    consumer: Consumer,
    exchange: str,
    natives: tuple[str, ...] | list[str] | None = None,
    timeout: float = 5.0,
    *,
    tickers: bool = False,
    depth: int | None = None,
) -> None:
    """Pause the market, let the connector catch up, and require every rebuilt book to
    equal the simulator's true book level for level (then resume). ``tickers``: the last
    BookTicker of each symbol must also be that book's best bid and ask (price and
    quantity). ``depth``: the book depth subscribed (default :data:`DEPTH`)."""
    natives = natives or SYMBOLS[exchange]
    sim.pause()
    try:
        for native in natives:
            sym = norm(native, exchange)

            def same(native: str = native, sym: str = sym) -> bool:
                book = consumer.books.get(sym)
                if book is None:
                    return False
                uid, bids, asks = _truth(sim, exchange, native, depth)
                if not ((uid is None or book.update_id == uid) and book.bids() == bids
                        and book.asks() == asks):
                    return False
                t = consumer.tickers.get(sym)
                return not tickers or t is not None and (
                    ((t.bid, t.bid_qty), (t.ask, t.ask_qty)) == (book.best_bid, book.best_ask))

            try:
                await consumer.until(same, timeout, f"{exchange} {sym} book == truth")
            except AssertionError:
                uid, bids, asks = _truth(sim, exchange, native, depth)
                book = consumer.books.get(sym)
                detail = (
                    "no book"
                    if book is None
                    else (
                        f"book id {book.update_id} vs truth {uid}; levels {book.depth()} vs "
                        f"{(len(bids), len(asks))}; best {book.best_bid}/{book.best_ask} vs "
                        f"{bids[:1]}/{asks[:1]}; ticker {consumer.tickers.get(sym)}"
                    )
                )
                raise AssertionError(
                    f"{exchange} {sym}: {detail}\n{consumer.status_log()}"
                ) from None
            assert len(consumer.books[sym].bids()) > min(10, (depth or 11) - 1), \
                "compared an almost empty book"
    finally:
        sim.resume()


class SimThread:
    """A simulator on its own event loop in a thread, for tests whose main thread runs
    something else (run_connector's uvloop, or a consumer reading a ring)."""

    CALL_TIMEOUT = 5.0  # seconds :meth:`call` waits for the simulator's loop

    def __init__(self, **kwargs: Any) -> None:
        import threading

        self._kwargs = kwargs
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sim: Simulator | None = None
        self._stop: asyncio.Event | None = None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.sim = Simulator(**self._kwargs)
        await self.sim.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.sim.stop()

    def __enter__(self) -> SimThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulator thread did not start")
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the simulator's loop and return its result."""
        import concurrent.futures

        assert self.loop is not None
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut.result(self.CALL_TIMEOUT)

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
