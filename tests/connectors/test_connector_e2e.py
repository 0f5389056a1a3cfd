"""Connector -> AsyncioQueue -> consumer books equal the simulator's true books, for both
venues; trades and klines arrive with the right symbols; statuses tell the life-cycle."""

from __future__ import annotations

import asyncio

import pytest

from ttxt_mp.events import ConnectorState
from ttxt_mp.sim import Simulator

from .helpers import SYMBOLS, checkpoint, make_cfg, norm

S = ConnectorState
VENUES = ["binance", "bybit"]


@pytest.mark.parametrize("exchange", VENUES)
async def test_books_trades_klines_match_simulator(
    sim: Simulator, start_connector, exchange: str
) -> None:
    run = await start_connector(make_cfg(sim, exchange))
    con = run.consumer
    syms = {norm(s) for s in SYMBOLS[exchange]}
    await con.until(
        lambda: all(run.connector.symbol_states.get(s) == S.UP for s in syms),
        5.0,
        "every book synced",
    )
    await checkpoint(sim, con, exchange)
    await asyncio.sleep(0.8)  # the market moves on; deltas keep the books exact
    await checkpoint(sim, con, exchange)
    await con.until(
        lambda: {t.symbol for t in con.trades} == syms and {k.symbol for k in con.klines} == syms,
        6.0,
        "trades and klines",
    )
    assert con.bad_results() == [], "a published book event did not apply cleanly"
    for mt in con.trades:
        assert mt.exchange == exchange and mt.trades
        for t in mt.trades:
            assert t.id and t.price > 0 and t.qty > 0 and t.ts > 0
    assert all(k.interval == "1m" and k.high >= k.low > 0 for k in con.klines)
    # one snapshot per symbol, the rest deltas: nothing was resynced needlessly
    assert con.snapshots == dict.fromkeys(syms, 1) or exchange == "bybit"
    states = [s.state for s in con.statuses if not s.symbol]
    assert states[:3] == [S.STARTING, S.CONNECTING, S.UP], con.status_log()
    stats = run.connector.stats()
    assert stats["state"] == "UP" and stats["reconnects"] == 0 and stats["gaps"] == 0
    assert stats["events"] == con.book_events + len(con.trades) + len(con.klines)

    await run.stop()
    assert con.statuses[-1].state == S.STOPPED, con.status_log()
    assert sim.connections(exchange) == [], "the socket must be closed on stop"


async def test_bybit_service_restart_u1_replaces_book(sim: Simulator, start_connector) -> None:
    run = await start_connector(make_cfg(sim, "bybit"))
    con = run.consumer
    await checkpoint(sim, con, "bybit")
    sim.restart_bybit("BTCUSDT")  # topics restart at u=1 with a snapshot
    await con.until(
        lambda: con.books.get("BTC/USDT") is not None and con.books["BTC/USDT"].update_id < 10,
        5.0,
        "u=1 snapshot applied",
    )
    await checkpoint(sim, con, "bybit")
    assert con.bad_results() == []
    assert run.connector.gaps == 0


async def test_fluent_listening_market_stream_selects_streams(
    sim: Simulator, start_connector
) -> None:
    run = await start_connector(
        make_cfg(sim, "binance"),
        configure=lambda c: c.listening_market_stream(
            symbols=["ETH/USDT"], depth=False, trades=True, klines=[]
        ),
    )
    con = run.consumer
    await con.until(lambda: len(con.trades) >= 3, 5.0, "ETH trades")
    await asyncio.sleep(0.3)
    con.drain()
    assert con.books == {} and con.klines == []
    assert {t.symbol for t in con.trades} == {"ETH/USDT"}
    subs = sim.connections("binance")[0]["subscriptions"]
    assert subs == ["ethusdt@trade"]
