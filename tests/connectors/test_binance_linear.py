"""Binance USDⓈ-M (market ``linear``) end to end through the simulator: mark prices,
open interest (polled over REST) and liquidations arrive with perpetual symbols and
plausible values next to an exact book; the last mark price and open interest are the
connector's state on join; config and fluent API accept what the market offers only."""

from __future__ import annotations

import asyncio

import pytest

from ttxt_mp.config import ConfigError, DepthStream, Streams, parse_config
from ttxt_mp.connectors.binance.connector import (
    BinanceConnector,
    BinanceLinearConnector,
    futures_depth_weight,
)
from ttxt_mp.connectors.registry import connector_class
from ttxt_mp.events import ConnectorState, MarkPrice, OpenInterest, Side
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.sim import Simulator

from .helpers import SYMBOLS, checkpoint, make_cfg, norm

S = ConnectorState
V = "binance_linear"


async def test_mark_price_open_interest_and_liquidations_arrive(
    sim: Simulator, start_connector
) -> None:
    streams = Streams(depth=DepthStream(levels=1000), trades=True, klines=[],
                      mark_price=True, open_interest=True, liquidations=True)  # fmt: skip
    run = await start_connector(make_cfg(sim, V, streams=streams))
    con = run.consumer
    syms = {norm(s, V) for s in SYMBOLS[V]}

    def every(events) -> bool:
        return {e.symbol for e in events} == syms

    await con.until(lambda: every(con.mark_events) and every(con.oi_events)
                    and every(con.liquidations), 8.0, "mark, OI and liquidations per symbol")  # fmt: skip
    await checkpoint(sim, con, V)
    assert sorted(sim.connections(V)[0]["subscriptions"]) == sorted(
        f"{s.lower()}@{k}" for s in SYMBOLS[V]
        for k in ("depth@100ms", "aggTrade", "markPrice@1s", "forceOrder"))  # fmt: skip
    venue = sim.venue(V)
    for m in con.mark_events:
        native = m.symbol.split("/")[0] + "USDT"
        _, index = venue.mark_index(native)
        assert m.exchange == "binance" and m.exch_ts > 0 and abs(m.mark_price / index - 1) < 0.01
        assert m.index_price > 0 and abs(m.funding_rate) <= 0.00375
        assert m.next_funding_ts > m.exch_ts and m.next_funding_ts % (3600 * 10**9) == 0
    for oi in con.oi_events:
        assert oi.open_interest > 0 and oi.exch_ts > 0 and oi.open_interest_value == 0.0
    for lq in con.liquidations:
        assert lq.side in (Side.BUY, Side.SELL) and lq.price > 0 and lq.qty > 0
    # published only when the value or its time changed: no two equal in a row per symbol
    for sym in syms:
        seq = [(e.open_interest, e.exch_ts) for e in con.oi_events if e.symbol == sym]
        assert all(a != b for a, b in zip(seq, seq[1:], strict=False)), seq
    assert run.connector.open_interest_polls >= len(syms)
    assert con.bad_results() == [] and not con.has_status(S.ERROR), con.status_log()
    await run.stop()
    state = run.connector.state_events()
    for kind, last in ((MarkPrice, con.marks), (OpenInterest, con.open_interest)):
        assert {e.symbol: e for e in state if isinstance(e, kind)} == last, kind


