"""The whole backtest with the real venue and results: determinism (same recording and
strategy -> byte-identical written results), the example strategies run unchanged, and
the ``ttxt-mp backtest`` command end to end. Skipped, saying why, until the simulated
venue and the results modules (other branches) are importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bt_doubles import MS, T0, S, market, move, trade, write_recording

pytest.importorskip("ttxt_mp.backtest.venue", reason="needs the simulated venue "
                    "(ttxt_mp.backtest.venue, branch btvenue15)")  # fmt: skip
pytest.importorskip("ttxt_mp.backtest.results", reason="needs the results tables "
                    "(ttxt_mp.backtest.results, branch btres15)")  # fmt: skip

from examples.strategies.market_maker import MarketMaker  # noqa: E402
from examples.strategies.momentum import Momentum  # noqa: E402
from ttxt_mp.backtest.runner import Backtest, Latency  # noqa: E402
from ttxt_mp.backtest.venue import FeeSchedule  # noqa: E402
from ttxt_mp.client import BaseClient  # noqa: E402
from ttxt_mp.events import MarkPrice, Orderbook, OrderStatus, PositionUpdate, Side  # noqa: E402
from ttxt_mp.trading_client import TradingMixin  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BAL = {"binance": {"USDT": 100_000.0, "BTC": 2.0}}
FEES = {"binance": FeeSchedule(maker=0.0002, taker=0.0005)}


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of a market that trends up then down (for the momentum taker), with
    trades through the quotes (for the market maker)."""
    evs = market(30)
    t = T0 + 30 * S
    prev = (evs[-2].bids[-1][0], evs[-2].asks[-1][0]) if type(evs[-2]) is Orderbook else None
    assert prev is not None
    for i in range(1, 301):
        ts = t + i * 100 * MS
        mid = 100.5 + (i if i <= 150 else 300 - i) * 0.02
        now = (round(mid - 0.5, 2), round(mid + 0.5, 2))
        evs.append(move(ts, prev, now, n=1000 + i))
        prev = now
        if i % 5 == 0:
            evs.append(trade(ts, round(mid - 0.5, 2) if i % 10 else round(mid + 0.5, 2),
                             side=trade_side(i)))  # fmt: skip
    return write_recording(evs, tmp_path_factory.mktemp("e2e") / "rec")


def trade_side(i: int):  # noqa: ANN201
    from ttxt_mp.events import Side

    return Side.SELL if i % 10 else Side.BUY


def run(rec: Path, strategy: type, **kw) -> object:
    return Backtest(rec, strategy, balances=BAL, fees=FEES, equity_interval_s=1.0,
                    latency=Latency(entry_ms=2, data_ms=1, ack_ms=2), **kw).run()  # fmt: skip


@pytest.mark.parametrize("strategy", [MarketMaker, Momentum])
def test_same_recording_same_bytes(rec: Path, tmp_path: Path, strategy: type) -> None:
    a, b = run(rec, strategy), run(rec, strategy)
    assert a.error is None and b.error is None
    assert a.fills, "the strategy traded nothing: the test would prove little"
    fa, fb = a.write(tmp_path / "a"), b.write(tmp_path / "b")
    assert [p.name for p in fa] == [p.name for p in fb] and fa
    for x, y in zip(fa, fb, strict=True):
        assert x.read_bytes() == y.read_bytes(), f"{x.name} differs between two runs"


def test_examples_trade_in_a_backtest(rec: Path) -> None:
    res = run(rec, MarketMaker)
    assert res.fills and {f.side for f in res.fills} == {"BUY", "SELL"}
    assert all(f.liquidity == "maker" for f in res.fills)
    res = run(rec, Momentum)
    assert res.fills and all(f.liquidity == "taker" for f in res.fills)
    assert res.equity and res.summary().fills == len(res.fills)


def test_from_before_the_recording_starts_at_its_first_event(rec: Path) -> None:
    """``--from`` hours before the recording: simulated time (span, equity samples) starts
    at the first recorded event, not at the empty hours before it."""
    whole = run(rec, Momentum)
    early = run(rec, Momentum, start=whole.sim_start_ns - 3600 * S)
    assert early.sim_start_ns == whole.sim_start_ns
    assert [e.ts for e in early.equity] == [e.ts for e in whole.equity]


