"""One instrument request and one REST limiter per venue per process: the market-data
connector and the trading venue of a venue, run in one process (in-process here, with the
simulator), share the instrument list (ttxt_mp.connectors.catalog) and the RateLimiter
(ttxt_mp.web.shared_limiter). Requests are counted at the simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web

from ttxt_mp.connectors.catalog import InstrumentCatalog, catalog, get_instruments
from ttxt_mp.connectors.instruments import make_instrument
from ttxt_mp.connectors.registry import create_connector
from ttxt_mp.connectors.trading import TradingSession
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.secrets import Credentials, Secret
from ttxt_mp.sim import Rates, Simulator, VenueTimings
from ttxt_mp.web import RateLimit, RateLimiter, shared_limiter

from .helpers import make_cfg

KEY, SECRET = "sharedKeyAlice00000000000001", "sharedSecretAlice000000000001"
INSTRUMENTS_PATH = {"binance": "/api/v3/exchangeInfo", "bybit": "/v5/market/instruments-info"}
LIMIT_ID = {"binance": "REQUEST_WEIGHT", "bybit": "IP"}
VENUES = ("binance", "bybit")


@pytest.fixture
async def counted_sim() -> AsyncIterator[tuple[Simulator, Counter]]:
    """A simulator with a funded account whose venues count every request by path."""
    hits: Counter = Counter()
    sim = Simulator({"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSDT", "XRPUSDT"]},
                    seed=5, rates=Rates(updates_per_sec=50.0, levels=50, max_levels=200),
                    timings=VenueTimings(binance_ping_interval=5.0, binance_pong_timeout=10.0,
                                         binance_max_incoming_per_sec=0, bybit_idle_timeout=30.0),
                    accounts={KEY: (SECRET, {"USDT": "1000", "BTC": "1"})})  # fmt: skip
    for venue in VENUES:

        @web.middleware
        async def count(request: web.Request, handler, venue: str = venue):
            hits[(venue, request.path.removeprefix(f"/{venue}"))] += 1
            return await handler(request)

        sim.venue(venue).app.middlewares.append(count)
    await sim.start()
    try:
        yield sim, hits
    finally:
        await sim.stop()


async def until(pred, timeout: float, what: str) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def creds() -> Credentials:
    return Credentials(api_key=Secret(KEY), api_secret=Secret(SECRET))


@pytest.mark.parametrize("venue", VENUES)
async def test_market_data_and_trading_share_one_instrument_request_and_one_limiter(
    counted_sim, venue: str
) -> None:
    sim, hits = counted_sim
    cfg = make_cfg(sim, venue, ["BTC/USDT"])
    connector = create_connector(cfg, AsyncioQueue())
    session = TradingSession(cfg, creds(), AsyncioQueue())
    tasks = [asyncio.create_task(connector.run()), asyncio.create_task(session.run())]
    try:
        await until(lambda: connector.normalizer is not None and session.ready.is_set(), 20.0,
                    f"{venue}: symbols loaded by the connector and the trading session")  # fmt: skip
        assert hits[(venue, INSTRUMENTS_PATH[venue])] == 1, dict(hits)
        key = (venue, cfg.rest_url().rstrip("/"), "spot")
        assert catalog().fetches[key] == 1
        # the same list: the connector's SymbolMap and trading's InstrumentBook agree
        book, smap = session.venue.instruments, connector.symbol_map
        assert book is not None and smap is not None
        assert {i.native_symbol: i.symbol for i in book} == {
            n: i.symbol for n, i in smap.instruments.items()}
        assert connector.active_symbols == ("BTC/USDT",)
        # one limiter object, spent by both
        limiter = connector.factory.rate_limiter
        assert isinstance(limiter, RateLimiter)
        assert connector.factory.get_rest_assistant().rate_limiter is limiter
        assert session.venue.rest.rate_limiter is limiter
        assert session.venue._rate_limiter() is limiter
        assert [lim.limit_id for lim in limiter.limits] == [LIMIT_ID[venue]]
        used = limiter.used(LIMIT_ID[venue])
        await session.venue.server_time_ms()  # a trading request is charged to the same budget
        assert limiter.used(LIMIT_ID[venue]) > used
        # on demand, the list is fetched again (once), for both
        await session.venue.load_instruments(refresh=True)
        assert hits[(venue, INSTRUMENTS_PATH[venue])] == 2
    finally:
        connector.stop()
        session.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10.0)


async def test_a_later_connector_of_the_same_venue_uses_the_kept_list(counted_sim) -> None:
    sim, hits = counted_sim
    cfg = make_cfg(sim, "binance", ["BTC/USDT", "ETH/USDT"])
    first = create_connector(cfg, AsyncioQueue())
    task = asyncio.create_task(first.run())
    try:
        await until(lambda: first.normalizer is not None, 20.0, "first connector's symbols")
    finally:
        first.stop()
        await asyncio.wait_for(task, 10.0)
    second = create_connector(make_cfg(sim, "binance", ["ETH/USDT"]), AsyncioQueue())
    task = asyncio.create_task(second.run())
    try:
        await until(lambda: second.normalizer is not None, 20.0, "second connector's symbols")
    finally:
        second.stop()
        await asyncio.wait_for(task, 10.0)
    assert hits[("binance", "/api/v3/exchangeInfo")] == 1
    assert second.active_symbols == ("ETH/USDT",)


# ----------------------------------------------------------------------------- the catalog


def inst(native: str, base: str, quote: str = "USDT"):
    return make_instrument("v", native, base, quote, "spot", Decimal("0.01"), Decimal("0.001"))


class FakeVenue:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[str, ...] | None] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self, symbols):
        self.calls.append(symbols)
        await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("venue down")
        names = symbols or ("BTC/USDT", "ETH/USDT", "XRP/USDT")
        return [inst(s.replace("/", ""), *s.split("/")) for s in names]


async def test_concurrent_callers_share_one_request() -> None:
    cat, v = InstrumentCatalog(), FakeVenue()
    v.gate.clear()
    callers = [asyncio.create_task(cat.get("v", "http://h/", v.fetch, symbols=["BTC/USDT"]))
               for _ in range(5)]  # fmt: skip
    await asyncio.sleep(0.01)
    v.gate.set()
    results = await asyncio.gather(*callers)
    assert v.calls == [("BTC/USDT",)] and all(r is results[0] for r in results)
    assert cat.fetches == {("v", "http://h", "spot"): 1}
    # covered symbols come from the kept list; a new symbol fetches the union once
    assert await cat.get("v", "http://h", v.fetch, symbols=("BTC/USDT",)) is results[0]
    got = await cat.get("v", "http://h", v.fetch, symbols=["ETH/USDT"])
    assert v.calls[-1] == ("BTC/USDT", "ETH/USDT") and len(got) == 2
    assert await cat.get("v", "http://h", v.fetch, symbols=["BTC/USDT", "ETH/USDT"]) is got
    # the whole list serves everyone; other markets and URLs are other lists
    full = await cat.get("v", "http://h", v.fetch)
    assert v.calls[-1] is None and len(full) == 3
    assert await cat.get("v", "http://h", v.fetch, symbols=["XRP/USDT"]) is full
    await cat.get("v", "http://h", v.fetch, market="linear")
    await cat.get("v", "http://other", v.fetch)
    assert len(v.calls) == 5


async def test_refresh_failure_and_invalidate() -> None:
    cat, v = InstrumentCatalog(), FakeVenue(fail=1)
    with pytest.raises(ConnectionError):
        await cat.get("v", "http://h", v.fetch)
    assert cat.cached("v", "http://h") is None  # nothing kept after a failure
    first = await cat.get("v", "http://h", v.fetch)
    assert cat.cached("v", "http://h") is first
    # concurrent refreshers share one request too
    v.gate.clear()
    refreshers = [asyncio.create_task(cat.get("v", "http://h", v.fetch, refresh=True))
                  for _ in range(3)]  # fmt: skip
    await asyncio.sleep(0.01)
    v.gate.set()
    again = await asyncio.gather(*refreshers)
    assert len(v.calls) == 3 and again[0] is not first and all(r is again[0] for r in again)
    cat.invalidate("v")
    await cat.get("v", "http://h", v.fetch)
    assert len(v.calls) == 4


async def test_get_instruments_uses_the_loop_catalog() -> None:
    v = FakeVenue()
    a = await get_instruments("v", "http://h", v.fetch)
    assert await get_instruments("v", "http://h/", v.fetch) is a and len(v.calls) == 1
    assert catalog() is catalog() and catalog().cached("v", "http://h") is a


# ----------------------------------------------------------------------------- the limiter


def test_shared_limiter_one_per_venue_and_url_while_in_use() -> None:
    made: list[RateLimiter] = []

    def factory() -> RateLimiter:
        made.append(RateLimiter([RateLimit("W", 10, 1.0, is_global=True)]))
        return made[-1]

    a = shared_limiter("v", "http://h/", factory)
    assert shared_limiter("v", "http://h", factory) is a and len(made) == 1
    assert shared_limiter("v", "http://other", factory) is not a
    assert shared_limiter("w", "http://h", factory) is not a
    assert len(made) == 3
    del a
    made.clear()  # nobody holds it: the next user starts with a fresh budget
    b = shared_limiter("v", "http://h", factory)
    assert made == [b]
