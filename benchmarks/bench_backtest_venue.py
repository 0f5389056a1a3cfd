"""What the backtest venue adds on top of book maintenance, per replayed event.

Side by side in one run, interleaved (order shuffled each repetition), medians: the same
stream of book deltas and trades (one symbol, ~100 levels a side, a trade batch every 10th
event) through

- ``OrderBook.update`` alone (what any backtest pays to keep books),
- ``BacktestVenue.on_market`` with no orders (books + dispatch),
- ``BacktestVenue.on_market`` with 2 resting orders whose queue is tracked at every update
  of their side and consumed by trades.

    .venv/bin/python benchmarks/bench_backtest_venue.py [--events 300000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from ttxt_mp.backtest.venue import BacktestVenue, FeeSchedule, VenueRules
from ttxt_mp.events import CreateOrder, MarketTrades, Orderbook, Side, Trade
from ttxt_mp.orderbook import OrderBook

EX, SYM = "bench", "BTC/USDT"


def stream(n: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    tick = 0.5
    bids = tuple((1000.0 - tick * i, float(rng.randint(1, 20))) for i in range(1, 101))
    asks = tuple((1000.0 + tick * i, float(rng.randint(1, 20))) for i in range(1, 101))
    out: list = [Orderbook(exchange=EX, symbol=SYM, exch_ts=1, is_snapshot=True, bids=bids,
                           asks=asks)]  # fmt: skip
    for i in range(2, n + 1):
        if i % 10 == 0:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            p = 1000.0 + (tick if side == Side.BUY else -tick) * rng.randint(1, 3)
            out.append(MarketTrades(exchange=EX, symbol=SYM, exch_ts=i, trades=(
                Trade(str(i), p, float(rng.randint(1, 5)), side, i),)))  # fmt: skip
            continue
        lv = tuple((1000.0 + s * tick * rng.randint(1, 100), float(rng.randint(0, 20)))
                   for s in (-1, 1) for _ in range(rng.randint(1, 2)))  # fmt: skip
        out.append(Orderbook(exchange=EX, symbol=SYM, exch_ts=i,
                             bids=tuple(x for x in lv if x[0] < 1000.0),
                             asks=tuple(x for x in lv if x[0] > 1000.0)))  # fmt: skip
    return out


def run_book(events: list) -> float:
    book = OrderBook(EX, SYM, rules="none")
    t = time.perf_counter()
    for ev in events:
        if type(ev) is Orderbook:
            book.update(ev)
    return time.perf_counter() - t


class Sink(list):
    def add(self, row) -> None:
        self.append(row)


def run_venue(events: list, orders: bool) -> float:
    v = BacktestVenue(EX, fees=FeeSchedule(0.0002, 0.0005), rules=VenueRules(),
                      balances={"USDT": 1e9, "BTC": 1e6}, sink=Sink())  # fmt: skip
    first, rest = events[0], events[1:]
    v.on_market(first)
    if orders:  # deep enough not to fill often: the queue is tracked at every update
        for cid, side, p in (("b", Side.BUY, 960.0), ("s", Side.SELL, 1040.0)):
            v.submit(CreateOrder(exchange=EX, symbol=SYM, client_order_id=cid, side=side,
                                 qty=1.0, price=p), 1)  # fmt: skip
    on = v.on_market
    t = time.perf_counter()
    for ev in rest:
        on(ev)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    events = stream(a.events)
    cases = {
        "OrderBook.update alone": lambda: run_book(events),
        "BacktestVenue.on_market, no orders": lambda: run_venue(events, False),
        "BacktestVenue.on_market, 2 resting orders": lambda: run_venue(events, True),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    rng = random.Random(1)
    for _ in range(a.repeat):
        order = list(cases)
        rng.shuffle(order)
        for k in order:
            times[k].append(cases[k]())
    load = os.getloadavg()[0]
    print(f"{a.events} events, {a.repeat} repetitions, load average {load:.2f}")
    base = statistics.median(times["OrderBook.update alone"])
    print("| case | M events/s (median) | time x OrderBook alone |\n|---|---|---|")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"| {k} | {a.events / med / 1e6:.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
