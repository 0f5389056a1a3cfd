"""Coinbase connector specifics through the simulator: book tickers are the venue's last
``ticker`` message (sent on each match, not on every book change); a lost message (a
skipped ``sequence_num``) resyncs every book of the connection by resubscribing level2 while
trades keep flowing; the subscriptions are one channel each, heartbeats included."""

from __future__ import annotations

import asyncio

from ttxt_mp.config import DepthStream, Streams
from ttxt_mp.events import BookTicker, ConnectorState
from ttxt_mp.sim import Simulator

from .helpers import DEPTH, SYMBOLS, checkpoint, make_cfg, norm

S = ConnectorState
VENUE = "coinbase"


async def test_book_tickers_are_the_venues_last_ticker(sim: Simulator, start_connector) -> None:
    streams = Streams(depth=DepthStream(levels=DEPTH[VENUE]), trades=True, klines=[],
                      book_ticker=True)  # fmt: skip
    run = await start_connector(make_cfg(sim, VENUE, streams=streams))
    con = run.consumer
    syms = {norm(s): s for s in SYMBOLS[VENUE]}
    await con.until(lambda: set(con.tickers) == set(syms), 5.0, "a ticker per symbol")
    await asyncio.sleep(0.5)  # trades move the tickers
    adapter = sim.venue(VENUE)
    sim.pause()
    try:
        for sym, native in syms.items():
            def same(sym: str = sym, native: str = native) -> bool:
                t = adapter.last_ticker[native]  # type: ignore[attr-defined]
                got = con.tickers[sym]
                return (got.bid, got.bid_qty, got.ask, got.ask_qty) == (
                    float(t["best_bid"]), float(t["best_bid_quantity"]), float(t["best_ask"]),
                    float(t["best_ask_quantity"]))  # fmt: skip

            await con.until(same, 5.0, f"{sym} ticker == the venue's last")
    finally:
        sim.resume()
    assert all(t.exchange == VENUE and 0 < t.bid < t.ask and t.exch_ts > 0
               for t in con.tickers.values())  # fmt: skip
    subs = sim.connections(VENUE)[0]["subscriptions"]
    assert sorted(subs) == sorted([f"{ch}:{p}" for ch in ("level2", "market_trades", "ticker")
                                   for p in ("BTC-USDT", "XRP-USDT")] + ["heartbeats"])  # fmt: skip
    await run.stop()
    state = [e for e in run.connector.state_events() if isinstance(e, BookTicker)]
    assert {e.symbol for e in state} == set(syms)


async def test_lost_message_resyncs_every_book_trades_keep_flowing(
    sim: Simulator, start_connector
) -> None:
    run = await start_connector(make_cfg(sim, VENUE))
    con = run.consumer
    syms = [norm(s) for s in SYMBOLS[VENUE]]
    await con.until(lambda: all(run.connector.symbol_states.get(s) == S.UP for s in syms)
                    and all(con.snapshots.get(s) == 1 for s in syms), 5.0, "synced")  # fmt: skip
    await checkpoint(sim, con, VENUE)
    mark, trades = len(con.statuses), len(con.trades)
    sim.fault(venue=VENUE, kind="skip_update", symbol="XRPUSDT")
    await con.until(lambda: all(con.snapshots.get(s) == 2 for s in syms), 5.0,
                    "a fresh snapshot for every book")  # fmt: skip
    for s in syms:
        states = [x.state for x in con.statuses[mark:] if x.symbol == s]
        assert states[:3] == [S.GAP, S.RESYNCING, S.UP], con.status_log()
    gap = next(x for x in con.statuses[mark:] if x.state == S.GAP)
    assert "sequence_num" in gap.message and "lost" in gap.message
    await con.until(lambda: len(con.trades) > trades + 2, 5.0, "trades after the gap")
    await checkpoint(sim, con, VENUE)
    assert con.bad_results() == []
    st = run.connector.stats()
    assert (st["gaps"], st["resyncs"], st["reconnects"]) == (1, 2, 0)
    assert not con.has_status(S.DOWN, "", after=mark)


async def test_client_messages_keep_to_eight_per_second(sim: Simulator) -> None:
    """Resubscriptions after many gaps: never more than 8 client messages in any second."""
    import time

    from ttxt_mp.connectors.coinbase.connector import MESSAGES_PER_SEC, CoinbaseConnector
    from ttxt_mp.queues import AsyncioQueue

    c = CoinbaseConnector(make_cfg(sim, VENUE), AsyncioQueue())
    sent: list[float] = []

    async def record(frames, pause: float = 0.0) -> None:  # noqa: ANN001 - send_frames' shape
        sent.extend(time.monotonic() for _ in frames)

    c.send_frames = record  # type: ignore[method-assign]
    await c._send_paced([b"{}"] * 12)  # noqa: SLF001
    assert len(sent) == 12
    assert all(sent[i + MESSAGES_PER_SEC] - sent[i] >= 1.0 for i in range(12 - MESSAGES_PER_SEC))
    await c.factory.close()
