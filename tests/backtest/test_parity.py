"""Live/backtest parity: the market maker (BTC/USDT) and the momentum taker (ETH/USDT)
run live against the simulator (real processes: simulator, engine with a trading
connector and the recorder) while the market is recorded; then each class is backtested
on that recording with the latencies measured live. Their fills must agree.

Tolerance (also in README "Backtesting"): the simulator matches its synthetic flow
against resting user orders like a venue (price then queue priority, a user's order behind
the size visible at its price when placed; hidden from the depth, its fills printed as
public trades), which is the model the backtest applies to the recording; but the
backtest's quotes are placed with the measured (median) latencies, not the live run's
exact ones. So we ask, of both strategies, that

- the fill counts differ by at most ``max(2, 30 %)`` of the live count, and
- at least 70 % of the live fills have a backtest fill of the same side within
  ``MATCH_WINDOW_S`` of simulated time whose price is within ``PRICE_TOL`` (2 bp) for the
  market maker's resting orders and ``TAKER_PRICE_TOL`` (15 bp) for the taker's market
  orders (priced by the book at arrival, which the median latencies place a few ms off).

Each backtest covers what its live strategy ran for (it ends where the live run stopped;
the engine records a little longer). Measured (branch simfill15, loaded 2-core machine, 9
runs): the market maker had 5, 5, 5, 5, 5, 5, 5, 7, 6 live fills and 5, 5, 5, 5, 5, 5, 5, 7, 7
in the backtest, every live fill matched (100 %), matched prices at most 0.28 apart
(< 0.05 bp of 65 000), times 40-540 ms apart (the median latencies do not reproduce the
live run's exact ones). With the simulator of before (its flow never met a user order), 3
runs: 0 %, 0 %, 17 % matched: the comparison was an expected failure. The market maker
fills little: the simulator's own market orders are off (``--trades-per-sec 0``), so only
its crossing limit orders trade, and it reaches its position limit within a second.
The momentum taker, in the same 9 runs, had 2-4 live fills and missed the 70 % in 3
(one of 2 or 3 matched: a backtest market order priced 9 bp away from the live one a few
ms apart, inside a wide spread), and 1 of 4 runs of this test: it can fail on an unlucky
run, for a reason unrelated to resting orders (none rest on its instrument): hence its
wider price tolerance (15 bp). The market maker passed in all 4.
Everything else about the run (the live strategies traded, the recording replays without
gaps or errors, the results hold the fills the strategy saw) must hold too.

The run needs ``ttxt_mp.backtest.venue`` and ``ttxt_mp.backtest.results`` (built on
other branches); without them it is skipped, saying so.
"""

from __future__ import annotations

import os
import statistics
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from engine_process import EngineProcess

pytest.importorskip("ttxt_mp.backtest.venue", reason="needs the simulated venue "
                    "(ttxt_mp.backtest.venue, branch btvenue15)")  # fmt: skip
pytest.importorskip("ttxt_mp.backtest.results", reason="needs the results tables "
                    "(ttxt_mp.backtest.results, branch btres15)")  # fmt: skip

import ttxt_mp  # noqa: E402
from examples.strategies.market_maker import MarketMaker  # noqa: E402
from examples.strategies.momentum import Momentum  # noqa: E402
from ttxt_mp.backtest.runner import Backtest, Latency  # noqa: E402
from ttxt_mp.backtest.venue import FeeSchedule  # noqa: E402
from ttxt_mp.engine.demo import SimProcess  # noqa: E402

LIVE_S = 40.0
WARM_SPREAD_TICKS = 100
WARM_TIMEOUT_S = 60.0
MATCH_WINDOW_S = 1.0
PRICE_TOL = 0.0002
TAKER_PRICE_TOL = 0.0015
"""A market order's price is the book's at its arrival: the backtest sends it after the
median latencies, the live one after the actual ones, a few ms apart; inside the simulated
ETH/USDT book's wide spread that moved the price by up to 9 bp in 9 measured runs."""
KEY, SECRET = "parityKey0001", "parity-secret-not-real"
START = {"USDT": 100_000.0, "BTC": 2.0}
FEE = 0.001  # the simulator's default maker and taker fee


