"""Bybit's linear market as declared by its package: the market view, the config that
chooses it (and its mistakes, one line each), the connector's endpoints per market."""

from __future__ import annotations

import pytest

from ttxt_mp.config import ConfigError, parse_config
from ttxt_mp.connectors.bybit import VENUE
from ttxt_mp.connectors.bybit.connector import BybitConnector
from ttxt_mp.connectors.registry import connector_class
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.sim.venue import sim_id, sim_venues


def _cfg(connector: str) -> str:
    return f'[engine]\nname = "e"\n[[connectors]]\n{connector}\n'


def test_the_linear_view_of_the_venue():
    lin = VENUE.for_market("linear")
    assert (lin.market, lin.label, lin.sim_id) == ("linear", "bybit linear", "bybit_linear")
    assert lin.book_levels == (1, 50, 200, 1000) and lin.default_depth == 200
    assert set(lin.extra_streams) == {"book_ticker", "mark_price", "open_interest",
                                      "liquidations"}  # fmt: skip
    assert lin.endpoints == VENUE.endpoints  # one host; the path and category follow the market
    assert lin.kline_intervals == VENUE.kline_intervals
    assert lin.connector == VENUE.connector and lin.instruments == VENUE.instruments
    assert sim_id("bybit", "linear") == "bybit_linear"
    assert sim_venues()["bybit_linear"].__name__ == "BybitLinearVenue"


def test_a_linear_connector_config():
    cfg = parse_config(_cfg(
        'exchange = "bybit"\nmarket = "linear"\nsymbols = ["BTC/USDT:USDT", "ETH/USDT:USDT-250627"]'
        '\nstreams = { depth = { levels = 1000 }, mark_price = true, open_interest = true, '
        "liquidations = true, book_ticker = true }"))  # fmt: skip
    c = cfg.connectors[0]
    assert (c.market, c.depth_levels(), c.spec().label) == ("linear", 1000, "bybit linear")
    assert connector_class(c.exchange, c.market) is BybitConnector


@pytest.mark.parametrize(("connector", "msg"), [
    ('exchange = "bybit"\nmarket = "linear"\nsymbols = ["BTC/USDT:USDT"]\n'
     "streams = { depth = { levels = 500 } }",
     r"key 'connectors\[0\].streams.depth.levels': bybit linear offers depth levels "
     r"\(1, 50, 200, 1000\), got 500"),
    ('exchange = "bybit"\nsymbols = ["BTC/USDT"]\nstreams = { mark_price = true }',
     r"key 'connectors\[0\].streams.mark_price': bybit offers no mark_price stream"),
    ('exchange = "bybit"\nmarket = "linear"\nsymbols = ["BTC/USDT:USDT"]\n'
     'streams = { klines = ["2m"] }',
     r"key 'connectors\[0\].streams.klines\[0\]': bybit linear kline intervals are"),
    ('exchange = "bybit"\nmarket = "inverse"\nsymbols = ["BTC/USD:BTC"]',
     r"key 'connectors\[0\].market': bybit offers the markets spot, linear; got 'inverse'"),
])  # fmt: skip
def test_linear_config_mistakes_are_one_line(connector, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        parse_config(_cfg(connector))
    assert "\n" not in str(e.value)


def test_the_connector_path_and_subscription_limits_follow_the_market():
    base = ('exchange = "bybit"\nsymbols = ["{s}"]\nendpoints = {{ ws = "ws://h/x", '
            'rest = "http://h/x" }}\n')  # fmt: skip
    spot = parse_config(_cfg(base.format(s="BTC/USDT"))).connectors[0]
    lin = parse_config(_cfg(base.format(s="BTC/USDT:USDT") + 'market = "linear"')).connectors[0]
    cs, cl = BybitConnector(spot, AsyncioQueue()), BybitConnector(lin, AsyncioQueue())
    assert cs._ws_url() == "ws://h/x/v5/public/spot" and cs.category == "spot"
    assert cl._ws_url() == "ws://h/x/v5/public/linear" and cl.category == "linear"
