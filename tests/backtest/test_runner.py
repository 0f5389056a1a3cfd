"""The backtest runner: one heap in simulated time (latencies, timers, equity samples),
the live trading API on a simulated venue, gaps, a strategy that raises, bad inputs.

The venue and the results are test doubles (bt_doubles.py) so what is tested here is the
runner alone: when each thing reaches whom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bt_doubles import MS, T0, S, book, install_doubles, market, trade, write_recording

from ttxt_mp import events as ev
from ttxt_mp.backtest.records import EquityRow, FillRow
from ttxt_mp.backtest.runner import Backtest, Latency, iso_ns, quote_of
from ttxt_mp.backtest.trading import BacktestTrading
from ttxt_mp.client import BaseClient
from ttxt_mp.trading_client import TradingError, TradingMixin


class Recorder(TradingMixin, BaseClient):
    """Logs (what, now) for every callback; sends one market buy at the first book."""

    def __init__(self, **args: Any) -> None:
        super().__init__(**args)
        self.enable_trading("none", "rec")
        self.log: list[tuple[str, int]] = []
        self.sent = False

    def on_orderbook(self, e: ev.Orderbook) -> None:
        self.log.append((f"book {e.first_update_id}", self.now))
        if not self.sent:
            self.sent = True
            self.cid = self.create_order("binance", "BTC/USDT", ev.Side.BUY, 0.1)

    def on_trades(self, e: ev.MarketTrades) -> None:
        self.log.append(("trades", self.now))

    def on_order_ack(self, e: ev.OrderAck) -> None:
        self.log.append(("ack", self.now))

    def on_order_update(self, e: ev.OrderUpdate) -> None:
        self.log.append((f"update {e.status.name}", self.now))

    def on_wallet(self, e: ev.Wallet) -> None:
        self.log.append(("wallet", self.now))


@pytest.fixture
def doubles(monkeypatch: pytest.MonkeyPatch) -> Any:
    return install_doubles(monkeypatch)


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    return write_recording(market(5), tmp_path / "rec")


BAL = {"binance": {"USDT": 10_000.0}}


def test_latencies_order_venue_strategy_and_acks(rec: Path, doubles) -> None:
    lat = Latency(entry_ms=5, data_ms=2, ack_ms=3)
    bt = Backtest(rec, Recorder, latency=lat, balances=BAL)
    res = bt.run()
    assert res.error is None and not res.gaps
    log = bt.client.log
    # the initial wallet first, at the start; the first book at t0 + data latency
    assert log[0] == ("wallet", T0)
    assert log[1] == ("book 0", T0 + 2 * MS)
    venue = doubles.instances[0]
    # the order was sent at t0 + 2 ms, reaches the venue 5 ms later
    submit = next(x for x in venue.log if x[0] == "submit")
    assert submit[1] == T0 + 7 * MS
    # ... and its answers reach the strategy 3 ms after that, in the venue's order
    answers = [x for x in log if x[0] in ("ack", "update NEW", "update FILLED")]
    assert answers == [("ack", T0 + 10 * MS), ("update NEW", T0 + 10 * MS),
                       ("update FILLED", T0 + 10 * MS)]
    # the venue saw each market event at its recorded time, the strategy data_ms later
    venue_books = [ts for what, ts, kind in venue.log if what == "market" and kind == "Orderbook"]
    strat_books = [ts for what, ts in log if what.startswith("book")]
    assert strat_books == [t + 2 * MS for t in venue_books]
    assert res.events == len(market(5))
    # the run ends one round trip (2 + 5 + 3 ms) after the last event: the last delivery
    assert res.sim_start_ns == T0 and res.sim_end_ns == T0 + 5 * S + 2 * MS
    # the trading object kept the live bookkeeping
    tr = bt.client.trading
    assert isinstance(tr, BacktestTrading)
    assert tr.orders[bt.client.cid].status == ev.OrderStatus.FILLED and not tr.open_orders
    assert len(tr.fills) == 1 and tr.outstanding == 0
    assert tr.balance("binance", "BTC").free == pytest.approx(0.1)
    assert len(res.of(FillRow)) == 1


def test_zero_latency_is_the_heap_order(rec: Path, doubles) -> None:
    bt = Backtest(rec, Recorder, balances=BAL)
    bt.run()
    log = bt.client.log
    # the order is sent on book 0 and filled before book 1 reaches anyone
    i = log.index(("book 0", T0))
    assert [w for w, _ in log[i + 1:i + 4]] == ["ack", "update NEW", "update FILLED"]
    assert all(t == T0 for _, t in log[: i + 4])


def test_timers_follow_simulated_time(rec: Path, doubles) -> None:
    class Ticker(BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.ticks: list[int] = []
            self.once: list[int] = []
            self.t = self.every(1.0, lambda: self.ticks.append(self.now))
            self.call_later(0.25, lambda: self.once.append(self.now))
            cancelled = self.call_later(0.5, lambda: self.once.append(-1))
            cancelled.cancel()

        def on_trades(self, e: ev.MarketTrades) -> None:
            if len(self.ticks) == 3:
                self.t.cancel()

    bt = Backtest(rec, Ticker)
    res = bt.run()
    assert res.error is None
    # the 5 s recording: ticks at 1, 2, 3 s (cancelled at the trade of 3 s, after the
    # tick at the same time), nothing after the last recorded event
    assert bt.client.ticks == [T0 + k * S for k in (1, 2, 3)]
    assert bt.client.once == [T0 + S // 4]


def test_equity_sampled_on_interval_and_fills(rec: Path, doubles) -> None:
    res = Backtest(rec, Recorder, balances=BAL, equity_interval_s=2.0).run()
    ts = [r.ts for r in res.of(EquityRow)]
    # a fill at t0, then every 2 s, and the end
    assert ts == [T0, T0 + 2 * S, T0 + 4 * S, T0 + 5 * S]
    assert {r.symbol for r in res.of(EquityRow)} == {"BTC/USDT"}
    assert res.of(EquityRow)[0].quote == "USDT"


def test_strategy_error_is_reported_with_time_and_event(rec: Path, doubles) -> None:
    class Boom(Recorder):
        def on_trades(self, e: ev.MarketTrades) -> None:
            raise ZeroDivisionError("no")

    bt = Backtest(rec, Boom, balances=BAL)
    res = bt.run()
    assert res.error == (f"strategy raised ZeroDivisionError: no at {iso_ns(T0 + S)} "
                         "on MarketTrades binance BTC/USDT")
    assert "ZeroDivisionError" in bt.traceback
    # partial results: the fill before the failure is kept, the run stopped there
    assert len(res.of(FillRow)) == 1 and res.sim_end_ns == T0 + S
    assert res.events < len(market(5))


def test_strategy_error_in_a_timer_and_in_construction(rec: Path, doubles) -> None:
    class TimerBoom(BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.call_later(1.5, self.explode)

        def explode(self) -> None:
            raise KeyError("k")

    res = Backtest(rec, TimerBoom).run()
    assert res.error is not None and res.error.startswith("strategy raised KeyError")
    assert iso_ns(T0 + 3 * S // 2) in res.error and "timer TimerBoom.explode" in res.error

    class Bad(BaseClient):
        def __init__(self) -> None:
            raise RuntimeError("bad args")

    res = Backtest(rec, Bad).run()
    assert res.error == (f"strategy raised RuntimeError: bad args at {iso_ns(T0)} on "
                         "the strategy's construction")


def test_trading_object_has_the_live_api(rec: Path, doubles) -> None:
    class Api(TradingMixin, BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.enable_trading("demo", "api")
            self.seen: list[Any] = []
            self.step = 0

        def on_orderbook(self, e: ev.Orderbook) -> None:
            self.step += 1
            if self.step == 1:
                self.cid = self.create_order("binance", "BTC/USDT", ev.Side.BUY, 0.2, price=90.0)
                with pytest.raises(TradingError, match="has not arrived"):
                    self.wait_ack(self.cid)
                self.lev = self.set_leverage("binance", "BTC/USDT", 3)
            elif self.step == 2:
                assert self.cid in self.trading.open_orders
                self.seen.append(self.wait_ack(self.cid))  # arrived: returned
                self.cancel_order("binance", "BTC/USDT", self.cid)
                self.cancel_order("binance", "BTC/USDT", "api-nope")
            elif self.step == 3:
                self.create_order("kraken", "BTC/USDT", ev.Side.BUY, 1.0)

    bt = Backtest(rec, Api, latency=Latency(entry_ms=1, ack_ms=1))
    res = bt.run()
    c = bt.client
    assert c.seen[0].accepted and c.seen[0].action == ev.OrderAction.CREATE
    tr = c.trading
    assert tr.orders[c.cid].status == ev.OrderStatus.CANCELED and not tr.open_orders
    rejected = tr.take_ack("api-nope")
    assert rejected is not None and not rejected.accepted and rejected.code == "-2011"
    assert tr.take_ack(c.lev).action == ev.OrderAction.SET_LEVERAGE
    assert c.cid.startswith("api-")
    # a venue the recording does not have: the strategy's error, reported as such
    assert res.error is not None and "no venue 'kraken' in this backtest" in res.error


def test_client_order_ids_are_deterministic(rec: Path, doubles) -> None:
    a, b = Backtest(rec, Recorder, balances=BAL), Backtest(rec, Recorder, balances=BAL)
    a.run()
    b.run()
    assert a.client.cid == b.client.cid and a.client.cid.startswith("rec-")


def _gapped(tmp_path: Path) -> Path:
    evs = market(2)
    gap_at = T0 + 2 * S + 1
    evs.append(ev.GapNotice(exchange="binance", symbol="BTC/USDT", exch_ts=gap_at,
                            local_ts=gap_at, lost=42))  # fmt: skip
    # after the gap: deltas and a trade that would fill a resting buy, then a snapshot
    evs.append(book(gap_at + 100 * MS, 80.0, 81.0, n=500))
    evs.append(trade(gap_at + 200 * MS, 50.0))
    evs.append(book(gap_at + 300 * MS, 99.0, 100.0, snapshot=True, n=501))
    evs.append(trade(gap_at + 400 * MS, 98.0))
    return write_recording(evs, tmp_path / "gapped")


class Rester(TradingMixin, BaseClient):
    def __init__(self) -> None:
        super().__init__()
        self.enable_trading("x", "rest")
        self.books_seen: list[int] = []
        self.gaps: list[ev.GapNotice] = []

    def on_orderbook(self, e: ev.Orderbook) -> None:
        self.books_seen.append(e.first_update_id)
        if len(self.books_seen) == 1:
            self.create_order("binance", "BTC/USDT", ev.Side.BUY, 0.1, price=60.0)

    def on_gap(self, e: ev.GapNotice) -> None:
        self.gaps.append(e)


def test_gap_stops_the_run_and_is_reported(tmp_path: Path, doubles) -> None:
    bt = Backtest(_gapped(tmp_path), Rester, balances=BAL)
    res = bt.run()
    assert res.error is None
    assert res.gaps == [f"{iso_ns(T0 + 2 * S + 1)} binance BTC/USDT: 42 events lost (GapNotice)"]
    assert "stopped at the gap" in res.meta["stopped"]
    assert res.sim_end_ns == T0 + 2 * S + 1 and 500 not in bt.client.books_seen
    assert not res.of(FillRow)


def test_gap_continue_withholds_until_the_next_snapshot(tmp_path: Path, doubles) -> None:
    bt = Backtest(_gapped(tmp_path), Rester, balances=BAL, on_gap="continue")
    res = bt.run()
    assert len(res.gaps) == 1 and "stopped" not in res.meta
    assert res.meta["withheld_after_gaps"] == "2"
    # neither the venue nor the strategy saw the delta and the trade inside the hole (the
    # trade at 50 would have filled the resting buy at 60); both resumed at the snapshot
    assert 500 not in bt.client.books_seen and 501 in bt.client.books_seen
    assert len(bt.client.gaps) == 1 and bt.client.gaps[0].lost == 42
    assert not res.of(FillRow)
    venue_trades = [ts for w, ts, k in doubles.instances[0].log if k == "MarketTrades"]
    assert T0 + 2 * S + 1 + 200 * MS not in venue_trades
    assert T0 + 2 * S + 1 + 400 * MS in venue_trades


def test_several_venues_and_symbols_merge_by_time(tmp_path: Path, doubles) -> None:
    evs = market(2) + market(2, exchange="bybit", start=T0 + 50 * MS) + \
        market(2, symbol="ETH/USDT", start=T0 + 25 * MS)

    class Seen(BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[tuple[int, str, str]] = []

        def on_orderbook(self, e: ev.Orderbook) -> None:
            self.order.append((self.now, e.exchange, e.symbol))

    bt = Backtest(write_recording(evs, tmp_path / "multi"), Seen,
                  balances={"bybit": {"USDT": 1.0}})
    res = bt.run()
    seen = bt.client.order
    assert [t for t, *_ in seen] == sorted(t for t, *_ in seen)
    assert {(x, s) for _, x, s in seen} == {("binance", "BTC/USDT"), ("binance", "ETH/USDT"),
                                            ("bybit", "BTC/USDT")}
    assert sorted(v.exchange for v in doubles.instances) == ["binance", "bybit"]
    assert res.meta["venues"] == "binance,bybit"
    # --symbols selects files; --from/--to clip the time range
    bt = Backtest(tmp_path / "multi", Seen, symbols=["ETH/USDT"], start=T0 + S, end=T0 + 2 * S)
    res = bt.run()
    assert {s for _, _, s in bt.client.order} == {"ETH/USDT"}
    # the book's seek snapshot (recorded before the start) is handed out at the start
    assert min(t for t, *_ in bt.client.order) == T0 + S
    assert bt.client.books[("binance", "ETH/USDT")].best_bid is not None
    assert res.sim_start_ns == T0 + S and res.sim_end_ns < T0 + 2 * S


def test_strategy_instance_moves_to_simulated_time(rec: Path, doubles) -> None:
    class Late(TradingMixin, BaseClient):
        def __init__(self) -> None:
            super().__init__()
            self.fired: list[int] = []
            self.call_later(1.0, lambda: self.fired.append(self.now))

    s = Late()  # built live: its timer is on the wall clock, 1 s from now
    bt = Backtest(rec, s)
    assert bt.run().error is None
    assert len(s.fired) == 1 and T0 < s.fired[0] <= T0 + S


def test_the_strategy_may_stop_the_run(rec: Path, doubles) -> None:
    class Stopper(BaseClient):
        def on_trades(self, e: ev.MarketTrades) -> None:
            self.stop()

    res = Backtest(rec, Stopper).run()
    assert res.sim_end_ns == T0 + S and "the strategy stopped" in res.meta["stopped"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"on_gap": "skip"}, "on_gap must be 'stop' or 'continue', got 'skip'"),
    ({"equity_interval_s": 0}, "equity_interval_s must be a number > 0"),
    ({"start": T0 + 2 * S, "end": T0 + S}, "is not before"),
    ({"start": "yesterday"}, "expected nanoseconds or ISO 8601"),
    ({"balances": {"binance": {"USDT": -1.0}}}, "expected a number >= 0"),
])
def test_bad_arguments(rec: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backtest(rec, BaseClient, **kwargs)


def test_bad_inputs_found_at_run(rec: Path, tmp_path: Path, doubles) -> None:
    with pytest.raises(ValueError, match="latency ack_ms must be a finite number >= 0"):
        Latency(ack_ms=-1)
    with pytest.raises(FileNotFoundError, match="no recording at"):
        Backtest(tmp_path / "nowhere", BaseClient)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no recording files"):
        Backtest(tmp_path / "empty", BaseClient)
    with pytest.raises(TypeError, match="not a BaseClient subclass"):
        Backtest(rec, int)
    with pytest.raises(ValueError, match="symbol 'DOGE/USDT' is not in the recording"):
        Backtest(rec, BaseClient, symbols=["DOGE/USDT"]).run()
    with pytest.raises(ValueError, match="fees for 'okx': the recording has no such venue"):
        Backtest(rec, BaseClient, fees={"okx": object()}).run()


def test_quote_of() -> None:
    assert quote_of("BTC/USDT") == "USDT"
    assert quote_of("BTC/USDT:USDT") == "USDT"
    assert quote_of("BTC/USD:BTC-250627") == "BTC"


def test_a_venue_failure_is_not_blamed_on_the_strategy(rec: Path, doubles,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, e):  # noqa: ANN001, ANN202
        raise RuntimeError("venue bug")

    monkeypatch.setattr(doubles, "on_market", broken)
    with pytest.raises(RuntimeError, match="venue bug"):
        Backtest(rec, Recorder, balances=BAL).run()


def test_damaged_chunk_is_a_gap_at_its_time(tmp_path: Path, doubles) -> None:
    """A chunk the replayer skips (CRC mismatch) is a gap, reported at the chunk's first
    time though the replayer finds it when it reads ahead."""
    from ttxt_mp.storage import RecordingFile

    rec = write_recording(market(5), tmp_path / "dmg", chunk_events=10)
    path = rec / "BINANCE_BTC_USDT.bin"
    f = RecordingFile(path)
    c = len(f.index) // 2
    first_t, pos, end = int(f.key_lo[c]), int(f.index.pos[c]), int(f.index.end_pos[c])
    f.close()
    data = bytearray(path.read_bytes())
    data[end - 1] ^= 0xFF  # the last byte of the chunk's body
    path.write_bytes(bytes(data))

    bt = Backtest(rec, Rester, balances=BAL)
    res = bt.run()
    assert res.gaps == [f"{iso_ns(first_t)} binance BTC/USDT: damaged data skipped "
                        f"(BINANCE_BTC_USDT.bin at byte {pos})"]
    assert res.sim_end_ns == first_t and "stopped at the gap" in res.meta["stopped"]
    assert all(ts < first_t for what, ts, _ in doubles.instances[0].log if what == "market")

    res = Backtest(rec, Rester, balances=BAL, on_gap="continue").run()
    assert len(res.gaps) == 1 and res.sim_end_ns > first_t  # to the end, books withheld
    assert int(res.meta["withheld_after_gaps"]) > 0  # no snapshot after the hole: all of it


def test_connector_gap_status_is_a_gap(tmp_path: Path, doubles) -> None:
    evs = market(2)
    evs.append(ev.ConnectorStatus(exchange="binance", symbol="BTC/USDT", exch_ts=T0 + S + 5,
                                  local_ts=T0 + S + 5, state=ev.ConnectorState.GAP,
                                  message="order book gap: 7 -> 9"))  # fmt: skip
    evs.sort(key=lambda e: e.exch_ts)
    res = Backtest(write_recording(evs, tmp_path / "st"), Rester, balances=BAL).run()
    assert res.gaps == [f"{iso_ns(T0 + S + 5)} binance BTC/USDT: connector status GAP: "
                        "order book gap: 7 -> 9"]
