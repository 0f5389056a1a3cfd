"""The remote feed (ttxt_mp.bus.remote) against a real redis-server, with streams written
per the bus contract by tests/bus/remote_writer.py (what the bridge writes)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
from remote_writer import EXCHANGE, BusWriter, book_levels

import ttxt_mp
from ttxt_mp import BaseClient, GapNotice, MarketTrades, Orderbook, QueueEmpty
from ttxt_mp.bus.format import BusLayoutError
from ttxt_mp.bus.remote import BusConnectionError, RemoteRings
from ttxt_mp.client import FeedNotFound

ENGINE = "remote_t"
SYMS = ("AAA/USDT", "BBB/USDT")


def url(srv, engine: str = ENGINE) -> str:
    return f"{srv.url}/{engine}"


@pytest.fixture
def writer(redis_server):
    w = BusWriter(redis_server.url, ENGINE)
    w.meta()
    yield w
    w.close()


def drain(feed, quiet: float = 0.3, limit: float = 20.0) -> list:
    """Every event until the feed stays empty for ``quiet`` seconds."""
    out, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        try:
            out.append(feed.get(timeout=quiet))
        except QueueEmpty:
            return out
    raise AssertionError("the feed never went quiet")


def publish_books(w: BusWriter, n: int, per_entry: int = 3) -> None:
    """Snapshots, then ``n`` rounds of deltas and trades for each symbol."""
    w.publish([w.snapshot(s) for s in SYMS])
    for i in range(n):
        evs = []
        for s in SYMS:
            evs += [w.delta(s, i), w.trade(s)]
        for k in range(0, len(evs), per_entry):
            w.publish(evs[k:k + per_entry])


def trade_ids(events) -> list[str]:
    return [t.id for e in events if type(e) is MarketTrades for t in e.trades]


def test_late_joiner_gets_books_from_the_state_then_the_stream(writer, redis_server):
    publish_books(writer, 30)
    writer.write_state()
    seen_before = list(writer.trades)
    publish_books_more = [writer.delta(SYMS[0], 99), writer.trade(SYMS[0])]
    writer.publish(publish_books_more)
    with ttxt_mp.attach(url(redis_server)) as feed:
        events = drain(feed)
    # state first: one snapshot per book, then only what followed its _after id
    assert [type(e) for e in events[:2]] == [Orderbook, Orderbook]
    assert all(e.is_snapshot for e in events[:2])
    assert {e.symbol for e in events[:2]} == set(SYMS)
    assert trade_ids(events) == [t for t in writer.trades if t not in seen_before]
    client = BaseClient()
    for e in events:
        client.dispatch(e)
    for s in SYMS:
        assert book_levels(client, s) == writer.truth(s)


def test_base_client_run_filters_and_oldest(writer, redis_server):
    publish_books(writer, 20)
    with ttxt_mp.attach(url(redis_server), symbols=[SYMS[1]], start="oldest") as feed:
        events = drain(feed)
        assert {e.symbol for e in events} == {SYMS[1]}
        assert trade_ids(events) == [t for t in writer.trades if int(t[1:]) % 2 == 0]
    with ttxt_mp.attach(url(redis_server), kinds=["MarketTrades"], start="oldest") as feed:
        assert {type(e) for e in drain(feed)} == {MarketTrades}

    class Books(BaseClient):
        pass

    client = Books()
    with ttxt_mp.attach(url(redis_server), start="oldest") as feed:
        client.run(feed, duration=1.0)
    for s in SYMS:
        assert book_levels(client, s) == writer.truth(s)


def test_no_state_reads_from_the_newest_entry(writer, redis_server):
    publish_books(writer, 5)
    with ttxt_mp.attach(url(redis_server)) as feed:
        with pytest.raises(QueueEmpty):
            feed.get(timeout=0.2)  # history is not replayed at latest without a state
        writer.publish([writer.trade(SYMS[0])])
        e = feed.get(timeout=5)
        assert trade_ids([e]) == [writer.trades[-1]]


async def test_async_iteration_and_arun(writer, redis_server):
    publish_books(writer, 10)
    feed = ttxt_mp.attach(url(redis_server), start="oldest")
    async with feed:
        got = []

        async def take() -> None:
            async for e in feed:
                got.append(e)
                if len(trade_ids(got)) == len(writer.trades):
                    return

        await asyncio.wait_for(take(), 20)
    assert trade_ids(got) == writer.trades

    class Count(BaseClient):
        def on_trades(self, ev):
            if len(self.seen) == 4:
                self.stop()
            self.seen.append(ev)

    client = Count()
    client.seen = []
    feed = ttxt_mp.attach(url(redis_server), start="oldest")
    with feed:
        await asyncio.wait_for(client.arun(feed), 20)
    assert len(client.seen) == 5


async def test_cancelled_aget_loses_nothing(writer, redis_server):
    feed = ttxt_mp.attach(url(redis_server))
    with feed:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(feed.aget(), 0.05)  # cancelled while a read is under way
        writer.publish([writer.trade(SYMS[0])])
        e = await asyncio.wait_for(feed.aget(), 10)
        assert trade_ids([e]) == writer.trades


def test_resume_after_connection_loss_loses_nothing(writer, redis_server):
    """The reader's connection is killed again and again while entries keep coming: it
    reconnects and reads on from its last id (nothing lost, nothing twice)."""
    publish_books(writer, 2)
    writer.write_state()
    before = len(writer.trades)
    done = threading.Event()

    def produce() -> None:
        for i in range(300):
            writer.publish([writer.trade(SYMS[i % 2])])
            done.wait(0.002)

    spared = {writer.r.client_id()}

    def kill() -> None:
        killer = redis.Redis.from_url(redis_server.url)
        spared.add(killer.client_id())
        for _ in range(15):  # the reader's connection, mostly while it waits in XREAD BLOCK
            done.wait(0.1)
            for c in killer.client_list():
                if int(c["id"]) not in spared:
                    killer.client_kill_filter(_id=c["id"])
        killer.close()

    feed = ttxt_mp.attach(url(redis_server))
    threads = [threading.Thread(target=produce), threading.Thread(target=kill)]
    for t in threads:
        t.start()
    try:
        got = drain(feed, quiet=3.0, limit=60)
    finally:
        done.set()
        for t in threads:
            t.join(30)
        got += drain(feed, quiet=0.5)
        feed.close()
    assert feed.sources[0].reconnects >= 1
    assert trade_ids(got) == writer.trades[before:]
    assert len(writer.trades) == before + 300


def test_paused_redis_then_resumed_loses_nothing(writer, redis_server):
    """Redis SIGSTOPped for 4 s (past the reader's socket timeout) while the reader waits:
    it reconnects once Redis answers and reads on from its last id."""
    publish_books(writer, 2)
    writer.write_state()
    with ttxt_mp.attach(url(redis_server)) as feed:
        got = drain(feed)
        redis_server.pause()
        try:
            t0 = time.monotonic()
            with pytest.raises(QueueEmpty):
                feed.get(timeout=4.0)
            assert time.monotonic() - t0 < 4.0 + 3.0 + 2.0  # overrun: one socket timeout
        finally:
            redis_server.resume()
        for i in range(20):
            writer.publish([writer.trade(SYMS[i % 2])])
        got += drain(feed, quiet=2.0)
    assert feed.sources[0].reconnects >= 1
    assert trade_ids(got) == writer.trades[-20:]


def test_redis_restarted_without_its_data_counts_what_went_unread(writer, redis_server):
    """redis-server SIGKILLed with entries the reader had not read, restarted empty; the
    publisher goes on (numbering its entries like the bridge): the reader says exactly how
    many events Redis lost before it read them, then books recover from the new state."""
    publish_books(writer, 2)
    writer.write_state()
    with ttxt_mp.attach(url(redis_server)) as feed:
        client = BaseClient()
        for e in drain(feed):
            client.dispatch(e)
        for i in range(7):  # published, never read: lost with the server
            writer.publish([writer.delta(SYMS[0], 50 + i)])
        redis_server.kill()
        redis_server.start()
        writer.meta()
        for i in range(3):
            writer.publish([writer.delta(SYMS[1], 60 + i), writer.trade(SYMS[1])])
        writer.write_state()
        events = drain(feed, quiet=2.0)
    gaps = [e.lost for e in events if type(e) is GapNotice]
    assert gaps == [7]
    assert trade_ids(events) == writer.trades[-3:]
    for e in events:
        client.dispatch(e)
    for s in SYMS:
        assert book_levels(client, s) == writer.truth(s)


@pytest.mark.parametrize("numbered", [True, False])
def test_trimmed_entries_give_an_exact_gap_then_books_recover(redis_server, numbered):
    """Entries numbered by the bridge (``s``/``x``): the gap counts events; without: entries."""
    w = BusWriter(redis_server.url, ENGINE, maxlen=50, numbered=numbered)
    w.meta()
    w.publish([w.snapshot(s) for s in SYMS])
    w.write_state()
    with ttxt_mp.attach(url(redis_server)) as feed:
        client = BaseClient()
        for e in drain(feed):
            client.dispatch(e)
        for i in range(200):  # 150 entries (300 events) trimmed before the reader looks again
            w.publish([w.delta(SYMS[i % 2], i), w.delta(SYMS[i % 2], i + 1)])
        w.write_state()  # the bridge refreshes its state at least every second
        events = drain(feed)
    gaps = [e for e in events if type(e) is GapNotice]
    assert [g.lost for g in gaps] == [300 if numbered else 150]
    assert type(events[0]) is GapNotice
    for e in events:
        client.dispatch(e)
    for s in SYMS:
        assert book_levels(client, s) == w.truth(s)
    w.close()


def test_bridge_gap_notice_is_followed_by_the_state(writer, redis_server):
    publish_books(writer, 3)
    writer.write_state()
    feed = ttxt_mp.attach(url(redis_server))
    with feed:
        client = BaseClient()
        for e in drain(feed):
            client.dispatch(e)
        for i in range(10):  # the bridge dropped these: they never reach the stream
            writer.delta(SYMS[0], 100 + i)
        writer.publish([writer.gap(10), writer.delta(SYMS[0], 200), writer.trade(SYMS[0])])
        writer.publish([writer.delta(SYMS[1], 201)])
        got: list = []
        got.append(feed.get(timeout=5))
        assert type(got[0]) is GapNotice and got[0].lost == 10
        with pytest.raises(QueueEmpty):  # books wait for a state that includes the gap
            got.append(feed.get(timeout=0.3))
        writer.write_state()
        got += drain(feed)
    assert trade_ids(got) == writer.trades[-1:]
    books = [e for e in got if type(e) is Orderbook]
    assert books and all(e.is_snapshot for e in books)  # superseded deltas dropped
    for e in got:
        client.dispatch(e)
    for s in SYMS:
        assert book_levels(client, s) == writer.truth(s)


def test_start_at_an_id_resumes_after_it(writer, redis_server):
    publish_books(writer, 10)
    feed = ttxt_mp.attach(url(redis_server), start="oldest")
    first = [feed.get(timeout=5) for _ in range(9)]
    resume = feed.sources[0].last_id
    assert feed.last_ids == {"venue1-market": resume}
    feed.close()
    writer.write_state()
    with ttxt_mp.attach(url(redis_server), start={"venue1-market": resume}) as feed2:
        rest = drain(feed2)
    handed = trade_ids(first)
    assert handed + [t for t in trade_ids(rest) if t not in handed] == writer.trades
    assert len(trade_ids(rest)) - len(set(trade_ids(rest)) - set(handed)) <= 3  # one entry


@pytest.mark.parametrize("where", ["entry", "state", "meta"])
def test_foreign_layout_is_refused(writer, redis_server, where):
    foreign = b"1:00112233deadbeef"
    publish_books(writer, 2)
    if where == "entry":
        writer.write_state()
        with ttxt_mp.attach(url(redis_server)) as feed:
            drain(feed)
            writer.publish([writer.trade(SYMS[0])], tag=foreign)
            with pytest.raises(BusLayoutError, match="refusing to decode"):
                feed.get(timeout=5)
        return
    if where == "state":
        writer.write_state(layout=foreign)
    else:
        writer.meta(layout=foreign)
    with pytest.raises(BusLayoutError, match="00112233deadbeef"):
        ttxt_mp.attach(url(redis_server))


def test_wrong_password_and_unreachable_name_the_url_without_the_password(redis_server_auth):
    pw = redis_server_auth.password
    port = redis_server_auth.port
    with pytest.raises(BusConnectionError) as e:
        ttxt_mp.attach(f"redis://:wrong-{pw}@127.0.0.1:{port}/0/{ENGINE}")
    msg = str(e.value)
    assert f"redis://:***@127.0.0.1:{port}/0/{ENGINE}" in msg and pw not in msg
    assert "credentials" in msg
    with pytest.raises(BusConnectionError, match="requires a password"):
        ttxt_mp.attach(f"redis://127.0.0.1:{port}/0/{ENGINE}")
    redis_server_auth.stop()
    with pytest.raises(BusConnectionError, match=f"127.0.0.1:{port}/0/{ENGINE}: cannot reach"):
        ttxt_mp.attach(f"redis://:{pw}@127.0.0.1:{port}/0/{ENGINE}")


def test_password_from_the_environment(redis_server_auth, monkeypatch):
    w = BusWriter(redis_server_auth.url, ENGINE)
    w.meta()
    w.publish([w.trade(SYMS[0])])
    monkeypatch.setenv("TTXT_MP_REDIS_PASSWORD", redis_server_auth.password)
    with ttxt_mp.attach(f"redis://127.0.0.1:{redis_server_auth.port}/0/{ENGINE}",
                        start="oldest") as feed:  # fmt: skip
        assert trade_ids([feed.get(timeout=5)]) == w.trades
        assert redis_server_auth.password not in feed.sources[0].name
    w.close()


def test_no_rings_and_bad_urls(redis_server):
    with pytest.raises(FeedNotFound, match="no rings of engine 'nobody'"):
        ttxt_mp.attach(url(redis_server, "nobody"))
    for bad, why in [(f"{redis_server.url}", "names no engine"),
                     (f"{redis_server.url}/bad-name", "invalid engine name"),
                     (f"{redis_server.url}/x/y", "expected /DB/ENGINE")]:  # fmt: skip
        with pytest.raises(ValueError, match=why):
            ttxt_mp.attach(bad)
    with pytest.raises(ValueError, match="invalid stream id"):
        ttxt_mp.attach(url(redis_server), start="yesterday")


def test_rings_without_meta_are_found_by_their_keys(redis_server):
    w = BusWriter(redis_server.url, ENGINE, ring="other-market")
    w.publish([w.trade(SYMS[0])])  # a publisher without a bridge: no meta hash
    with RemoteRings(url(redis_server), start="oldest") as src:
        assert [r.name for r in src.rings] == ["other-market"]
        assert trade_ids([src.get(timeout=5)]) == w.trades
    w.close()


def test_exchange_filter_selects_rings(redis_server):
    a = BusWriter(redis_server.url, ENGINE, ring="venue1-market")
    b = BusWriter(redis_server.url, ENGINE, ring="venue2-market")
    a.meta(rings=["venue1-market", "venue2-market"])
    a.publish([a.trade(SYMS[0])])
    b.publish([b.trade(SYMS[0])])
    with ttxt_mp.attach(url(redis_server), exchanges=[EXCHANGE], start="oldest") as feed:
        assert [r.name for r in feed.sources[0].rings] == ["venue1-market"]
    a.close()
    b.close()


def test_consumer_process_killed_and_restarted_resumes_from_its_last_id(writer, redis_server,
                                                                       tmp_path):  # fmt: skip
    """A real consumer process is SIGKILLed mid-stream and restarted at its last id: every
    trade arrives (repeats only from the entry in flight), its books equal the truth."""
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "remote_consumer.py")
    out = tmp_path / "out.txt"
    publish_books(writer, 5)
    writer.write_state()

    def spawn(start: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, script, url(redis_server), start, str(out)])

    def lines(tag: str) -> list[str]:
        text = out.read_text() if out.exists() else ""
        return [ln[2:] for ln in text.splitlines() if ln.startswith(tag + " ")]

    def wait_for(cond, what: str, limit: float = 30.0) -> None:
        end = time.monotonic() + limit
        while not cond():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            time.sleep(0.02)

    before = set(writer.trades)
    proc = spawn("latest")
    try:
        for i in range(40):
            publish_more = [writer.delta(SYMS[i % 2], i), writer.trade(SYMS[i % 2])]
            writer.publish(publish_more)
        wait_for(lambda: len(lines("T")) >= 20, "the first trades")
        proc.kill()
        proc.wait(10)
        for i in range(40, 80):  # published while no consumer runs
            writer.publish([writer.delta(SYMS[i % 2], i), writer.trade(SYMS[i % 2])])
        writer.write_state()
        resume = lines("I")[-1]
        proc = spawn(resume)
        writer.publish([writer.trade(SYMS[0])])
        end = MarketTrades(exchange=EXCHANGE, symbol=SYMS[0],
                           trades=(ttxt_mp.Trade("END", 1.0, 1.0, ttxt_mp.Side.BUY, 0),))  # fmt: skip
        writer.publish([end])
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    seen = lines("T")
    expected = [t for t in writer.trades if t not in before]
    assert sorted(set(seen), key=seen.index) == expected  # nothing lost, in order
    assert len(seen) - len(set(seen)) <= 1  # at most the entry in flight again
    books = json.loads(lines("B")[0])
    for s in SYMS:
        bids, asks = writer.truth(s)
        assert [tuple(x) for x in books[f"{EXCHANGE}|{s}"][0]] == bids
        assert [tuple(x) for x in books[f"{EXCHANGE}|{s}"][1]] == asks


def test_resume_at_an_id_redis_trimmed_says_so_then_books_come_from_the_state(redis_server):
    w = BusWriter(redis_server.url, ENGINE, maxlen=20)
    w.meta()
    old = w.publish([w.snapshot(s) for s in SYMS])
    for i in range(60):
        w.publish([w.delta(SYMS[i % 2], i), w.trade(SYMS[i % 2])])
    w.write_state()
    with ttxt_mp.attach(url(redis_server), start=old.decode()) as feed:
        events = drain(feed)
    assert type(events[0]) is GapNotice and events[0].lost == 0  # count unknown
    assert trade_ids(events) == w.trades[-20:]  # what Redis retains; their deltas are
    assert all(e.is_snapshot for e in events if type(e) is Orderbook)  # in the state
    client = BaseClient()
    for e in events:
        client.dispatch(e)
    for s in SYMS:
        assert book_levels(client, s) == w.truth(s)
    w.close()
