"""Every simulated venue market at once (``ttxt-mp demo --venues all``'s engine): one
launched engine runs a connector per venue market against one simulator, and a client
keeps every book equal to the simulator's truth at two paused checkpoints."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from engine_process import EngineProcess

from ttxt_mp.client import BaseClient, attach
from ttxt_mp.engine.demo import SimProcess, demo_config_text, demo_venues, market_symbol
from ttxt_mp.queues import QueueEmpty

pytestmark = pytest.mark.timeout(240)
TOP = 10  # levels compared: every venue's subscribed depth holds at least these


def _sim(sim: Any, method: str, path: str) -> Any:
    req = urllib.request.Request(f"http://{sim.host_port}/_sim/{path}", method=method,
                                 data=b"{}" if method == "POST" else None)  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def expected() -> dict[tuple[str, str], str]:
    """(exchange, symbol) of every book -> its simulator venue id."""
    return {(v.id, market_symbol(s, v.market)): v.sim_id
            for v, _ in demo_venues() for s in ("BTC/USDT", "ETH/USDT")}  # fmt: skip


def truth(sim: Any, books: dict[tuple[str, str], str]) -> dict[tuple[str, str], list]:
    out = {}
    for (x, s), sim_id in books.items():
        native = s.partition(":")[0].replace("/", "")
        tb = _sim(sim, "GET", f"truth?venue={sim_id}&symbol={native}&depth={TOP}")
        out[(x, s)] = [[(float(p), float(q)) for p, q in tb[k]] for k in ("bids", "asks")]
    return out


def tops(client: BaseClient) -> dict[tuple[str, str], list]:
    return {k: [b.bids(TOP), b.asks(TOP)] for k, b in client.books.items() if b.synced}


def pump(feed: Any, client: BaseClient, pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        try:
            client.dispatch(feed.get(timeout=0.05))
        except QueueEmpty:
            pass


def test_every_venue_market_in_one_engine_books_equal_the_truth(tmp_path: Path) -> None:
    books = expected()
    assert len({x for x, _ in books}) >= 4  # the spot venues and the perpetuals' venues
    sim = SimProcess(["BTC/USDT", "ETH/USDT"], seed=41, extra=["--updates-per-sec", "60"])
    name = f"all{os.getpid()}"
    eng = EngineProcess(tmp_path, name, demo_config_text(sim.host_port, name))
    try:
        eng.start(wait_rings=len(demo_venues()))
        client = BaseClient()
        with attach(name, streams=("market",), wait=20) as feed:
            pump(feed, client, lambda: set(tops(client)) == set(books), 90,
                 f"all {len(books)} books synced")  # fmt: skip
            for checkpoint in range(2):
                _sim(sim, "POST", "pause")
                try:
                    want = truth(sim, books)
                    pump(feed, client, lambda want=want: tops(client) == want, 30,
                         f"every book equal to the truth at checkpoint {checkpoint}")  # fmt: skip
                finally:
                    _sim(sim, "POST", "resume")
                if checkpoint == 0:  # let every book move on before the second one
                    moved = {k: v[0][:1] for k, v in tops(client).items()}
                    pump(feed, client, lambda moved=moved: sum(
                        v[0][:1] != moved.get(k) for k, v in tops(client).items()
                    ) >= len(books) // 2, 30, "the books to move on")  # fmt: skip
        kids = {c["name"]: (c["pid"] is not None, c["restarts"]) for c in eng.status()["children"]}
        assert all(v == (True, 0) for v in kids.values()), kids  # none died or restarted
    finally:
        eng.stop()
        sim.stop()
