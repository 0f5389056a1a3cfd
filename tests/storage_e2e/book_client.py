"""The client the end-to-end tests run on the live engine and on its replay.

A plain :class:`BaseClient` subclass: after every order book event that changes them it
notes the book's update id and top levels, and it can copy a whole book at a checkpoint (the n-th book
event of an instrument). ``python tests/storage_e2e/book_client.py --engine E --out F``
runs it as a separate process against a live engine and writes what it saw as JSON.
"""

from __future__ import annotations

import argparse
import signal
from collections import defaultdict
from typing import Any

import msgspec

from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient, attach


def book_state(book: Any) -> dict[str, Any]:
    return {"update_id": book.update_id, "seq": book.seq, "bids": book.bids(), "asks": book.asks()}


def normalize(obj: Any) -> Any:
    """Through JSON, so tuples and lists compare equal on both sides."""
    return msgspec.json.decode(msgspec.json.encode(obj))


class BookTrace(BaseClient):
    def __init__(self, checkpoints: dict[str, int] | None = None, depth: int = 5) -> None:
        super().__init__()
        self.depth = depth
        self.checkpoints = checkpoints or {}
        self.tops: dict[str, list[Any]] = defaultdict(list)
        self.at_checkpoint: dict[str, dict[str, Any]] = {}
        self.gaps = 0

    def on_orderbook(self, e: ev.Orderbook) -> None:
        key = f"{e.exchange}|{e.symbol}"
        book = self.books[(e.exchange, e.symbol)]
        bids, asks = book.top(self.depth)
        trace = self.tops[key]
        entry = [book.update_id, book.seq, bids, asks]
        if trace and trace[-1] == entry:
            # a snapshot that changes nothing: a recording's state, spliced in when the
            # recorder's request was served after the ring's first book event, holds
            # exactly the book the events before it built (a different one would show)
            return
        trace.append(entry)
        if len(trace) == self.checkpoints.get(key):
            self.at_checkpoint[key] = book_state(book)

    def on_gap(self, e: ev.GapNotice) -> None:
        self.gaps += 1

    def result(self) -> dict[str, Any]:
        final = {f"{ex}|{sym}": book_state(b) for (ex, sym), b in self.books.items()}
        return normalize({"tops": self.tops, "final": final, "events": self.events,
                          "gaps": self.gaps, "at_checkpoint": self.at_checkpoint})  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--engine", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, required=True)
    args = p.parse_args()
    client = BookTrace()
    signal.signal(signal.SIGTERM, lambda *_: client.stop())
    with attach(args.engine, streams=("market",), start="oldest", wait=20.0) as feed:
        client.run(feed, duration=args.duration)
    with open(args.out, "wb") as f:
        f.write(msgspec.json.encode(client.result()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
