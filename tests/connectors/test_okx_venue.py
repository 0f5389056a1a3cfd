"""OKX through the simulator: a wrong checksum resyncs that one instrument (GAP, RESYNCING,
UP; counted; the other instrument untouched); checksums of 0 (OKX from June 2026) and
``checksum = false`` never resync; the documented sequence reset keeps the book; the linear
market's mark price (mark + funding + index), open interest and liquidations equal what
the venue sent; the per-connection request budget."""

from __future__ import annotations

import asyncio

import pytest

from ttxt_mp.config import ConfigError, DepthStream, Streams, parse_config
from ttxt_mp.connectors.okx.limits import ConnectPacer, OpBudget
from ttxt_mp.events import ConnectorState
from ttxt_mp.sim import Simulator

from .helpers import SYMBOLS, checkpoint, make_cfg, norm
from .test_connector_faults import book_ups, synced

S = ConnectorState


async def test_wrong_checksum_resyncs_only_that_instrument(sim: Simulator, start_connector) -> None:
    run = await start_connector(make_cfg(sim, "okx"))
    con = await synced(run)
    bad, good = (norm(s, "okx") for s in SYMBOLS["okx"])
    mark = len(con.statuses)
    snaps = dict(con.snapshots)
    sim.venue("okx").corrupt_checksum(SYMBOLS["okx"][0])  # type: ignore[attr-defined]
    await con.until(lambda: book_ups(con, bad, mark) >= 1, 5.0, "resynced after the mismatch")
    states = [s.state for s in con.statuses[mark:] if s.symbol == bad]
    assert states[:3] == [S.GAP, S.RESYNCING, S.UP], con.status_log()
    gap = next(s for s in con.statuses[mark:] if s.state == S.GAP)
    assert "checksum mismatch" in gap.message and gap.gaps == 1, gap.message
    assert not [s for s in con.statuses[mark:] if s.symbol == good], "the other book moved"
    assert con.snapshots[bad] == snaps[bad] + 1 and con.snapshots[good] == snaps[good]
    await checkpoint(sim, con, "okx")
    assert con.bad_results() == []
    st = run.connector.stats()
    assert (st["checksum_errors"], st["gaps"], st["resyncs"], st["reconnects"]) == (1, 1, 1, 0)


async def test_zero_or_unchecked_checksums_never_resync(sim: Simulator, start_connector) -> None:
    sim.timings.okx_checksum_zero = True  # what OKX sends from June 2026
    run = await start_connector(make_cfg(sim, "okx"))
    await synced(run)
    await asyncio.sleep(0.3)
    await checkpoint(sim, run.consumer, "okx")
    sim.timings.okx_checksum_zero = False
    off = await start_connector(make_cfg(sim, "okx", name="unchecked", checksum=False))
    con = await synced(off)
    sim.venue("okx").corrupt_checksum(SYMBOLS["okx"][0], 5)  # type: ignore[attr-defined]
    await asyncio.sleep(0.8)
    await checkpoint(sim, con, "okx")
    for r in (run, off):
        assert r.connector.stats()["gaps"] == 0 and r.connector.checksum_errors == 0


async def test_sequence_reset_keeps_the_book(sim: Simulator, start_connector) -> None:
    run = await start_connector(make_cfg(sim, "okx"))
    con = await synced(run)
    sim.restart("okx", SYMBOLS["okx"][0])  # seqId < prevSeqId, then the usual chain
    await asyncio.sleep(0.5)
    await checkpoint(sim, con, "okx")
    assert run.connector.gaps == 0 and con.bad_results() == []
    assert con.books[norm(SYMBOLS["okx"][0], "okx")].update_id < 10_000


async def test_linear_mark_price_open_interest_and_liquidations(
    sim: Simulator, start_connector
) -> None:
    venue = "okx_linear"
    streams = Streams(depth=DepthStream(levels=400), trades=False, klines=[], mark_price=True,
                      open_interest=True, liquidations=True)  # fmt: skip
    run = await start_connector(make_cfg(sim, venue, streams=streams))
    con = run.consumer
    syms = {norm(s, venue): s for s in SYMBOLS[venue]}
    await con.until(lambda: set(con.marks) == set(con.open_interest) == set(syms)
                    and {x.symbol for x in con.liquidations} == set(syms), 8.0,
                    "mark price, open interest and liquidations of every symbol")  # fmt: skip
    adapter = sim.venue(venue)
    sim.pause()
    try:
        for sym, native in syms.items():
            def same(sym: str = sym, native: str = native) -> bool:
                t = adapter.swap_truth(native)  # type: ignore[attr-defined]
                m, oi = con.marks[sym], con.open_interest[sym]
                f = t["funding-rate"]
                return ((m.mark_price, m.index_price, m.funding_rate, m.next_funding_ts) == (
                    float(t["mark-price"]["markPx"]), float(t["index-tickers"]["idxPx"]),
                    float(f["fundingRate"]), int(f["fundingTime"]) * 10**6)
                    and (oi.open_interest, oi.open_interest_value) == (
                    float(t["open-interest"]["oi"]), float(t["open-interest"]["oiUsd"])))

            await con.until(same, 5.0, f"{sym} mark price and open interest == the venue's")

        def printed() -> list[tuple[str, int, str, float, float]]:
            return sorted((d["instId"], int(x["ts"]) * 10**6, x["side"].upper(), float(x["bkPx"]),
                           float(x["sz"])) for d in adapter.liquidations  # type: ignore[attr-defined]
                          for x in d["details"])  # fmt: skip

        def got() -> list[tuple[str, int, str, float, float]]:
            return sorted((x.symbol.split("/")[0] + "-USDT-SWAP", x.exch_ts, x.side.name, x.price,
                           x.qty) for x in con.liquidations)  # fmt: skip

        await con.until(lambda: got() == printed(), 3.0, "liquidations == the ones printed")
    finally:
        sim.resume()
    await checkpoint(sim, con, venue)
    assert all(x.exchange == "okx" for x in con.liquidations)
    assert not con.has_status(S.ERROR), con.status_log()


