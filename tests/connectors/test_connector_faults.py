"""Faults injected by the simulator: the connector reports them, recovers, and the books
its consumer rebuilds are exact again afterwards (never a wrong book in between)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ttxt_mp.connectors.base import ConnectorError
from ttxt_mp.connectors.bybit.connector import BybitConnector
from ttxt_mp.events import ConnectorState
from ttxt_mp.queues import AsyncioQueue
from ttxt_mp.sim import Simulator

from .helpers import SYMBOLS, Consumer, checkpoint, make_cfg, norm

S = ConnectorState
VENUES = ["binance", "bybit", "coinbase", "okx"]
WITH_MARKETS = [*VENUES, "bybit_linear", "binance_linear", "kraken", "okx_linear"]  # + markets
# simulated as venues of their own, and newer venues
WITH_IDS = [*VENUES, "bybit_linear", "binance_linear", "okx_linear"]  # venues whose books
# carry update ids (kraken: checksums, tests/connectors/test_kraken_connector.py)
ALL_SPOT = [*VENUES, "kraken"]


async def synced(run, timeout: float = 5.0) -> Consumer:
    con = run.consumer
    c = run.connector
    await con.until(
        lambda: (
            c.state == S.UP
            # read now, not before the instrument list is in (it would be empty)
            and bool(syms := c.active_symbols)
            and all(c.symbol_states.get(s) == S.UP for s in syms)
            # and this consumer has read each book's snapshot (the connector may be
            # ahead of it on a loaded machine)
            and all(con.snapshots.get(s, 0) >= 1 for s in syms)
        ),
        timeout,
        "connector UP and every book synced",
    )
    return con


def book_ups(con: Consumer, symbol: str, after: int) -> int:
    return sum(1 for s in con.statuses[after:] if s.symbol == symbol and s.state == S.UP)


@pytest.mark.parametrize("exchange", WITH_MARKETS)
async def test_dropped_connection_reconnects_and_resyncs(
    sim: Simulator, start_connector, exchange: str
) -> None:
    run = await start_connector(make_cfg(sim, exchange))
    con = await synced(run)
    await checkpoint(sim, con, exchange)
    mark = len(con.statuses)
    snaps = dict(con.snapshots)
    assert sim.fault(venue=exchange, kind="drop")["applied_to"]
    await con.until(lambda: con.has_status(S.DOWN, "", after=mark), 3.0, "DOWN status")
    await con.until(
        lambda: (
            con.has_status(S.UP, "", after=mark)
            and all(book_ups(con, norm(s, exchange), mark) for s in SYMBOLS[exchange])
        ),
        5.0,
        "UP again with every book resynced",
    )
    down = next(s for s in con.statuses[mark:] if s.state == S.DOWN and not s.symbol)
    assert down.reconnects == 1 and "reconnect 1" in down.message, down.message
    # a fresh snapshot per symbol replaced the consumer's book (nothing carried over)
    syms = [norm(s, exchange) for s in SYMBOLS[exchange]]
    assert all(con.snapshots[s] > snaps[s] for s in syms)
    await checkpoint(sim, con, exchange)
    assert con.bad_results() == []
    assert run.connector.stats()["reconnects"] == 1


@pytest.mark.parametrize("exchange", ALL_SPOT)
@pytest.mark.parametrize(
    ("mode", "needle"),
    [("invalid_json", '{"e":"depthUpdate","E":17000'), ("wrong_shape", '"unexpected":[1,2,3]')],
)
async def test_malformed_frame_reported_and_connector_keeps_going(
    sim: Simulator, start_connector, exchange: str, mode: str, needle: str
) -> None:
    run = await start_connector(make_cfg(sim, exchange))
    con = await synced(run)
    mark = len(con.statuses)
    # one bad frame per open connection (OKX candles have a socket of their own)
    hit = len(sim.fault(venue=exchange, kind="malformed", mode=mode)["applied_to"])
    await con.until(lambda: con.has_status(S.ERROR, after=mark), 3.0, "ERROR status")
    err = next(s for s in con.statuses[mark:] if s.state == S.ERROR)
    assert "malformed frame" in err.message and needle in err.message, err.message
    n = con.book_events
    await con.until(lambda: con.book_events > n + 3, 3.0, "book events after the bad frame")
    assert not con.has_status(S.DOWN, after=mark), "a bad frame must not drop the connection"
    assert run.connector.stats()["malformed"] == hit and run.connector.reconnects == 0
    # the ERROR clears once good frames flow again: an UP follows it, the stats say UP
    err_at = next(i for i, s in enumerate(con.statuses) if i >= mark and s.state == S.ERROR)
    await con.until(lambda: con.has_status(S.UP, "", "valid again", after=err_at), 4.0,
                    "UP after the ERROR")  # fmt: skip
    assert run.connector.stats()["state"] == "UP"
    await checkpoint(sim, con, exchange)
    assert con.bad_results() == []


@pytest.mark.parametrize("exchange", WITH_IDS)
async def test_skipped_update_id_is_a_gap_then_resync(
    sim: Simulator, start_connector, exchange: str
) -> None:
    run = await start_connector(make_cfg(sim, exchange))
    con = await synced(run)
    native = SYMBOLS[exchange][0]
    sym = norm(native, exchange)
    mark = len(con.statuses)
    snaps = con.snapshots[sym]
    sim.fault(venue=exchange, kind="skip_update", symbol=native)
    await con.until(lambda: con.has_status(S.GAP, sym, after=mark), 3.0, "GAP status")
    gap = next(s for s in con.statuses[mark:] if s.state == S.GAP)
    assert "gap" in gap.message and gap.gaps == 1, gap.message
    await con.until(lambda: book_ups(con, sym, mark) >= 1, 5.0, "book resynced")
    states = [s.state for s in con.statuses[mark:] if s.symbol == sym]
    assert states[:3] == [S.GAP, S.RESYNCING, S.UP], con.status_log()
    assert con.snapshots[sym] == snaps + 1
    await checkpoint(sim, con, exchange)
    # the consumer never saw the gap: no delta was published past it
    assert con.bad_results() == []
    st = run.connector.stats()
    assert st["gaps"] == 1 and st["reconnects"] == 0


@pytest.mark.parametrize("exchange", WITH_MARKETS)
async def test_stalled_stream_reconnects_after_heartbeat_timeout(
    sim: Simulator, start_connector, exchange: str
) -> None:
    hb = 0.8
    run = await start_connector(make_cfg(sim, exchange, heartbeat_timeout=hb))
    con = await synced(run)
    mark = len(con.statuses)
    t0 = time.monotonic()
    sim.fault(venue=exchange, kind="stall")  # forever, on the current connection
    await con.until(lambda: con.has_status(S.DOWN, "", after=mark), 4 * hb, "DOWN after stall")
    waited = time.monotonic() - t0
    down = next(s for s in con.statuses[mark:] if s.state == S.DOWN)
    assert "stalled" in down.message, down.message
    assert 0.5 * hb <= waited <= 2.5 * hb, f"stall detected after {waited:.2f} s (timeout {hb})"
    await con.until(
        lambda: (
            con.has_status(S.UP, "", after=mark)
            and all(book_ups(con, norm(s, exchange), mark) for s in SYMBOLS[exchange])
        ),
        5.0,
        "UP again",
    )
    await checkpoint(sim, con, exchange)
    assert con.bad_results() == []


@pytest.mark.parametrize("exchange", ALL_SPOT)
async def test_quiet_market_is_not_a_stall(sim: Simulator, start_connector, exchange: str) -> None:
    """Paused market: no data at all, yet heartbeats prove the socket alive (and, for
    Bybit, are what keeps the server from closing it)."""
    hb = 0.8
    run = await start_connector(make_cfg(sim, exchange, heartbeat_timeout=hb))
    con = await synced(run)
    sim.pause()
    try:
        await asyncio.sleep(max(6 * hb, 3.0))  # > the sim's bybit idle timeout too
    finally:
        sim.resume()
    con.drain()
    assert run.connector.reconnects == 0, con.status_log()


@pytest.mark.parametrize("exchange", ALL_SPOT)
async def test_unknown_symbol_is_reported_and_others_run(
    sim: Simulator, start_connector, exchange: str
) -> None:
    native = SYMBOLS[exchange][0]
    nope = norm("NOPEUSDT", exchange)
    run = await start_connector(make_cfg(sim, exchange, [norm(native, exchange), nope]))
    con = await synced(run)
    err = [s for s in con.statuses if s.symbol == nope]
    assert len(err) == 1 and err[0].state == S.ERROR, con.status_log()
    assert f"unknown symbol {nope}" in err[0].message
    await checkpoint(sim, con, exchange, [native])
    await con.until(lambda: len(con.trades) >= 2, 5.0, "trades")
    assert {t.symbol for t in con.trades} == {norm(native, exchange)}
    assert nope not in con.books
    st = run.connector.stats()
    assert st["unknown_symbols"] == [nope] and st["symbols"][nope] == "ERROR"


@pytest.mark.parametrize("exchange", ALL_SPOT)
async def test_no_known_symbol_fails_clearly(
    sim: Simulator, start_connector, exchange: str
) -> None:
    nope = [norm("NOPEUSDT", exchange), norm("ZZZUSDT", exchange)]
    run = await start_connector(make_cfg(sim, exchange, nope))
    with pytest.raises(ConnectorError, match=r"none of the symbols .*NOPE/USDT"):
        await asyncio.wait_for(asyncio.shield(run.task), 5.0)
    run.consumer.drain()
    assert run.consumer.statuses[-1].state == S.STOPPED
    assert "none of the symbols" in run.consumer.statuses[-1].message


class _DeafBybit(BybitConnector):
    """A venue that never answers the resubscription with a snapshot."""

    def resync_timeout(self) -> float:
        return 0.5

    async def _resubscribe(self, sym: str, sync) -> None:  # noqa: ANN001 - BybitBookSync
        await self._expect_snapshot(sym, sync)


async def test_bybit_no_snapshot_after_gap_forces_a_reconnect(sim: Simulator) -> None:
    q = AsyncioQueue()
    c = _DeafBybit(make_cfg(sim, "bybit"), q)
    task = asyncio.create_task(c.run())
    con = Consumer(q, "bybit")
    try:
        await con.until(
            lambda: all(c.symbol_states.get(norm(s)) == S.UP for s in SYMBOLS["bybit"]),
            5.0,
            "synced",
        )
        mark = len(con.statuses)
        sim.fault(venue="bybit", kind="skip_update", symbol="BTCUSDT")
        await con.until(
            lambda: con.has_status(
                S.DOWN, "", "no orderbook snapshot for BTC/USDT within 0.5 s", after=mark
            ),
            4.0,
            "DOWN naming the missing snapshot",
        )
        await con.until(lambda: book_ups(con, "BTC/USDT", mark) >= 1, 5.0, "resynced")
        await checkpoint(sim, con, "bybit")
        assert con.bad_results() == [] and c.reconnects == 1
    finally:
        c.stop()
        await asyncio.wait_for(task, 5.0)
    assert sim.connections("bybit") == []
