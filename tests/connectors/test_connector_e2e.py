"""Connector -> AsyncioQueue -> consumer books equal the simulator's true books, for both
venues; trades and klines arrive with the right symbols; book tickers are the books' best
levels; statuses tell the life-cycle."""

from __future__ import annotations

import asyncio

import pytest

from ttxt_mp.config import DepthStream, Streams
from ttxt_mp.events import BookTicker, ConnectorState, Liquidation, MarkPrice, OpenInterest
from ttxt_mp.sim import Simulator

from .helpers import DEPTH, KLINE, SYMBOLS, checkpoint, make_cfg, market_of, norm

S = ConnectorState
VENUES = ["binance", "bybit", "bybit_linear", "binance_linear", "okx",
          "okx_linear"]  # simulated venues (id_market)
BOOK_VENUES = [*VENUES, "kraken", "coinbase"]  # + venues whose book tickers follow other rules


@pytest.mark.parametrize("exchange", BOOK_VENUES)
async def test_books_trades_klines_match_simulator(
    sim: Simulator, start_connector, exchange: str
) -> None:
    run = await start_connector(make_cfg(sim, exchange))
    con = run.consumer
    syms = {norm(s, exchange) for s in SYMBOLS[exchange]}
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
        assert mt.exchange == market_of(exchange)[0] and mt.trades
        for t in mt.trades:
            assert t.id and t.price > 0 and t.qty > 0 and t.ts > 0
    iv = KLINE.get(exchange, "1m")
    assert all(k.interval == iv and k.high >= k.low > 0 for k in con.klines)
    # one snapshot per symbol, the rest deltas: nothing was resynced needlessly
    assert con.snapshots == dict.fromkeys(syms, 1) or exchange.startswith("bybit")
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


@pytest.mark.parametrize("exchange", VENUES)
async def test_book_tickers_are_the_best_levels_of_the_book(
    sim: Simulator, start_connector, exchange: str
) -> None:
    """streams.book_ticker: Binance <sym>@bookTicker, Bybit's level-1 book beside the
    depth-50 one. At two paused checkpoints the last BookTicker of each symbol is the best
    bid and ask of the book the consumer rebuilt (which equals the true book); on Binance
    the trades come from @aggTrade: one aggregate id after the other, none missing."""
    agg = market_of(exchange)[0] == "binance"
    streams = Streams(depth=DepthStream(levels=DEPTH[exchange]), trades=True, klines=[],
                      book_ticker=True, agg_trades=agg)  # fmt: skip
    run = await start_connector(make_cfg(sim, exchange, streams=streams))
    con = run.consumer
    syms = {norm(s, exchange) for s in SYMBOLS[exchange]}
    await con.until(lambda: set(con.tickers) == syms and all(
        run.connector.symbol_states.get(s) == S.UP for s in syms), 5.0, "synced, tickers")
    await checkpoint(sim, con, exchange, tickers=True)
    seen = con.ticker_events
    await asyncio.sleep(0.8)  # the market moves on
    await checkpoint(sim, con, exchange, tickers=True)
    assert con.ticker_events > seen, "no BookTicker while the market moved"
    await con.until(lambda: {t.symbol for t in con.trades} == syms, 6.0, "trades")
    assert con.bad_results() == []
    for t in con.tickers.values():
        assert t.exchange == market_of(exchange)[0] and 0 < t.bid < t.ask
        assert t.bid_qty > 0 < t.ask_qty and t.update_id > 0 and t.local_ts > 0
        assert (t.exch_ts > 0) == (exchange != "binance")  # Binance Spot's has no time
    topics = sorted(sim.connections(exchange)[0]["subscriptions"])
    if agg:
        assert topics == sorted(f"{s.lower()}@{k}" for s in SYMBOLS[exchange]
                                for k in ("depth@100ms", "bookTicker", "aggTrade"))  # fmt: skip
        for sym in syms:
            ids = [int(tr.id) for mt in con.trades if mt.symbol == sym for tr in mt.trades]
            assert ids == list(range(ids[0], ids[0] + len(ids))), ids
    elif exchange.startswith("okx"):  # the simulator's names: channel:market
        assert topics == sorted(f"{k}:{s}" for s in SYMBOLS[exchange]
                                for k in ("books", "bbo-tbt", "trades"))  # fmt: skip
    else:
        assert topics == sorted(f"{k}.{s}" for s in SYMBOLS[exchange]
                                for k in ("orderbook.50", "orderbook.1", "publicTrade"))  # fmt: skip
    assert "book ticker" in con.statuses[0].message
    await run.stop()
    # state on join: the last ticker of each symbol, as the consumer last saw it
    state = [e for e in run.connector.state_events() if isinstance(e, BookTicker)]
    assert sorted(state, key=lambda e: e.symbol) == sorted(con.tickers.values(),
                                                           key=lambda e: e.symbol)  # fmt: skip