def config(engine: str, port: int, rec: Path) -> str:
    return f"""
[engine]
name = "{engine}"
log_level = "WARNING"

[[connectors]]
exchange = "binance"
symbols = ["BTC/USDT", "ETH/USDT"]
streams = {{ depth = {{ levels = 1000 }}, trades = true }}
endpoints = {{ ws = "ws://127.0.0.1:{port}/binance", rest = "http://127.0.0.1:{port}/binance" }}
credentials = {{ api_key_env = "PARITY_KEY", api_secret_env = "PARITY_SECRET" }}
heartbeat_timeout = 10.0

[recorder]
enabled = true
dir = "{rec}"
chunk_events = 50

[rings.private]
capacity = 4096
policy = "block"
"""


class EthMomentum(Momentum):
    """The momentum taker on its own instrument: on the market maker's, its market orders
    would trade with the maker's resting quotes (the simulator allows self-trades), which
    no recording shows."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(symbol="ETH/USDT", qty=0.01, max_position=0.03, **kw)


SYMBOL = {MarketMaker: "BTC/USDT", EthMomentum: "ETH/USDT"}


class Live(msgspec.Struct):
    """What the live run left: both strategies and the recording."""

    mm: Any
    mom: Any
    rec: Path
    stopped_ns: dict[str, int]  # "mm"/"mom" -> when it stopped live (its clock: wall time)


def live_run(tmp: Path) -> Live:
    """The market maker (this thread) and the momentum taker (another, with its own feed)
    live for LIVE_S seconds against one simulated market, recorded by the engine."""
    rec = tmp / "rec"
    name = f"btpar{os.getpid() % 100000}"
    balances = ",".join(f"{a}={v:g}" for a, v in START.items())
    sim = SimProcess(["BTC/USDT", "ETH/USDT"], venues=("binance",), seed=11,
                     extra=["--account", f"{KEY}:{SECRET}:{balances}",
                            "--updates-per-sec", "100", "--trades-per-sec", "0"])  # fmt: skip
    try:
        eng = EngineProcess(tmp, name, config(name, sim.info["port"], rec),
                            env={**os.environ, "PARITY_KEY": KEY, "PARITY_SECRET": SECRET})
        try:
            eng.start(wait_rings=1)
            warm_up(name)
            mm, mom = MarketMaker(engine=name, name="mm"), EthMomentum(engine=name, name="mom")
            errors: list[BaseException] = []
            taker = threading.Thread(target=_run, args=(mom, name, errors), daemon=True)
            taker.start()
            try:
                _run(mm, name, errors)
            finally:
                taker.join(LIVE_S + 30)
                mm.trading.close()
                mom.trading.close()
            assert not taker.is_alive(), "the momentum client did not stop"
            assert not errors, errors
        finally:
            eng.stop()  # the recorder flushes and closes its files
    finally:
        sim.stop()
    return Live(mm, mom, rec, {"mm": mm.stopped_ns, "mom": mom.stopped_ns})


def _run(client: Any, engine: str, errors: list[BaseException]) -> None:
    try:
        with ttxt_mp.attach(engine, exchanges=["binance"], symbols=[client.symbol],
                            wait=10) as feed:  # fmt: skip
            client.run(feed, duration=LIVE_S)
        client.stopped_ns = client.now
    except BaseException as e:  # surfaced by the test, not lost in a thread
        errors.append(e)
        raise


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    return live_run(tmp_path_factory.mktemp("parity"))


def measured(client: Any) -> Latency:
    """The latencies a strategy saw live: half the median command-to-ack time each way,
    the median exchange-to-strategy delay of the market data."""
    rtt_ms = statistics.median(client.rtt_ns) / 1e6
    lag_ms = max(0.0, statistics.median(client.data_lag_ns) / 1e6)
    return Latency(entry_ms=rtt_ms / 2, data_ms=lag_ms, ack_ms=rtt_ms / 2)


def backtest(live: Live, strategy: type, start: int, latency: Latency,
             end: int | None = None) -> tuple[Any, Any]:  # fmt: skip
    bt = Backtest(live.rec, strategy, symbols=[SYMBOL[strategy]],
                  latency=latency, start=start, end=end,
                  fees={"binance": FeeSchedule(maker=FEE, taker=FEE)},
                  balances={"binance": dict(START)}, on_gap="continue")  # fmt: skip
    res = bt.run()
    assert res.error is None, res.error
    assert not res.gaps, res.gaps
    return bt.client, res


def compare(live_fills: list, back_fills: list, latency: Latency,
            price_tol: float = PRICE_TOL) -> None:  # fmt: skip
    n_live, n_bt = len(live_fills), len(back_fills)
    why = f"live {n_live} fills {live_fills}\nbacktest {n_bt} fills {back_fills}\n{latency}"
    assert abs(n_bt - n_live) <= max(2, 0.3 * n_live), why
    assert matched(live_fills, back_fills, price_tol) >= 0.7 * n_live, why


class _Spread(ttxt_mp.BaseClient):
    """Stops once the book's spread is ``ticks`` wide."""

    def __init__(self, ticks: int) -> None:
        super().__init__()
        self.ticks = ticks
        self.spread = 0.0

    def on_orderbook(self, e: ttxt_mp.Orderbook) -> None:
        b = self.books[(e.exchange, e.symbol)]
        if b.best_bid and b.best_ask:
            self.spread = b.best_ask[0] - b.best_bid[0]
            if self.spread >= self.ticks * 0.01:
                self.stop()


