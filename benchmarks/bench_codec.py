"""Per-event codec cost: the pure-Python codec vs the C codec vs msgspec msgpack (issue 11).

Per event, encode + decode of the same Struct, one process, no ring:
  pure     ``size`` + ``pack_into`` a bytearray + ``unpack_from`` (the generated Python)
  c        the same three calls on the layout's ``ttxt_mp._ccodec.Codec``
  msgpack  ``msgspec.msgpack.Encoder().encode`` + ``Decoder(cls).decode`` (typed: Structs)
Events: MarketTrades with one Trade (unique ids, as live), Orderbook with 10 levels per
side, Kline; a pool of distinct events cycled, so string caches see realistic traffic.

With ``--ring`` also ShmQueue ``put`` + ``get_nowait`` in one process (1000 puts, then
1000 gets, per round), and ``put`` alone, three ways: the pure ring and codec, the Python
ring driving the C codec (issue 11 step 1), the compiled ring ends (``shm.cring``).

``--callgrind`` instead counts instructions per event with valgrind (independent of the
machine's load): each cell runs alone under callgrind for two event counts, and the
difference divided by the extra events removes start-up.

Cells run interleaved: every repetition runs every (event, codec) cell once, in a fresh
shuffled order, so machine drift cannot land on one row; figures are medians over the
repetitions. Machine load is reported as the load average and the time of a fixed
reference loop (its median: compare it across runs).

Usage: python benchmarks/bench_codec.py [--repeat 7] [--n 20000] [--ring] [--callgrind [--cells A,B]]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402

from ttxt_mp import codec, codec_c  # noqa: E402
from ttxt_mp.events import Kline, MarketTrades, Orderbook, Side, Trade  # noqa: E402

POOL = 4096


def trades(i: int) -> MarketTrades:
    return MarketTrades(
        exchange="binance", symbol="BTC/USDT", exch_ts=i, local_ts=i + 1,
        trades=(Trade(f"{1_000_000_000 + i}", 50_000.5 + i % 100, 0.01, Side.BUY, i),),
    )  # fmt: skip


def book(i: int) -> Orderbook:
    mid = 50_000.0 + i % 100
    return Orderbook(
        exchange="binance", symbol="BTC/USDT", exch_ts=i, local_ts=i + 1, is_snapshot=True,
        bids=tuple((mid - k * 0.5, 0.1 + k) for k in range(10)),
        asks=tuple((mid + 0.5 + k * 0.5, 0.2 + k) for k in range(10)),
        first_update_id=i, last_update_id=i + 3,
    )  # fmt: skip


def kline(i: int) -> Kline:
    return Kline(
        exchange="binance", symbol="BTC/USDT", exch_ts=i, local_ts=i + 1, interval="1m",
        open_ts=i * 60, close_ts=i * 60 + 59, open=1.0 + i, high=2.0 + i, low=0.5, close=1.5,
        volume=10.0, quote_volume=15.0, trades=i % 1000, closed=bool(i & 1),
    )  # fmt: skip


EVENTS: dict[str, Callable[[int], object]] = {
    "MarketTrades(1)": trades, "Orderbook(10+10)": book, "Kline": kline,
}  # fmt: skip
IMPLS = ("pure", "c", "msgpack", "ring-pure", "ring-pyc", "ring-c", "put-pure", "put-pyc", "put-c")
"""ring-*: put + get_nowait; put-*: put only (no consumer). pure: the Python ring and
codec; pyc: the Python ring driving the C codec (step 1); c: the compiled ring ends."""


def codec_loop(lay: codec.Layout, impl: str, pool: list, n: int) -> float:
    """Seconds for ``n`` encode+decode round trips with the pure or the C codec."""
    fns = (lay.pure_size, lay.pure_pack_into, lay.pure_unpack_from) if impl == "pure" else (
        lay.c.size, lay.c.pack_into, lay.c.unpack_from)  # fmt: skip
    size, pack, unpack = fns
    buf = bytearray(4096)
    m = len(pool)
    t = time.perf_counter()
    for i in range(n):
        ev = pool[i % m]
        size(ev)
        pack(buf, 0, ev)
        unpack(buf, 0)
    return time.perf_counter() - t


def msgpack_loop(cls: type, pool: list, n: int) -> float:
    enc, dec = msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder(cls).decode
    m = len(pool)
    t = time.perf_counter()
    for i in range(n):
        dec(enc(pool[i % m]))
    return time.perf_counter() - t


def ring_loop(impl: str, pool: list, n: int, gets: bool) -> float:
    """Seconds for ``n`` ShmQueue put (+ get_nowait) in one process (rounds of 1000)."""
    from ttxt_mp.shm import ShmQueue, cring

    codec_c.set_implementation("pure" if impl == "pure" else "c")
    cring.enabled = impl == "c"
    name = f"bench-codec-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    p = ShmQueue.create(name, capacity=4096, slot_size=512, policy="block" if gets else "overwrite")
    try:  # closing a ring does not remove it: unlink, or /dev/shm keeps one per cell
        with contextlib.ExitStack() as stack:
            get = stack.enter_context(ShmQueue.attach(name)).get_nowait if gets else None
            put, m = p.put, len(pool)
            t = time.perf_counter()
            k = min(n, 1000)
            for r in range(0, n, k):
                for i in range(r, r + k):
                    put(pool[i % m])
                if gets:
                    for _ in range(k):
                        get()
            return time.perf_counter() - t
    finally:
        p.close()
        p.unlink()


def run_cell(event: str, impl: str, pool: list, n: int) -> float:
    """Seconds for ``n`` events of one (event, codec) cell."""
    lay = codec.layout_for(type(pool[0]))
    if impl == "msgpack":
        return msgpack_loop(type(pool[0]), pool, n)
    if impl.startswith(("ring-", "put-")):
        return ring_loop(impl[5:] if impl.startswith("ring-") else impl[4:], pool, n,
                         gets=impl.startswith("ring-"))  # fmt: skip
    return codec_loop(lay, impl, pool, n)


def reference() -> float:
    """A fixed pure-Python loop: its time says how loaded the machine was."""
    t = time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i & 7
    return time.perf_counter() - t


def instructions(event: str, impl: str, n: int) -> int:
    """Instructions of this script running only one cell for ``n`` events, per callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--loop", str(list(EVENTS).index(event)), impl, "--n", str(n)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1"},  # deterministic: no hash seed, no BLAS threads spinning
    ).stderr  # fmt: skip
    return int(re.search(r"Collected : (\d+)", out).group(1))