async def test_candles_socket_fault_reconnects_both_sockets(sim: Simulator, start_connector) -> None:
    """Candles come from /ws/v5/business, a socket tied to the public one: dropping or
    stalling it alone reconnects the connector (books resynced, klines again)."""
    run = await start_connector(make_cfg(sim, "okx", heartbeat_timeout=0.8))
    con = await synced(run)
    for kind, n in (("drop", 1), ("stall", 2)):
        await con.until(lambda: len(sim.connections("okx")) == 2, 5.0, "both sockets open")
        [biz] = [c for c in sim.connections("okx") if c["path"].endswith("/business")]
        assert biz["subscriptions"] == [f"candle1m:{s}" for s in sorted(SYMBOLS["okx"])]
        mark, klines = len(con.statuses), len(con.klines)
        sim.fault(venue="okx", kind=kind, conn_id=biz["id"])
        await con.until(lambda mark=mark: con.has_status(S.DOWN, "", "business", after=mark),
                        4.0, f"DOWN naming the business socket ({kind})")  # fmt: skip
        await con.until(lambda mark=mark, klines=klines: len(con.klines) > klines and all(
            book_ups(con, norm(s, "okx"), mark) for s in SYMBOLS["okx"]), 6.0,
            "books and klines again")  # fmt: skip
        assert run.connector.reconnects == n
    await checkpoint(sim, con, "okx")
    assert con.bad_results() == []


async def test_ping_only_when_quiet(sim: Simulator, start_connector) -> None:
    """"ping" after N s without a frame (N = heartbeat_timeout / 2 = 0.6 s): none while books
    flow, some while the market is paused, and the pongs keep the sockets up."""
    streams = Streams(depth=DepthStream(levels=400), trades=False, klines=[])
    run = await start_connector(make_cfg(sim, "okx", streams=streams, heartbeat_timeout=1.2))
    await synced(run)
    await asyncio.sleep(1.0)  # books updates every 100 ms: never 0.6 s of silence
    assert run.connector.pings_sent == 0
    sim.pause()
    try:
        await run.consumer.until(lambda: run.connector.pings_sent >= 3, 4.0, "pings when quiet")
    finally:
        sim.resume()
    assert run.connector.reconnects == 0, run.consumer.status_log()


def test_request_budget_and_connect_pacing() -> None:
    now = [0.0]
    budget = OpBudget(per_hour=3, clock=lambda: now[0])
    for _ in range(3):
        assert not budget.exhausted()
        budget.take()
    assert budget.exhausted() and budget.used == 3
    now[0] = 3600.0
    assert not budget.exhausted()

    async def three_then_wait() -> float:
        p = ConnectPacer(per_second=3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(4):
            await p.acquire()
        return loop.time() - t0

    assert asyncio.run(three_then_wait()) >= 0.9


def _cfg(connector: str) -> str:
    return f'[engine]\nname = "e"\n[[connectors]]\nexchange = "okx"\n{connector}\n'


@pytest.mark.parametrize(("connector", "msg"), [
    ('symbols = ["BTC/USDT"]\nstreams = { mark_price = true }',
     r"key 'connectors\[0\].streams.mark_price': okx offers no mark_price stream"),
    ('symbols = ["BTC/USDT"]\nstreams = { depth = { levels = 50 } }',
     r"key 'connectors\[0\].streams.depth.levels'.*1, 5, 400"),
    ('symbols = ["BTC/USDT"]\nstreams = { klines = ["1y"] }', r"kline"),
    ('market = "inverse"\nsymbols = ["BTC/USD:BTC"]',
     r"okx offers the markets spot, linear; got 'inverse'"),
    ('symbols = ["BTC/USDT"]\nchecksum = "no"', r"checksum"),
])  # fmt: skip
def test_config_mistakes_are_one_line(connector: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg) as e:
        parse_config(_cfg(connector))
    assert "\n" not in str(e.value)


def test_linear_config_with_every_derivative_stream() -> None:
    cfg = parse_config(_cfg('market = "linear"\nsymbols = ["BTC/USDT:USDT"]\nchecksum = false\n'
                            'streams = { depth = { levels = 5 }, book_ticker = true, '
                            'mark_price = true, open_interest = true, liquidations = true, '
                            'klines = ["1m", "1d"] }'))  # fmt: skip
    [c] = cfg.connectors
    assert (c.spec().label, c.spec().sim_id, c.checksum, c.depth_levels()) == (
        "okx linear", "okx_linear", False, 5)
    assert c.ws_url() == "wss://ws.okx.com:8443" and c.rest_url() == "https://www.okx.com"