async def test_bybit_depth_1_book_and_its_tickers_share_one_topic(
    sim: Simulator, start_connector
) -> None:
    streams = Streams(depth=DepthStream(levels=1), trades=False, klines=[], book_ticker=True)
    run = await start_connector(make_cfg(sim, "bybit", streams=streams))
    con = run.consumer
    await checkpoint(sim, con, "bybit", tickers=True, depth=1)
    await asyncio.sleep(0.3)
    await checkpoint(sim, con, "bybit", tickers=True, depth=1)
    assert sorted(sim.connections("bybit")[0]["subscriptions"]) == [
        f"orderbook.1.{s}" for s in sorted(SYMBOLS["bybit"])]
    assert con.ticker_events >= con.book_events > 0  # one of each per level-1 message
    assert con.bad_results() == [] and run.connector.gaps == 0
    assert not con.has_status(S.ERROR), con.status_log()


async def test_bybit_linear_mark_price_open_interest_and_liquidations(
    sim: Simulator, start_connector
) -> None:
    """market = "linear" with streams.mark_price/open_interest/liquidations: at a paused
    checkpoint the last MarkPrice and OpenInterest of each symbol are the venue's merged
    ticker (what it last sent); liquidations arrive with the order's side (a long
    liquidated, S=Buy, is a SELL) and are exactly the ones the venue printed."""
    venue = "bybit_linear"
    streams = Streams(depth=DepthStream(levels=50), trades=False, klines=[], mark_price=True,
                      open_interest=True, liquidations=True)  # fmt: skip
    run = await start_connector(make_cfg(sim, venue, streams=streams))
    con = run.consumer
    syms = {norm(s, venue): s for s in SYMBOLS[venue]}
    await con.until(lambda: set(con.marks) == set(con.open_interest) == set(syms)
                    and {x.symbol for x in con.liquidations} == set(syms), 8.0,
                    "mark price, open interest and liquidations of every symbol")  # fmt: skip
    seen = dict(con.marks)
    await asyncio.sleep(0.5)  # the mark drifts: deltas keep coming
    con.drain()
    assert any(con.marks[s] != seen[s] for s in syms), "no MarkPrice after the snapshot"
    adapter = sim.venue(venue)
    sim.pause()
    try:
        for sym, native in syms.items():
            def same(sym: str = sym, native: str = native) -> bool:
                t = adapter.ticker_truth(native)  # type: ignore[attr-defined]
                m, oi = con.marks[sym], con.open_interest[sym]
                return ((m.mark_price, m.index_price, m.funding_rate, m.next_funding_ts)
                        == (float(t["markPrice"]), float(t["indexPrice"]),
                            float(t["fundingRate"]), int(t["nextFundingTime"]) * 10**6)
                        and (oi.open_interest, oi.open_interest_value)
                        == (float(t["openInterest"]), float(t["openInterestValue"])))  # fmt: skip

            await con.until(same, 5.0, f"{sym} mark price and open interest == the venue's")
        for sym, native in syms.items():
            def printed(native: str = native) -> list[tuple[int, str, float, float]]:
                return [(x["T"] * 10**6, "SELL" if x["S"] == "Buy" else "BUY", float(x["p"]),
                         float(x["v"])) for x in adapter.liquidations[native]]  # type: ignore[attr-defined]  # fmt: skip

            def got(sym: str = sym) -> list[tuple[int, str, float, float]]:
                return [(x.exch_ts, x.side.name, x.price, x.qty) for x in con.liquidations
                        if x.symbol == sym]  # fmt: skip

            await con.until(lambda got=got, printed=printed: got() == printed(), 3.0,
                            f"{sym} liquidations == the ones printed")  # fmt: skip
    finally:
        sim.resume()
    assert all(x.exchange == "bybit" and x.qty > 0 and x.price > 0 for x in con.liquidations)
    assert sorted(sim.connections(venue)[0]["subscriptions"]) == sorted(
        f"{k}.{s}" for s in SYMBOLS[venue] for k in ("orderbook.50", "tickers", "allLiquidation"))
    assert not con.has_status(S.ERROR), con.status_log()
    await run.stop()
    state = {type(e) for e in run.connector.state_events()}
    assert {MarkPrice, OpenInterest} <= state and Liquidation not in state
