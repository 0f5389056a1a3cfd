"""The simulator knows venues only through the registry: a third venue whose ``VENUE.sim`` is a
tiny adapter defined here is served by ``Simulator``, gets its ``--<id>`` flags on the command
line, its timings in ``VenueTimings``, the control API, and the shared parts that need a venue
capability (restart, blast) leave it out without it."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ttxt_mp.connectors import venue as registry
from ttxt_mp.connectors.venue import VenueSpec
from ttxt_mp.sim import Simulator, VenueTimings
from ttxt_mp.sim.__main__ import build, parse_args
from ttxt_mp.sim.venue import Knob, VenueBase, sim_venues


class ToyVenue(VenueBase):
    """One REST route answering with the true book, one timing knob."""

    name = "toy"
    knobs = (Knob("hello_interval", 2.5, "seconds between hellos", "hello-interval", float),
             Knob("secret_limit", 7, "not on the command line"))  # fmt: skip
    wire_decimals = 4

    def __init__(self, markets: dict[str, Any], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.app.router.add_get("/book", self.rest_book)

    async def rest_book(self, request: web.Request) -> web.Response:
        t = self.truth(request.query["symbol"].upper(), 3)
        return web.json_response({"u": t.update_id, "bids": t.bids,
                                  "hello": self.knob("hello_interval")})  # fmt: skip


TOY = VenueSpec(id="toy", title="Toy Exchange", book_levels=(10,), kline_intervals=("1m",),
                sim=f"{__name__}:ToyVenue")  # fmt: skip


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    real = dict(registry.venues())
    monkeypatch.setattr(registry, "venues", lambda: {**real, "toy": TOY})


def test_sim_venues_are_the_registry_venues_with_a_sim(toy: None) -> None:
    found = sim_venues()
    assert found["toy"] is ToyVenue
    # each venue with a sim, then each of its other markets with an adapter of its own
    assert list(found) == [s.for_market(m).sim_id for s in registry.venues().values() if s.sim
                           for m in s.markets
                           if m == s.markets[0] or "sim" in s.market_overrides.get(m, {})]
    assert {"binance", "bybit"} <= set(found)  # the built-in ones, from their packages
    for vid, cls in found.items():
        assert cls.name == vid
        if vid != "toy":  # each built-in adapter lives in its venue's package
            assert cls.__module__.startswith(f"ttxt_mp.connectors.{vid.split('_')[0]}.sim")


def test_timings_of_a_registry_venue(toy: None) -> None:
    t = VenueTimings(toy_hello_interval=0.5)
    assert t.toy_hello_interval == 0.5 and t.toy_secret_limit == 7
    assert VenueTimings().toy_hello_interval == 2.5
    with pytest.raises(TypeError, match="toy_nope"):
        VenueTimings(toy_nope=1)
    with pytest.raises(AttributeError):
        _ = t.toy_nope


def test_cli_flags_come_from_the_registry(toy: None) -> None:
    off = [a for vid in sim_venues() if vid != "toy" for a in (f"--{vid}", "")]  # built-ins
    ns = parse_args(["--toy", "ETHUSDT", *off, "--toy-hello-interval", "0.25"])
    assert ns.toy == "ETHUSDT" and ns.toy_hello_interval == 0.25
    assert parse_args([]).toy == "BTCUSDT,ETHUSDT"
    with pytest.raises(SystemExit):
        parse_args(["--toy-secret-limit", "3"])  # a knob without a flag is not on the CLI
    sim = build(ns)
    assert list(sim.venues) == ["toy"] and isinstance(sim.venue("toy"), ToyVenue)
    assert sim.timings.toy_hello_interval == 0.25
    with pytest.raises(ValueError, match="--toy"):
        build(parse_args(["--toy", "", *off]))


def test_registry_without_the_toy_has_no_flag() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--toy", "BTCUSDT"])


async def test_simulator_serves_a_registry_venue(toy: None) -> None:
    assert "toy" in Simulator().venues  # the default: every simulated venue
    async with Simulator({"toy": ["BTCUSDT"], "bybit": ["BTCUSDT"]}, seed=3,
                         timings=VenueTimings(toy_hello_interval=1.5), blast_trades=100.0,
                         accounts={"k": ("s", {"USDT": "10"})}, paused=True) as sim, \
            aiohttp.ClientSession() as http:  # fmt: skip
        assert sim.urls is not None and sim.urls.toy is not None
        assert sim.urls.binance is None  # installed, not simulated now
        assert sim.urls.flat()["toy"]["rest"].endswith("/toy")
        async with http.get(sim.urls.toy.rest + "/book", params={"symbol": "btcusdt"}) as r:
            assert r.status == 200
            body = await r.json()
        truth = sim.truth("toy", "BTCUSDT", 3)
        assert body == {"u": truth.update_id, "bids": [list(b) for b in truth.bids], "hello": 1.5}
        assert truth.venue == "toy" and truth.topics == {}
        assert all(len(p.split(".")[1]) == 4 for p, _ in truth.bids)  # its wire decimals
        ctl = sim.urls.control
        async with http.get(ctl + "/truth", params={"venue": "toy", "symbol": "BTCUSDT"}) as r:
            assert r.status == 200 and (await r.json())["venue"] == "toy"
        async with http.post(ctl + "/fault", json={"venue": "toy", "kind": "drop"}) as r:
            assert r.status == 200 and await r.json() == {"applied_to": []}
        async with http.post(ctl + "/fault", json={"venue": "nope", "kind": "drop"}) as r:
            assert r.status == 404
        # capabilities the toy lacks: restart goes to the one venue that has one
        async with http.post(ctl + "/restart", json={"symbol": "BTCUSDT"}) as r:
            assert await r.json() == {"restarted": "BTCUSDT", "venue": "bybit"}
        async with http.post(ctl + "/restart", json={"venue": "toy"}) as r:
            assert r.status == 400 and "no restart" in (await r.json())["error"]
        assert [b.venue.name for b in sim.blasters] == ["bybit"]
        assert sim.toy_trading is None and sim.bybit_trading is sim.trading_apis["bybit"]
        sim.deposit("toy", "k", "USDT", "1")  # every venue has its account book


def test_demo_config_has_a_connector_per_simulated_venue(toy: None) -> None:
    from ttxt_mp.engine.demo import demo_config_text, demo_venues

    assert [s.sim_id for s, _ in demo_venues()] == list(sim_venues())
    text = demo_config_text("127.0.0.1:9", "e", ["BTC/USDT"])
    first = text.splitlines()[0]  # every simulated market named, the plug-in last
    assert first.startswith("# The offline demo's engine: Binance, ") and "Bybit" in first
    assert first.endswith(" and Toy connectors against the local simulator.")
    block = text[text.index('name = "toy"'):]
    assert block.startswith('name = "toy"\nexchange = "toy"\nmarket = "spot"\n'
                            'symbols = ["BTC/USDT"]\n'
                            "streams = { depth = { levels = 10 }")  # its book_levels default
    assert 'endpoints = { ws = "ws://127.0.0.1:9/toy", rest = "http://127.0.0.1:9/toy" }' in block
    assert "levels = 1000" in text and "levels = 50" in text  # the built-ins' demo depths


def test_the_demo_runs_the_chosen_venue_markets_only() -> None:
    from ttxt_mp.engine.demo import demo_config_text, demo_venues

    assert [v.sim_id for v, _ in demo_venues(["bybit_linear", "binance"])] == ["binance",
                                                                              "bybit_linear"]
    text = demo_config_text("127.0.0.1:9", "e", ["BTC/USDT"], ["bybit_linear"])
    assert text.count("[[connectors]]") == 1
    assert 'market = "linear"' in text and 'symbols = ["BTC/USDT:USDT"]' in text
    assert "mark_price = true" in text  # a perpetual shows its mark price and funding
