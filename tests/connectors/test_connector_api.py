"""ConnectorBase API without a venue in the loop: fluent stream plan, argument checks,
backoff while the venue is unreachable, stop() at any moment, reporting."""

from __future__ import annotations

import asyncio
import random
import socket

import msgspec
import pytest

from ttxt_mp.config import ConnectorConfig, Endpoints
from ttxt_mp.connectors.base import StreamPlan
from ttxt_mp.connectors.binance.connector import BinanceConnector, depth_weight
from ttxt_mp.connectors.bybit.connector import BybitConnector
from ttxt_mp.connectors.registry import UnknownExchange, connector_class
from ttxt_mp.events import ConnectorState, ConnectorStatus
from ttxt_mp.queues import AsyncioQueue

S = ConnectorState


def cfg(exchange: str = "binance", **kw) -> ConnectorConfig:
    return msgspec.convert(
        {"exchange": exchange, "symbols": ["BTC/USDT", "ETH/USDT"], **kw},
        ConnectorConfig,
        from_attributes=True,
    )


def test_registry_maps_exchanges_and_names_unknown_ones() -> None:
    assert connector_class("binance") is BinanceConnector
    assert connector_class("bybit") is BybitConnector
    with pytest.raises(
        UnknownExchange, match="unknown exchange 'nosuchvenue'; installed venues: binance, bybit"
    ):
        connector_class("nosuchvenue")


def test_config_of_another_exchange_is_refused() -> None:
    with pytest.raises(
        ValueError, match="BybitConnector serves exchange 'bybit', config says 'binance'"
    ):
        BybitConnector(cfg("binance"), AsyncioQueue())


def test_listening_market_stream_is_fluent_and_replaces_the_plan() -> None:
    c = BinanceConnector(cfg(), AsyncioQueue())
    assert c.plan == StreamPlan(("BTC/USDT", "ETH/USDT"), 1000, True, ())
    assert c.listening_market_stream(symbols=["SOL/USDT"], depth=100, klines="1m") is c
    assert c.plan == StreamPlan(("SOL/USDT",), 100, True, ("1m",))
    c.listening_market_stream(depth=False, trades=False)
    assert c.plan == StreamPlan(("SOL/USDT",), 0, False, ("1m",))
    c.listening_market_stream(depth=True)
    assert c.plan.depth == 1000
    assert [s.channel for s in c.plan.streams()] == ["book", "kline"]


def test_optional_streams_come_from_the_config_and_the_fluent_call() -> None:
    c = BinanceConnector(cfg(streams={"book_ticker": True, "agg_trades": True}), AsyncioQueue())
    assert (c.plan.book_ticker, c.plan.agg_trades) == (True, True)
    assert [s.channel for s in c.plan.streams(["BTC/USDT"])] == ["book", "book_ticker",
                                                                 "agg_trades"]  # fmt: skip
    assert "book ticker; aggregate trades" in c._plan_text()
    c.listening_market_stream(symbols=["ETH/USDT"], depth=False)  # the rest is kept
    assert c.plan == StreamPlan(("ETH/USDT",), 0, True, (), book_ticker=True, agg_trades=True)
    c.listening_market_stream(book_ticker=False, agg_trades=False)
    assert [s.channel for s in c.plan.streams()] == ["trades"]
    b = BybitConnector(cfg("bybit"), AsyncioQueue()).listening_market_stream(book_ticker=True)
    assert b.plan.book_ticker and not b.plan.agg_trades
    with pytest.raises(ValueError, match=r"bybit offers no agg_trades stream \(its optional "
                       r"streams: book_ticker\)"):  # fmt: skip
        b.listening_market_stream(agg_trades=True)
    with pytest.raises(ValueError, match="agg_trades needs trades"):
        c.listening_market_stream(trades=False, agg_trades=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 7}, r"binance offers depth levels \(5, 10, 20, 100, 500, 1000, 5000\), got 7"),
        ({"klines": ["2m"]}, r"binance kline intervals are .*; got '2m'"),
        ({"symbols": ["btcusdt"]}, r"symbol 'btcusdt' is not BASE/QUOTE"),
        ({"symbols": []}, "needs at least one symbol"),
        ({"symbols": ["A/B", "A/B"]}, "listed twice"),
        ({"symbols": "BTC/USDT"}, "not one string"),
    ],
)
def test_listening_market_stream_rejects_bad_arguments(kwargs, message) -> None:
    c = BinanceConnector(cfg(), AsyncioQueue())
    with pytest.raises((ValueError, TypeError), match=message):
        c.listening_market_stream(**kwargs)


def test_bybit_depth_levels_are_bybits() -> None:
    c = BybitConnector(cfg("bybit", streams={"depth": {"levels": 50}}), AsyncioQueue())
    c.listening_market_stream(depth=200)
    with pytest.raises(ValueError, match=r"bybit offers depth levels \(1, 50, 200\), got 1000"):
        c.listening_market_stream(depth=1000)


def test_depth_weight_follows_binance_docs() -> None:
    assert [depth_weight(n) for n in (5, 100, 101, 500, 1000, 5000)] == [5, 5, 25, 25, 50, 250]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_unreachable_venue_backs_off_and_stops_promptly() -> None:
    port = _closed_port()
    q = AsyncioQueue()
    reports: list[dict] = []
    c = BinanceConnector(
        cfg(
            endpoints=Endpoints(ws=f"ws://127.0.0.1:{port}", rest=f"http://127.0.0.1:{port}"),
            reconnect_backoff=0.02,
            reconnect_backoff_max=0.1,
        ),
        q,
        on_report=reports.append,
        report_interval=0.1,
        rng=random.Random(1),
    )
    task = asyncio.create_task(c.run())
    await asyncio.sleep(1.2)  # each REST attempt also retries 3 times inside RESTAssistant
    c.stop()
    await asyncio.wait_for(task, 2.0)
    st = []
    while q.qsize():
        st.append(q.get_nowait())
    assert all(isinstance(s, ConnectorStatus) for s in st)
    downs = [s for s in st if s.state == S.DOWN]
    assert len(downs) >= 2, "retries must continue with backoff"
    assert "instrument list failed" in downs[0].message and "retry in" in downs[0].message
    assert st[0].state == S.STARTING and st[-1].state == S.STOPPED
    assert reports and reports[-1]["state"] == "STOPPED"
    assert {"events", "reconnects", "gaps", "malformed", "symbols", "message"} <= set(reports[-1])


async def test_stop_before_run_returns_at_once() -> None:
    q = AsyncioQueue()
    c = BybitConnector(cfg("bybit", streams={"depth": {"levels": 50}}), q)
    c.stop()
    await asyncio.wait_for(c.run(), 2.0)
    states = []
    while q.qsize():
        states.append(q.get_nowait().state)
    assert states == [S.STARTING, S.STOPPED]


async def test_run_twice_is_refused() -> None:
    port = _closed_port()
    c = BinanceConnector(cfg(endpoints=Endpoints(rest=f"http://127.0.0.1:{port}")), AsyncioQueue())
    task = asyncio.create_task(c.run())
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="already running"):
        await c.run()
    with pytest.raises(RuntimeError, match="before run"):
        c.listening_market_stream(depth=100)
    c.stop()
    await asyncio.wait_for(task, 2.0)
