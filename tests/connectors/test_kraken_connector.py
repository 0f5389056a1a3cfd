"""Kraken through the simulator: a bad checksum resyncs that one symbol (GAP, RESYNCING, UP;
counted) and never the others; ``checksum = false`` turns the check off; book tickers are
the books' best levels; a small depth (constant truncation) stays exact."""

from __future__ import annotations

import asyncio

from ttxt_mp.config import DepthStream, Streams
from ttxt_mp.events import ConnectorState
from ttxt_mp.sim import Simulator

from .helpers import SYMBOLS, checkpoint, make_cfg, norm
from .test_connector_faults import book_ups, synced

S = ConnectorState
EX = "kraken"


async def test_bad_checksum_resyncs_only_that_symbol(sim: Simulator, start_connector) -> None:
    run = await start_connector(make_cfg(sim, EX))
    con = await synced(run)
    bad, good = (norm(s, EX) for s in SYMBOLS[EX])
    mark = len(con.statuses)
    snaps = dict(con.snapshots)
    sim.venue(EX).corrupt_checksum(SYMBOLS[EX][0])  # type: ignore[attr-defined]
    await con.until(lambda: book_ups(con, bad, mark) >= 1, 5.0, "book resynced")
    states = [s.state for s in con.statuses[mark:] if s.symbol == bad]
    assert states[:3] == [S.GAP, S.RESYNCING, S.UP], con.status_log()
    gap = next(s for s in con.statuses[mark:] if s.state == S.GAP)
    assert "checksum mismatch" in gap.message and gap.gaps == 1, gap.message
    assert not [s for s in con.statuses[mark:] if s.symbol == good], "the other book was touched"
    assert con.snapshots == {bad: snaps[bad] + 1, good: snaps[good]}
    await checkpoint(sim, con, EX)
    assert con.bad_results() == []
    st = run.connector.stats()
    assert (st["gaps"], st["resyncs"], st["checksum_mismatches"], st["reconnects"]) == (1, 1, 1, 0)
    subs = sim.connections(EX)[0]["subscriptions"]
    assert sorted(subs) == sorted(f"{k}:{s}" for s in SYMBOLS[EX] for k in ("book", "trade",
                                                                           "ohlc:1"))


async def test_checksum_off(sim: Simulator, start_connector) -> None:
    run = await start_connector(make_cfg(sim, EX, checksum=False))
    con = await synced(run)
    assert "checksum off" in next(s.message for s in con.statuses if s.symbol and s.state == S.UP)
    sim.venue(EX).corrupt_checksum(SYMBOLS[EX][0], 3)  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    await checkpoint(sim, con, EX)
    assert run.connector.gaps == 0 and not con.has_status(S.GAP)


async def test_book_tickers_and_a_truncated_depth(sim: Simulator, start_connector) -> None:
    streams = Streams(depth=DepthStream(levels=10), trades=False, klines=[], book_ticker=True)
    run = await start_connector(make_cfg(sim, EX, streams=streams))
    con = await synced(run)
    syms = {norm(s, EX) for s in SYMBOLS[EX]}
    await con.until(lambda: set(con.tickers) == syms, 5.0, "tickers")
    await checkpoint(sim, con, EX, tickers=True, depth=10)
    await asyncio.sleep(0.6)  # inserts push levels out of the 10-level window
    await checkpoint(sim, con, EX, tickers=True, depth=10)
    assert con.bad_results() == [] and run.connector.gaps == 0
    assert all(len(b.bids()) == 10 == len(b.asks()) for b in con.books.values())
    assert sorted(sim.connections(EX)[0]["subscriptions"]) == sorted(
        f"{k}:{s}" for s in SYMBOLS[EX] for k in ("book", "ticker"))
