"""Child process for the SIGKILL test: produce a numbered stream and record it.

argv: DIR RUN CHUNK. Events of run R carry first_update_id = R * 10**9 + i, so the parent
can check every file is, per run, an exact prefix of what was produced. After each chunk
is written it prints ``path events`` (what the writer reports as flushed).
"""

from __future__ import annotations

import sys
import threading
import time

from ttxt_mp import AsyncioQueue
from ttxt_mp.events import Orderbook
from ttxt_mp.storage import MarketDataRecorder

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def produce(q: AsyncioQueue, run: int) -> None:
    i = 0
    while True:
        for _ in range(200):
            q.put(Orderbook(
                exchange="binance", symbol=SYMBOLS[i % 3], exch_ts=run * 10**12 + i,
                local_ts=run * 10**12 + i, bids=((100.0 + i % 7, 1.0),) * (1 + i % 40),
                first_update_id=run * 10**9 + i, last_update_id=i,
            ))  # fmt: skip
            i += 1
        time.sleep(0.002)


def main() -> None:
    directory, run, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    q = AsyncioQueue()
    out = sys.stdout

    def flushed(path: str, events: int, size: int) -> None:
        out.write(f"{path} {events}\n")
        out.flush()

    rec = MarketDataRecorder(q, directory, chunk_events=chunk, max_chunk_age=0.05,
                             fsync_interval=0.05, on_chunk=flushed).start()  # fmt: skip
    threading.Thread(target=produce, args=(q, run), daemon=True).start()
    out.write("READY\n")
    out.flush()
    time.sleep(60)
    rec.stop()


if __name__ == "__main__":
    main()