def test_cli_end_to_end(rec: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "out", tmp_path / "equity.png"
    argv = [sys.executable, "-m", "ttxt_mp.cli", "backtest", str(rec), "--strategy",
            "examples.strategies.market_maker:MarketMaker", "--balance", "binance:USDT=100000",
            "binance:BTC=2", "--fees", "binance=0.0002,0.0005", "--latency-ms", "1",
            "--out", str(out), "--no-progress", "--sharpe-interval", "1m"]  # fmt: skip
    if _has("matplotlib"):
        argv += ["--plot", str(plot)]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert any(out.iterdir()) and "Traceback" not in p.stderr
    assert "1m" in p.stdout  # the summary's Sharpe on the interval asked for
    if _has("matplotlib"):
        assert plot.stat().st_size > 0


def test_cli_reports_a_strategy_error(rec: Path, tmp_path: Path) -> None:
    mod = tmp_path / "boom_strategy_x.py"
    mod.write_text("from ttxt_mp.client import BaseClient\n\n"
                   "class Boom(BaseClient):\n"
                   "    def on_trades(self, e):\n"
                   "        raise ValueError('kaput')\n")  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "backtest", str(rec), "--strategy",
                        "boom_strategy_x:Boom", "--no-progress", "--out", str(tmp_path / "o")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 1
    assert "strategy raised ValueError: kaput at 2024-05-01T00:00:01" in p.stderr
    assert "on MarketTrades binance BTC/USDT" in p.stderr and "Traceback" not in p.stderr
    assert any((tmp_path / "o").iterdir())  # the partial results were written


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class _Amender(TradingMixin, BaseClient):
    """Rests a buy far below the market, amends its price, then cancels it."""

    def __init__(self) -> None:
        super().__init__()
        self.enable_trading("x", "am")
        self.step = 0
        self.acks: list[tuple[str, bool]] = []

    def on_orderbook(self, e) -> None:  # noqa: ANN001
        self.step += 1
        if self.step == 1:
            self.cid = self.create_order("binance", "BTC/USDT", Side.BUY, 0.01, price=50.0)
        elif self.step == 5:
            self.amend_order("binance", "BTC/USDT", self.cid, new_price=51.0)
        elif self.step == 10:
            self.cancel_order("binance", "BTC/USDT", self.cid)

    def on_order_ack(self, e) -> None:  # noqa: ANN001
        self.acks.append((e.action.name, e.accepted))


def test_amend_and_cancel_through_the_venue(rec: Path) -> None:
    bt = Backtest(rec, _Amender, balances=BAL, latency=Latency(entry_ms=1, ack_ms=1))
    res = bt.run()
    assert res.error is None
    c = bt.client
    assert c.acks == [("CREATE", True), ("AMEND", True), ("CANCEL", True)]
    assert [o.status for o in res.orders if o.client_order_id == c.cid][-1] == "CANCELED"
    assert c.trading.orders[c.cid].status == OrderStatus.CANCELED and not c.trading.open_orders
    usdt = c.trading.balance("binance", "USDT")
    assert usdt.locked == 0 and usdt.free == pytest.approx(100_000.0)


class _PerpLong(TradingMixin, BaseClient):
    def __init__(self) -> None:
        super().__init__()
        self.enable_trading("x", "perp")
        self.positions: list[PositionUpdate] = []

    def on_orderbook(self, e) -> None:  # noqa: ANN001
        if not self.trading.orders:
            self.create_order("binance", PERP, Side.BUY, 0.5)  # at market

    def on_position(self, e: PositionUpdate) -> None:
        self.positions.append(e)


PERP = "BTC/USDT:USDT"


def test_perpetual_position_and_funding(tmp_path: Path) -> None:
    evs = market(20, symbol=PERP)
    funding_at = T0 + 10 * S
    evs += [MarkPrice(exchange="binance", symbol=PERP, exch_ts=T0 + k * S, local_ts=T0 + k * S,
                      mark_price=100.5, funding_rate=0.001, next_funding_ts=funding_at)
            for k in range(1, 10)]  # fmt: skip
    evs.sort(key=lambda e: e.exch_ts)
    rec = write_recording(evs, tmp_path / "perp")
    bt = Backtest(rec, _PerpLong, balances={"binance": {"USDT": 10_000.0}})
    res = bt.run()
    assert res.error is None, res.error
    c = bt.client
    pos = c.trading.position("binance", PERP)
    assert pos is not None and pos.size == pytest.approx(0.5) and c.positions
    assert res.positions and res.positions[-1].size == pytest.approx(0.5)
    # one funding payment of -position * mark * rate, paid in USDT
    assert res.positions[-1].funding == pytest.approx(-0.5 * 100.5 * 0.001)
