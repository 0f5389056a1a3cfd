"""Shared helpers for the storage tests: event factories, hypothesis strategies, recording."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from ttxt_mp import AsyncioQueue
from ttxt_mp.events import (
    ConnectorState,
    ConnectorStatus,
    GapNotice,
    Kline,
    MarketTrades,
    Orderbook,
    Side,
    Trade,
)
from ttxt_mp.storage import MarketDataRecorder, MarketDataReplayer

EXCHANGES = ("binance", "bybit")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDC")
T0 = 1_714_521_600_000_000_000  # 2024-05-01T00:00:00Z in ns


def book(i: int, symbol: str = "BTC/USDT", exchange: str = "binance", ts: int | None = None,
         snapshot: bool = False, levels: int = 2) -> Orderbook:  # fmt: skip
    """A deterministic order book event; ``first_update_id`` = ``i`` identifies it."""
    mid = 100.0 + (i % 50) * 0.5
    return Orderbook(
        exchange=exchange, symbol=symbol, exch_ts=T0 + i * 1000 if ts is None else ts,
        local_ts=T0 + i * 1000 + 7, is_snapshot=snapshot,
        bids=tuple((mid - 0.5 - k, 1.0 + k) for k in range(levels)),
        asks=tuple((mid + 0.5 + k, 2.0 + k) for k in range(levels)),
        first_update_id=i, last_update_id=i,
    )  # fmt: skip


def record(events: Iterable[Any], directory: str | os.PathLike[str], **options: Any):
    """Record ``events`` through an AsyncioQueue and return the recorder's stats."""
    q = AsyncioQueue()
    for ev in events:
        q.put(ev)
    q.close()
    options.setdefault("max_chunk_age", 3600.0)
    options.setdefault("fsync_interval", None)
    return MarketDataRecorder(q, directory, **options).run()


def replay(paths: Any, **options: Any) -> list[Any]:
    with MarketDataReplayer(paths, **options) as rp:
        return list(rp.events())


# ---------------------------------------------------------------------- hypothesis

_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_f = st.floats(allow_nan=False, allow_infinity=False, width=64)
_ts = st.integers(min_value=0, max_value=2**62)
_i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_level = st.tuples(_f, _f)


@st.composite
def market_event(draw) -> Any:
    """Any market event (book, trades, kline) or an instrument gap notice."""
    base = dict(exchange=draw(st.sampled_from(EXCHANGES)), symbol=draw(st.sampled_from(SYMBOLS)),
                exch_ts=draw(_ts), local_ts=draw(_ts))  # fmt: skip
    which = draw(st.sampled_from(["book", "trades", "kline", "gap"]))
    if which == "book":
        return Orderbook(
            **base, is_snapshot=draw(st.booleans()),
            bids=tuple(draw(st.lists(_level, max_size=6))),
            asks=tuple(draw(st.lists(_level, max_size=6))),
            first_update_id=draw(_i64), last_update_id=draw(_i64),
            prev_update_id=draw(_i64), seq=draw(_i64),
        )  # fmt: skip
    if which == "trades":
        trade = st.builds(Trade, _name, _f, _f, st.sampled_from(list(Side)), _ts)
        return MarketTrades(**base, trades=tuple(draw(st.lists(trade, max_size=4))))
    if which == "kline":
        return Kline(
            **base, interval=draw(st.sampled_from(["1m", "5m", "1h"])), open_ts=draw(_ts),
            close_ts=draw(_ts), open=draw(_f), high=draw(_f), low=draw(_f), close=draw(_f),
            volume=draw(_f), quote_volume=draw(_f), trades=draw(_i64), closed=draw(st.booleans()),
        )  # fmt: skip
    return GapNotice(**base, lost=draw(st.integers(0, 2**40)))


def status(exchange: str, ts: int, state: ConnectorState = ConnectorState.UP) -> ConnectorStatus:
    return ConnectorStatus(exchange=exchange, local_ts=ts, state=state, message="ok")