def warm_up(engine: str, ticks: int = WARM_SPREAD_TICKS) -> None:
    """The simulator starts with a one-tick spread where its own flow crosses all the
    time; wait until its book looks like a market (a wide spread) before quoting."""
    w = _Spread(ticks)
    with ttxt_mp.attach(engine, exchanges=["binance"], symbols=["BTC/USDT"], wait=10) as feed:
        w.run(feed, duration=WARM_TIMEOUT_S)
    assert w._stop, f"the simulator's spread never reached {ticks} ticks ({w.spread})"


def matched(live: list[tuple[int, str, float, float]],
            bt: list[tuple[int, str, float, float]], price_tol: float = PRICE_TOL) -> int:  # fmt: skip
    """Live fills with a backtest fill of the same side, close in time and price (each
    backtest fill used once)."""
    used: set[int] = set()
    n = 0
    for t, side, price, _ in live:
        for i, (t2, side2, price2, _) in enumerate(bt):
            if i in used or side2 != side or abs(t2 - t) > MATCH_WINDOW_S * 1e9:
                continue
            if abs(price2 - price) <= price_tol * price:
                used.add(i)
                n += 1
                break
    return n


def test_the_live_run_and_its_backtest_are_sound(live: Live) -> None:
    """What must hold whatever the matching models: the live strategies traded and
    measured their latencies, the recording replays without gaps or errors, and the
    results tables hold exactly the fills the strategy saw."""
    assert len(live.mm.fills) >= 3, f"the live market maker barely traded: {live.mm.fills}"
    assert live.mm.rtt_ns and live.mm.data_lag_ns
    latency = measured(live.mm)
    back, res = backtest(live, MarketMaker, live.mm.first_order_ns, latency)
    assert res.fills and len(res.fills) == len(back.fills)
    assert all(f.liquidity == "maker" for f in res.fills)
    assert [(f.side, f.price) for f in res.fills] == [(s, p) for _, s, p, _ in back.fills]


def test_momentum_taker_fills_match_live(live: Live) -> None:
    """A taker's fills come from walking the book, which the recording holds exactly:
    the backtest must reproduce the live fills (its samples fall at the same times:
    it starts where the live one started, less the data latency)."""
    assert len(live.mom.fills) >= 2, f"the live momentum taker barely traded: {live.mom.fills}"
    latency = measured(live.mm)  # the same connector and rings: its round trips, more of them
    start = live.mom.started_ns - int(latency.data_ms * 1e6)
    back, res = backtest(live, EthMomentum, start, latency, end=live.stopped_ns["mom"])
    assert all(f.liquidity == "taker" for f in res.fills)
    compare(live.mom.fills, back.fills, latency, TAKER_PRICE_TOL)


def test_market_maker_fills_match_live(live: Live) -> None:
    """Resting quotes: the simulator fills them as its flow reaches them, the backtest as
    the recorded trades do; within the tolerance of the module docstring."""
    latency = measured(live.mm)
    # the recording began when the engine did; the strategy started quoting later, and it
    # stopped before the engine (and the recording) did
    start = live.mm.first_order_ns - int(latency.data_ms * 1e6) - 1_000_000
    back, res = backtest(live, MarketMaker, start, latency, end=live.stopped_ns["mm"])
    live_fills = [f for f in live.mm.fills if res.sim_start_ns <= f[0] <= res.sim_end_ns]
    compare(live_fills, back.fills, latency)
