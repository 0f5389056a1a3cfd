"""BaseClient and Feed over the in-process queue: dispatch, books, filters, packaging."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

import ttxt_mp
from ttxt_mp import events as ev
from ttxt_mp.client import BaseClient, EventFilter, Feed
from ttxt_mp.queues import AsyncioQueue, QueueClosed, QueueEmpty

B = {"exchange": "bybit", "symbol": "BTC/USDT"}
ONE_OF_EACH = [
    ev.Orderbook(**B, is_snapshot=True, bids=((100.0, 1.0),), asks=((101.0, 2.0),),
                 last_update_id=1, first_update_id=1),
    ev.Orderbook(**B, bids=((100.5, 3.0),), last_update_id=2, first_update_id=2),
    ev.MarketTrades(**B, trades=(ev.Trade("7", 100.5, 0.1, ev.Side.BUY, 5),)),
    ev.Kline(**B, close=100.2),
    ev.BookTicker(**B, bid=100.5, bid_qty=3.0, ask=101.0, ask_qty=2.0, update_id=2),
    ev.ConnectorStatus(exchange="bybit", state=ev.ConnectorState.UP),
    ev.GapNotice(exchange="", lost=3),
    ev.OrderAck(**B, client_order_id="c1", action=ev.OrderAction.AMEND, accepted=True),
    ev.OrderUpdate(**B, client_order_id="c1", side=ev.Side.SELL, status=ev.OrderStatus.NEW),
    ev.Wallet(exchange="bybit", balances=(ev.Balance("USDT", 10.0, 0.0),)),
    ev.PositionUpdate(**B, size=-2.0),
]  # fmt: skip


class Recorder(BaseClient):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def on_orderbook(self, e): self.calls.append("orderbook")  # noqa: E704
    def on_trades(self, e): self.calls.append("trades")  # noqa: E704
    def on_kline(self, e): self.calls.append("kline")  # noqa: E704
    def on_book_ticker(self, e): self.calls.append("ticker")  # noqa: E704
    def on_status(self, e): self.calls.append("status")  # noqa: E704
    def on_gap(self, e): self.calls.append("gap")  # noqa: E704
    def on_order_ack(self, e): self.calls.append("ack")  # noqa: E704
    def on_order_update(self, e): self.calls.append("update")  # noqa: E704
    def on_wallet(self, e): self.calls.append("wallet")  # noqa: E704
    def on_position(self, e): self.calls.append("position")  # noqa: E704


def _queue(events) -> AsyncioQueue:
    q = AsyncioQueue()
    for e in events:
        q.put(e)
    q.close()
    return q


def test_every_kind_is_dispatched_including_positions():
    c = Recorder()
    c.run(_queue(ONE_OF_EACH))
    assert c.calls == ["orderbook", "orderbook", "trades", "kline", "ticker", "status", "gap",
                       "ack", "update", "wallet", "position"]  # fmt: skip
    book = c.books[("bybit", "BTC/USDT")]
    assert book.best_bid == (100.5, 3.0) and book.best_ask == (101.0, 2.0)


def test_book_tickers_are_selected_by_name_and_printed_on_one_line():
    from ttxt_mp.client import KINDS, _one_line

    t = ONE_OF_EACH[4]
    assert KINDS["BookTicker"] is ev.BookTicker
    f = EventFilter(kinds=["BookTicker"], symbols=["BTC/USDT"])
    assert f(t) and not f(ONE_OF_EACH[3])
    assert _one_line(t) == "bybit    BTC/USDT   ticker bid 3.0@100.5 ask 2.0@101.0 u=2"


async def test_async_run_dispatches_the_same():
    c = Recorder()
    await asyncio.wait_for(c.arun(_queue(ONE_OF_EACH)), 5)
    assert len(c.calls) == len(ONE_OF_EACH)


def test_filters_by_exchange_symbol_and_kind_but_keep_notices():
    other = ev.MarketTrades(exchange="binance", symbol="ETH/USDT")
    feed = Feed([_queue([other, *ONE_OF_EACH])], EventFilter(exchanges=["bybit"], kinds=["MarketTrades"]))
    got = []
    with pytest.raises(QueueClosed):
        while True:
            got.append(feed.get(timeout=1))
    assert [type(e).__name__ for e in got] == ["MarketTrades", "ConnectorStatus", "GapNotice"]


def test_unknown_kind_filter_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown event kind 'Trades'.*MarketTrades"):
        EventFilter(kinds=["Trades"])


def test_merged_feed_of_several_sources_sees_everything_once():
    a = [ev.GapNotice(exchange="a", lost=i) for i in range(50)]
    b = [ev.GapNotice(exchange="b", lost=i) for i in range(50)]
    with Feed([_queue(a), _queue(b)]) as feed:
        got = []
        with pytest.raises(QueueClosed):
            while True:
                got.append(feed.get(timeout=2))
    assert sorted((e.exchange, e.lost) for e in got) == sorted((e.exchange, e.lost) for e in a + b)
    assert [e.lost for e in got if e.exchange == "a"] == list(range(50))  # per-source order


def test_get_timeout_raises_queue_empty():
    with pytest.raises(QueueEmpty):
        Feed([AsyncioQueue()]).get(timeout=0.05)


def test_attach_to_unknown_engine_says_how_to_start_one():
    with pytest.raises(ttxt_mp.FeedNotFound, match="no rings for engine 'nope'.*ttxt-mp launch"):
        ttxt_mp.attach("nope")


def test_import_and_cli_work_without_home():
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    out = subprocess.run([sys.executable, "-m", "ttxt_mp.cli", "--help"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "launch" in out.stdout and "demo" in out.stdout


async def test_merged_feed_async_sees_everything_then_closes():
    a = [ev.GapNotice(exchange="a", lost=i) for i in range(20)]
    b = [ev.GapNotice(exchange="b", lost=i) for i in range(20)]
    got = []
    async with Feed([_queue(a), _queue(b)]) as feed:
        async for e in feed:
            got.append((e.exchange, e.lost))
    assert sorted(got) == sorted((e.exchange, e.lost) for e in a + b)
