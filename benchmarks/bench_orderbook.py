"""Order book updates/s: ttxt_mp.OrderBook vs sortedcontainers.SortedDict vs order-book (C).

A realistic Binance-like diff stream (deterministic, seeded) is applied to a book of
~1,000 levels per side: each diff changes 1-10 levels per side, concentrated near the
top (exponential distance from the best price); an existing level is modified (75%) or
removed (25%), an empty price gets a new level. After every diff each implementation
reads the best bid and best ask, as a strategy would. ttxt_mp.OrderBook also checks the
Binance update ids and the crossed flag on every diff; the others do neither.

``ttxt_mp.OrderBook`` runs twice: with the compiled core (``ttxt_mp._cbook``, when
built) and with the pure-Python one (``TTXT_MP_PURE=1``).

Run: ``python benchmarks/bench_orderbook.py`` (``--quick`` for a smoke run). Prints one
table with events/s, levels/s and ratios against order-book.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttxt_mp import orderbook  # noqa: E402
from ttxt_mp.events import Orderbook  # noqa: E402
from ttxt_mp.orderbook import OrderBook  # noqa: E402

TICK = 0.1
MID = 30000.0


def make_stream(n_events: int, levels: int = 1000, seed: int = 7) -> tuple[Orderbook, list]:
    """A snapshot of ``levels`` per side and ``n_events`` contiguous Binance-style diffs."""
    rnd = random.Random(seed)
    span = int(levels * 1.1)

    def price(side: int, i: int) -> float:  # i = distance from the touch in ticks
        return round(MID - i * TICK, 1) if side == 0 else round(MID + TICK + i * TICK, 1)

    book = [{i: round(rnd.uniform(0.001, 5.0), 3) for i in range(levels)} for _ in (0, 1)]
    snap = Orderbook(
        exchange="binance",
        symbol="BTC/USDT",
        is_snapshot=True,
        bids=tuple((price(0, i), q) for i, q in book[0].items()),
        asks=tuple((price(1, i), q) for i, q in book[1].items()),
        first_update_id=1000,
        last_update_id=1000,
    )
    events = []
    uid = 1000
    for _ in range(n_events):
        sides = []
        for side in (0, 1):
            changes = {}
            for _k in range(rnd.randint(1, 10)):
                i = min(int(rnd.expovariate(1 / 25.0)), span - 1)
                if i in book[side]:
                    if rnd.random() < 0.75:
                        q = round(rnd.uniform(0.001, 5.0), 3)
                        book[side][i] = q
                    else:
                        q = 0.0
                        del book[side][i]
                else:
                    q = round(rnd.uniform(0.001, 5.0), 3)
                    book[side][i] = q
                changes[price(side, i)] = q
            sides.append(tuple(changes.items()))
        n = rnd.randint(1, 5)
        events.append(
            Orderbook(
                exchange="binance",
                symbol="BTC/USDT",
                bids=sides[0],
                asks=sides[1],
                first_update_id=uid + 1,
                last_update_id=uid + n,
            )
        )
        uid += n
    return snap, events


def run_ttxt(snap: Orderbook, events: list, read_top: bool) -> tuple:
    ob = OrderBook("binance", "BTC/USDT")
    ob.update(snap)
    upd = ob.update
    if not read_top:
        for ev in events:
            upd(ev)
    for ev in events if read_top else ():
        upd(ev)
        _top = ob.best_bid, ob.best_ask
    return ob.best_bid, ob.best_ask, ob.depth()


def run_ttxt_pure(snap: Orderbook, events: list, read_top: bool) -> tuple:
    """The same book with the pure-Python core (what ``TTXT_MP_PURE=1`` runs)."""
    old = orderbook.implementation()
    orderbook.set_implementation("pure")
    try:
        return run_ttxt(snap, events, read_top)
    finally:
        orderbook.set_implementation(old)


def run_sorteddict(snap: Orderbook, events: list, read_top: bool) -> tuple:
    from sortedcontainers import SortedDict

    bids, asks = SortedDict(snap.bids), SortedDict(snap.asks)
    for ev in events:
        for p, q in ev.bids:
            if q:
                bids[p] = q
            else:
                bids.pop(p, None)
        for p, q in ev.asks:
            if q:
                asks[p] = q
            else:
                asks.pop(p, None)
        if read_top:
            bids.peekitem(-1)
            asks.peekitem(0)
    return bids.peekitem(-1), asks.peekitem(0), (len(bids), len(asks))


def run_order_book(snap: Orderbook, events: list, read_top: bool) -> tuple:
    from order_book import OrderBook as COrderBook

    ob = COrderBook()
    bids, asks = ob.bids, ob.asks
    for p, q in snap.bids:
        bids[p] = q
    for p, q in snap.asks:
        asks[p] = q
    for ev in events:
        for p, q in ev.bids:
            if q:
                bids[p] = q
            elif p in bids:
                del bids[p]
        for p, q in ev.asks:
            if q:
                asks[p] = q
            elif p in asks:
                del asks[p]
        if read_top:
            bids.index(0)
            asks.index(0)
    return bids.index(0), asks.index(0), (len(bids), len(asks))


def best_rate(fn: Callable, args: tuple, n: int, repeats: int) -> tuple[float, object]:
    """Median-of-``repeats`` rate in items/s of ``fn(*args)`` processing ``n`` items."""
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times), result


def print_table(title: str, header: tuple[str, ...], rows: list[tuple], ref: str) -> None:
    """rows: (name, rate, *extra columns); adds a ratio column against row ``ref``."""
    ref_rate = next(r[1] for r in rows if r[0] == ref)
    print(f"\n{title}")
    cols = header + (f"x {ref}",)
    print(" | ".join(cols))
    print(" | ".join("---" for _ in cols))
    for name, rate, *extra in rows:
        cells = [name, f"{rate:,.0f}", *[str(x) for x in extra], f"{rate / ref_rate:.2f}"]
        print(" | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (small N, 1 repeat)")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    n, repeats = (5_000, 1) if a.quick else (a.events, a.repeats)
    snap, events = make_stream(n)
    n_levels = sum(len(e.bids) + len(e.asks) for e in events)
    impls = [
        (f"ttxt_mp.OrderBook ({orderbook.implementation()} core)", run_ttxt),
        ("ttxt_mp.OrderBook (pure core)", run_ttxt_pure),
        ("sortedcontainers.SortedDict", run_sorteddict),
        ("order-book (C)", run_order_book),
    ]
    for read_top, what in ((True, "apply + read best bid/ask"), (False, "apply only")):
        rows, results = [], {}
        for name, fn in impls:
            rate, res = best_rate(fn, (snap, events, read_top), n, repeats)
            results[name] = res
            rows.append((name, rate, f"{rate * n_levels / n:,.0f}"))
        ref = results["order-book (C)"]
        for name, res in results.items():  # every implementation must end with the same book
            assert res == ref, f"{name} ended with {res}, order-book with {ref}"
        print_table(
            f"Order book, {what}: {n:,} diffs ({n_levels / n:.1f} levels/diff) on a "
            f"{len(snap.bids)}+{len(snap.asks)}-level book, median of {repeats}",
            ("implementation", "diffs/s", "levels/s"),
            rows,
            "order-book (C)",
        )


if __name__ == "__main__":
    main()
