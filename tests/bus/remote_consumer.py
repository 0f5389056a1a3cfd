"""A remote consumer process for tests: ``python remote_consumer.py URL START OUT``.

Appends ``T <trade id>`` per trade and ``I <last id>`` after each event to OUT (flushed,
so a SIGKILL loses nothing written); a trade ``END`` makes it write ``B <books json>`` and
exit 0. A restarted consumer passes the last ``I`` id as START.
"""

from __future__ import annotations

import json
import sys

import ttxt_mp
from ttxt_mp import BaseClient, MarketTrades


def main(url: str, start: str, out: str) -> int:
    client = BaseClient()
    with ttxt_mp.attach(url, start=start) as feed, open(out, "a", buffering=1) as f:
        src = feed.sources[0]
        while True:
            ev = feed.get(timeout=30)
            client.dispatch(ev)
            if type(ev) is MarketTrades:
                for t in ev.trades:
                    if t.id == "END":
                        books = {f"{k[0]}|{k[1]}": [b.bids(), b.asks()]
                                 for k, b in client.books.items()}  # fmt: skip
                        f.write(f"B {json.dumps(books)}\n")
                        return 0
                    f.write(f"T {t.id}\n")
            f.write(f"I {src.last_id}\n")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
