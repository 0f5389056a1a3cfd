"""Markets of a venue (spot, linear, inverse): one package declares them all, each market a
view of the venue with its own endpoints, depths, streams and parts; the config's
``market`` chooses one; derivative streams and symbols; the simulator serves a market
with its own wire adapter as its own venue."""

from __future__ import annotations

import pytest

from ttxt_mp import events as ev
from ttxt_mp.client import KINDS, BaseClient, _one_line
from ttxt_mp.config import ConfigError, parse_config
from ttxt_mp.connectors.base import StreamPlan
from ttxt_mp.connectors.normalizer import Stream
from ttxt_mp.connectors.venue import VenueSpec
from ttxt_mp.queues import AsyncioQueue

PERP = VenueSpec(
    id="perpy",
    title="Perpy Exchange",
    markets=("spot", "linear"),
    endpoints={"live": ("wss://spot.example", "https://spot.example")},
    book_levels=(10, 50),
    kline_intervals=("1s", "1m"),
    extra_streams=("book_ticker",),
    connector="spot_mod:Connector",
    sim="spot_mod:Sim",
    market_overrides={"linear": {
        "title": "Perpy Futures",
        "endpoints": {"live": ("wss://fut.example", "https://fut.example")},
        "book_levels": (20, 100, 500),
        "kline_intervals": ("1m",),
        "extra_streams": ("book_ticker", "mark_price", "open_interest", "liquidations"),
        "connector": "fut_mod:Connector",
        "sim": "fut_mod:Sim",
    }},
)  # fmt: skip


def test_a_market_view_applies_its_overrides_and_keeps_the_rest():
    spot, lin = PERP.for_market("spot"), PERP.for_market("linear")
    assert (spot.market, spot.label, spot.sim_id) == ("spot", "perpy", "perpy")
    assert (lin.market, lin.label, lin.sim_id) == ("linear", "perpy linear", "perpy_linear")
    assert spot.endpoint() == ("wss://spot.example", "https://spot.example")
    assert lin.endpoint() == ("wss://fut.example", "https://fut.example")
    assert (lin.book_levels, lin.default_depth, lin.connector) == ((20, 100, 500), 500,
                                                                   "fut_mod:Connector")  # fmt: skip
    assert lin.id == spot.id == "perpy" and lin.markets == PERP.markets
    assert lin.for_market("linear") is lin and lin.for_market("spot") == spot


def test_a_market_the_venue_does_not_offer_is_one_line():
    with pytest.raises(LookupError, match=r"venue 'perpy' offers the markets spot, linear; "
                                          r"not 'inverse'"):  # fmt: skip
        PERP.for_market("inverse")


@pytest.mark.parametrize(("over", "msg"), [
    ({"inverse": {}}, r"market_overrides names 'inverse', not one of its markets"),
    ({"linear": {"depths": (1,)}}, r"market_overrides\['linear'\] has unknown fields \['depths'\]"),
])  # fmt: skip
def test_bad_market_overrides_are_refused_at_declaration(over, msg):
    with pytest.raises(ValueError, match=msg):
        VenueSpec(id="bad", markets=("spot", "linear"), market_overrides=over)


def _cfg(connector: str) -> str:
    return f'[engine]\nname = "e"\n[[connectors]]\n{connector}\n'


@pytest.mark.parametrize(("connector", "msg"), [
    ('exchange = "binance"\nmarket = "inverse"\nsymbols = ["BTC/USD:BTC"]',
     r"key 'connectors\[0\].market': binance offers the markets .*; got 'inverse'"),
    ('exchange = "binance"\nsymbols = ["BTC/USDT:usdt"]',
     r"key 'connectors\[0\].symbols\[0\]': expected BASE/QUOTE .*perpetual 'BTC/USDT:USDT'"),
    ('exchange = "binance"\nsymbols = ["BTC/USDT:USDT-2506"]',
     r"key 'connectors\[0\].symbols\[0\]'"),
    ('exchange = "binance"\nsymbols = ["BTC/USDT"]\nstreams = { mark_price = true }',
     r"key 'connectors\[0\].streams.mark_price': binance offers no mark_price stream"),
    ('exchange = "bybit"\nsymbols = ["BTC/USDT"]\nstreams = { liquidations = true }',
     r"key 'connectors\[0\].streams.liquidations': bybit offers no liquidations stream"),
])  # fmt: skip
def test_market_and_derivative_mistakes_are_one_line(connector, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_config(_cfg(connector))


def test_perpetual_and_dated_symbols_are_valid_names():
    cfg = parse_config(_cfg('exchange = "binance"\nsymbols = ["BTC/USDT", "BTC/USDT:USDT", '
                            '"BTC/USDT:USDT-250627"]'))  # fmt: skip
    c = cfg.connectors[0]
    assert c.market == "spot" and c.spec().market == "spot"
    assert c.symbols == ["BTC/USDT", "BTC/USDT:USDT", "BTC/USDT:USDT-250627"]


def test_the_plan_lists_derivative_channels_per_symbol():
    plan = StreamPlan(("BTC/USDT:USDT",), 0, False, (), mark_price=True, liquidations=True)
    assert plan.streams() == [Stream("mark_price", "BTC/USDT:USDT"),
                              Stream("liquidations", "BTC/USDT:USDT")]  # fmt: skip
    plan = StreamPlan(("A/B",), 0, False, (), open_interest=True)
    assert plan.streams() == [Stream("open_interest", "A/B")]


MARK = ev.MarkPrice(exchange="x", symbol="BTC/USDT:USDT", mark_price=100.5, index_price=100.4,
                    funding_rate=0.0001, next_funding_ts=1)  # fmt: skip
OI = ev.OpenInterest(exchange="x", symbol="BTC/USDT:USDT", open_interest=12.5)
LIQ = ev.Liquidation(exchange="x", symbol="BTC/USDT:USDT", side=ev.Side.SELL, price=99.0, qty=2.0)


def test_derivative_events_are_dispatched_filtered_and_printed():
    calls: list[str] = []

    class C(BaseClient):
        def on_mark_price(self, e): calls.append("mark")  # noqa: E704
        def on_open_interest(self, e): calls.append("oi")  # noqa: E704
        def on_liquidation(self, e): calls.append("liq")  # noqa: E704

    q = AsyncioQueue()
    for e in (MARK, OI, LIQ):
        q.put(e)
    q.close()
    C().run(q)
    assert calls == ["mark", "oi", "liq"]
    assert {KINDS[n] for n in ("MarkPrice", "OpenInterest", "Liquidation")} == {
        ev.MarkPrice, ev.OpenInterest, ev.Liquidation}
    assert _one_line(LIQ) == "x        BTC/USDT:USDT liquidation SELL 2.0@99.0"
    assert "mark 100.5 index 100.4 funding 0.0001" in _one_line(MARK)


def test_mark_price_and_open_interest_are_state_liquidations_are_not():
    from ttxt_mp.join import STATEFUL

    assert {ev.MarkPrice, ev.OpenInterest} <= STATEFUL and ev.Liquidation not in STATEFUL
