"""TradingSession and contracts: a SetLeverage command gets exactly one OrderAck (action
SET_LEVERAGE), a spot venue refuses it, a lost answer is resolved from the position's
leverage; reconciliation publishes the venue's positions and a flat one for a position
that closed meanwhile; TradingClient.set_leverage refuses an empty request."""

from __future__ import annotations

from typing import Any

import pytest

from ttxt_mp import AsyncioQueue
from ttxt_mp import events as ev
from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.trading import TradingSession, TradingVenue, UnknownOutcome
from ttxt_mp.connectors.trading.protocol import ERROR_CODE, RESOLVED_CODE

SYM = "BTC/USDT:USDT"


class Venue(TradingVenue):
    """Only what the session's contract paths call."""

    exchange = "binance"

    def __init__(self, cfg: ConnectorConfig, answer: Any = None, leverage: float = 5.0) -> None:
        self.cfg, self.answer, self.leverage = cfg, answer, leverage
        self.recv_window_ms = 0
        self.held: list[ev.PositionUpdate] = []
        self.calls: list[str] = []

    async def set_leverage(self, cmd: ev.SetLeverage) -> ev.OrderAck:
        self.calls.append("set")
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer == "spot":
            return await super().set_leverage(cmd)
        return self.setting_ack(cmd)

    async def positions(self, symbol: str | None = None) -> list[ev.PositionUpdate]:
        self.calls.append(f"positions {symbol}")
        if symbol is not None:
            return [ev.PositionUpdate(exchange="binance", symbol=symbol, leverage=self.leverage)]
        return list(self.held)

    async def open_orders(self) -> list[ev.OrderUpdate]:
        return []

    async def wallet(self) -> ev.Wallet:
        return ev.Wallet(exchange="binance")

    # unused abstract hooks
    def _make_signer(self, *a: Any) -> Any: ...
    def _rate_limiter(self) -> Any: ...
    async def load_instruments(self, refresh: bool = False) -> Any: ...
    async def server_time_ms(self) -> int: return 0
    async def query_order(self, symbol: str, client_order_id: str) -> Any: ...
    async def private_stream(self, on_up: Any, on_frame: Any) -> None: ...


def session(answer: Any = None, leverage: float = 5.0) -> tuple[TradingSession, Venue, AsyncioQueue]:
    cfg = ConnectorConfig(exchange="binance", market="linear", symbols=[SYM])
    v = Venue(cfg, answer, leverage)
    q = AsyncioQueue()
    return TradingSession(cfg, None, q, venue=v), v, q  # type: ignore[arg-type]


def cmd(leverage: float = 5.0) -> ev.SetLeverage:
    return ev.SetLeverage(exchange="binance", symbol=SYM, local_ts=1, client_order_id="c-1",
                          leverage=leverage, margin_mode=ev.MarginMode.ISOLATED)  # fmt: skip


async def test_set_leverage_is_acked_once():
    s, v, q = session()
    (task,) = s.dispatch([cmd()], "k")
    await task
    ack = q.get_nowait()
    assert (ack.accepted, ack.action, ack.client_order_id, ack.symbol) == (
        True, ev.OrderAction.SET_LEVERAGE, "c-1", SYM)
    assert q.qsize() == 0 and v.calls == ["set"]


async def test_a_spot_venue_refuses_set_leverage():
    s, _, _ = session("spot")
    ack = await s.execute(cmd())
    assert not ack.accepted and "not a contract market" in ack.message


@pytest.mark.parametrize("leverage, accepted", [(5.0, True), (7.0, False)])
async def test_lost_answer_resolved_from_the_position(leverage, accepted):
    s, v, _ = session(UnknownOutcome("timeout"), leverage=5.0)
    ack = await s.execute(cmd(leverage))
    assert (ack.accepted, ack.code) == (accepted, RESOLVED_CODE)
    assert "leverage is 5" in ack.message and v.calls == ["set", f"positions {SYM}"]


async def test_margin_mode_only_cannot_be_resolved():
    s, _, _ = session(UnknownOutcome("timeout"))
    ack = await s.execute(cmd(0.0))
    assert (ack.accepted, ack.code) == (False, ERROR_CODE)


async def test_reconcile_publishes_positions_and_flattens_closed_ones():
    s, v, q = session()
    await s._publish(ev.PositionUpdate(exchange="binance", symbol="ETH/USDT:USDT", size=3.0,
                                       entry_price=2000.0))  # fmt: skip
    v.held = [ev.PositionUpdate(exchange="binance", symbol=SYM, size=-0.5, entry_price=60000.0)]
    await s.reconcile()
    got = []
    while q.qsize():
        e = q.get_nowait()
        if isinstance(e, ev.PositionUpdate):
            got.append((e.symbol, e.size, e.entry_price))
    assert got == [("ETH/USDT:USDT", 3.0, 2000.0), (SYM, -0.5, 60000.0), ("ETH/USDT:USDT", 0.0, 0.0)]
    state = {e.symbol: e.size for e in s.state_events() if isinstance(e, ev.PositionUpdate)}
    assert state == {SYM: -0.5, "ETH/USDT:USDT": 0.0}


def test_client_set_leverage_needs_something_to_set():
    from ttxt_mp.trading_client import TradingClient

    tc = TradingClient("nope", "alice", link_now=False)
    with pytest.raises(ValueError, match="leverage and/or a margin mode"):
        tc.set_leverage("binance", SYM)
