"""Print the BestQuote events of a ring (see examples/book_ticker.py).

    python -m examples.tail_book_tickers bt_demo-tickers --count 5

Waits up to ``--wait`` seconds for the ring to appear; ends when its producer closes it,
after ``--count`` events, or after ``--timeout`` seconds without one (exit code 1).
"""

from __future__ import annotations

import argparse
import sys
import time

import examples.book_ticker  # noqa: F401  (registers BestQuote in this process)
from ttxt_mp import EventFilter, Feed, QueueClosed, QueueEmpty, ShmQueue
from ttxt_mp.shm import RingNotFound


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.tail_book_tickers")
    p.add_argument("ring", help="the ring's name, e.g. bt_demo-tickers")
    p.add_argument("--count", type=int, default=None, help="stop after this many events")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the ring")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an event")
    args = p.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            ring = ShmQueue.attach(args.ring, start="oldest")
            break
        except RingNotFound:
            if time.monotonic() > deadline:
                print(f"no ring {args.ring!r} after {args.wait}s", file=sys.stderr)
                return 1
            time.sleep(0.1)
    n = 0
    with Feed([ring], EventFilter(kinds=["BestQuote"])) as feed:
        while args.count is None or n < args.count:
            try:
                e = feed.get(timeout=args.timeout)
            except QueueEmpty:
                print(f"no BestQuote for {args.timeout}s", file=sys.stderr)
                return 1
            except QueueClosed:
                break
            print(f"{e.exchange:8} {e.symbol:10} bid {e.bid:.2f} x {e.bid_qty:.4f}  "
                  f"ask {e.ask:.2f} x {e.ask_qty:.4f}", flush=True)  # fmt: skip
            n += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