async def test_a_bad_open_interest_body_is_reported_per_symbol(sim: Simulator, start_connector) -> None:
    """An open-interest body the docs do not allow (a negative value): an ERROR naming the
    symbol and the body, no reconnect, the book stays exact; the next good body is
    published."""
    streams = Streams(depth=DepthStream(levels=1000), trades=False, klines=[],
                      open_interest=True)  # fmt: skip
    run = await start_connector(make_cfg(sim, V, ["BTC/USDT:USDT"], streams=streams))
    con = run.consumer
    await con.until(lambda: con.open_interest, 5.0, "first open interest")
    perp = sim.venue(V).perps["BTCUSDT"]  # type: ignore[attr-defined]
    sim.pause()  # no trade moves it meanwhile
    good, perp.oi_lots = perp.oi_lots, -5
    try:
        await con.until(lambda: con.has_status(S.ERROR, "BTC/USDT:USDT", "open interest"),
                        8.0, "ERROR for the symbol")  # fmt: skip
    finally:
        perp.oi_lots = good + 1
        sim.resume()
    err = next(s for s in con.statuses if s.state == S.ERROR)
    assert "open interest for BTC/USDT:USDT failed" in err.message and "$.openInterest" in err.message
    seen = len(con.oi_events)
    await con.until(lambda: len(con.oi_events) > seen, 8.0, "the next open interest")
    await checkpoint(sim, con, V, ["BTCUSDT"])
    assert run.connector.reconnects == 0


def test_the_linear_market_has_its_own_connector_and_weights() -> None:
    assert connector_class("binance") is BinanceConnector
    assert connector_class("binance", "linear") is BinanceLinearConnector
    assert [futures_depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)] == [
        2, 2, 2, 2, 5, 10, 20]  # USDⓈ-M "Order Book" weights


def test_config_linear_market_and_its_streams() -> None:
    cfg = parse_config("""
[engine]
name = "e"
[[connectors]]
name = "perps"
exchange = "binance"
market = "linear"
symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT-250627"]
streams = { depth = { levels = 50 }, mark_price = true, open_interest = true, liquidations = true }
""")
    c = cfg.connectors[0]
    assert (c.market, c.ws_url(), c.rest_url()) == (
        "linear", "wss://fstream.binance.com", "https://fapi.binance.com")
    assert c.spec().kline_intervals[0] == "1m" and c.depth_levels() == 50


@pytest.mark.parametrize(("market", "streams", "error"), [
    ("spot", "mark_price = true", "binance offers no mark_price stream"),
    ("spot", "open_interest = true", "binance offers no open_interest stream"),
    ("spot", "liquidations = true", "binance offers no liquidations stream"),
    ("linear", 'klines = ["1s"]', "binance linear kline intervals are 1m"),
    ("linear", "depth = { levels = 5000 }", "binance linear offers depth levels"),
    ("inverse", "trades = true", "binance offers the markets spot, linear"),
])  # fmt: skip
def test_config_refuses_what_a_market_does_not_offer(market: str, streams: str, error: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"""
[engine]
name = "e"
[[connectors]]
exchange = "binance"
market = "{market}"
symbols = ["BTC/USDT"]
streams = {{ {streams} }}
""")
    assert error in str(info.value) and "\n" not in str(info.value).strip(), str(info.value)


async def test_fluent_api_refuses_derivative_streams_on_spot(sim: Simulator) -> None:
    spot = BinanceConnector(make_cfg(sim, "binance"), AsyncioQueue())
    with pytest.raises(ValueError, match="binance offers no mark_price stream"):
        spot.listening_market_stream(mark_price=True)
    lin = BinanceLinearConnector(make_cfg(sim, V), AsyncioQueue())
    lin.listening_market_stream(symbols=["BTC/USDT:USDT"], depth=False, liquidations=True)
    assert lin.plan.liquidations and not lin.plan.depth
    await asyncio.sleep(0)


async def test_quiet_book_at_connect_syncs_without_a_gap(sim: Simulator, start_connector) -> None:
    """No diff before the snapshot (the market is paused): the snapshot is the book's last
    id and the first event after the resume starts one after it; that misses nothing."""
    sim.pause()
    run = await start_connector(make_cfg(sim, V, ["ETH/USDT:USDT"]))
    con = run.consumer
    try:
        await con.until(lambda: run.connector.symbol_states.get("ETH/USDT:USDT") == S.UP, 5.0,
                        "synced on a quiet book")  # fmt: skip
    finally:
        sim.resume()
    n = con.book_events
    await con.until(lambda: con.book_events > n + 5, 5.0, "deltas after the resume")
    await checkpoint(sim, con, V, ["ETHUSDT"])
    assert run.connector.gaps == 0 and con.bad_results() == [], con.status_log()