def callgrind(ring: bool, n: int, only: str | None) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    impls = [i for i in (IMPLS if ring else IMPLS[:3]) if only is None or i in only.split(",")]
    print(f"instructions per event (callgrind, {n} vs {5 * n} events per cell)")
    print("| event | " + " | ".join(impls) + " |")
    print("|---|" + "---|" * len(impls))
    for e in EVENTS:
        row = [(instructions(e, i, 5 * n) - instructions(e, i, n)) / (4 * n) for i in impls]
        print(f"| {e} | " + " | ".join(f"{x / 1000:.1f}k" for x in row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--n", type=int, default=20_000, help="events per cell and repetition")
    ap.add_argument("--ring", action="store_true", help="also ShmQueue put+get, pure vs C")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead")
    ap.add_argument("--cells", help="with --callgrind: comma-separated cells (default all)")
    ap.add_argument("--loop", nargs=2, metavar=("EVENT", "IMPL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not codec_c.AVAILABLE:
        sys.exit("ttxt_mp._ccodec is not built: nothing to compare (pip install -e .)")
    if a.loop:  # one cell, for --callgrind
        event = list(EVENTS)[int(a.loop[0])]
        run_cell(event, a.loop[1], [EVENTS[event](i) for i in range(POOL)], a.n)
        return
    if a.callgrind:
        return callgrind(a.ring, min(a.n, 2000), a.cells)
    pools = {name: [make(i) for i in range(POOL)] for name, make in EVENTS.items()}
    cells = [(e, impl) for e in EVENTS for impl in (IMPLS if a.ring else IMPLS[:3])]
    times: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    refs, loads = [], [os.getloadavg()[0]]
    rng = random.Random(11)
    for _ in range(a.repeat):
        rng.shuffle(cells)
        refs.append(reference())
        for e, impl in cells:
            times[(e, impl)].append(run_cell(e, impl, pools[e], a.n) / a.n * 1e9)
    loads.append(os.getloadavg()[0])
    print(f"{a.repeat} interleaved repetitions x {a.n} events per cell; load average "
          f"{loads[0]:.2f} -> {loads[1]:.2f}; reference loop median "
          f"{statistics.median(refs) * 1e3:.1f} ms")  # fmt: skip
    print("| event | pure ns | C ns | msgpack ns | C x pure | C x msgpack |")
    print("|---|---|---|---|---|---|")
    med = {c: statistics.median(v) for c, v in times.items()}
    for e in EVENTS:
        p, c, m = med[(e, "pure")], med[(e, "c")], med[(e, "msgpack")]
        print(f"| {e} | {p:.0f} | {c:.0f} | {m:.0f} | {p / c:.1f}x | {m / c:.1f}x |")
    if a.ring:
        print("\n| event (ShmQueue, 1 process) | op | pure M ev/s | Python ring + C codec | "
              "C ring | C ring x pure | C ring x Python ring + C codec |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for e in EVENTS:
            for op, label in (("ring", "put+get"), ("put", "put")):
                p, y, c = (med[(e, f"{op}-{i}")] for i in ("pure", "pyc", "c"))
                print(f"| {e} | {label} | {1e3 / p:.2f} | {1e3 / y:.2f} | {1e3 / c:.2f} | "
                      f"{p / c:.2f}x | {y / c:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
