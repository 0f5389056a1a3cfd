"""Print best bid / ask whenever they change.

Run against a live engine:   python examples/clients/top_of_book.py demo
or declare it in a config:   [[clients]] target = "examples.clients.top_of_book:TopOfBook"
"""

from __future__ import annotations

import sys

import ttxt_mp
from ttxt_mp.client import BaseClient


class TopOfBook(BaseClient):
    def __init__(self, **args):
        super().__init__(**args)
        self.last: dict[tuple[str, str], tuple] = {}
        self.lines: list[str] = []

    def on_orderbook(self, e: ttxt_mp.Orderbook) -> None:
        book = self.books[(e.exchange, e.symbol)]
        bb, ba = book.best_bid, book.best_ask
        if bb is None or ba is None or self.last.get((e.exchange, e.symbol)) == (bb, ba):
            return
        self.last[(e.exchange, e.symbol)] = (bb, ba)
        line = f"{e.exchange:8} {e.symbol:10} {bb[1]:>12.6f} {bb[0]:>12.2f} | {ba[0]:<12.2f} {ba[1]:<12.6f}"
        self.lines.append(line)
        del self.lines[:-1000]
        print(line, flush=True)


if __name__ == "__main__":
    with ttxt_mp.attach(sys.argv[1] if len(sys.argv) > 1 else "demo", wait=10) as feed:
        TopOfBook().run(feed)
