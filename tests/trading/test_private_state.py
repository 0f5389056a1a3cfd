"""The private ring's state on join (what TradingSession serves to a late client): the
wallet with every balance merged from partial updates, positions, open orders only, the
last status per connection; and never while an event is between tracked and published."""

from __future__ import annotations

import asyncio

from ttxt_mp import AsyncioQueue
from ttxt_mp import events as ev
from ttxt_mp.config import ConnectorConfig
from ttxt_mp.connectors.trading import TradingSession


def _order(cid: str, status: ev.OrderStatus) -> ev.OrderUpdate:
    return ev.OrderUpdate(exchange="binance", symbol="BTC/USDT", client_order_id=cid,
                          side=ev.Side.BUY, status=status, price=100.0, qty=1.0)  # fmt: skip


async def test_state_merges_wallet_updates_and_keeps_only_open_orders():
    session = TradingSession(ConnectorConfig(exchange="binance", symbols=["BTC/USDT"]), None,  # type: ignore[arg-type]
                             AsyncioQueue(), venue=object())  # type: ignore[arg-type]  # fmt: skip
    B = ev.Balance
    await session._publish(ev.Wallet(exchange="binance", balances=(B("BTC", 1.0, 0.0),
                                                                    B("USDT", 100.0, 0.0))))
    await session._publish(ev.Wallet(exchange="binance", balances=(B("USDT", 50.0, 50.0),)))
    await session._publish(ev.PositionUpdate(exchange="binance", symbol="BTC-PERP", size=-2.0))
    for cid, status in (("a-1", ev.OrderStatus.NEW), ("a-2", ev.OrderStatus.NEW),
                        ("a-2", ev.OrderStatus.FILLED), ("a-3", ev.OrderStatus.PARTIALLY_FILLED)):
        o = _order(cid, status)
        session._track(o)
        await session._publish(o)
    session._status(ev.ConnectorState.UP, "trading: reconciled 2 open orders")
    state = session.state_events()
    wallets = [e for e in state if isinstance(e, ev.Wallet)]
    assert len(wallets) == 1
    assert {b.asset: (b.free, b.locked) for b in wallets[0].balances} == {
        "BTC": (1.0, 0.0), "USDT": (50.0, 50.0)}
    assert [e.size for e in state if isinstance(e, ev.PositionUpdate)] == [-2.0]
    assert sorted(e.client_order_id for e in state if isinstance(e, ev.OrderUpdate)) == [
        "a-1", "a-3"]
    statuses = [e for e in state if isinstance(e, ev.ConnectorStatus)]
    assert [s.message for s in statuses] == ["trading: reconciled 2 open orders"]
    assert session.state_consistent()


async def test_no_state_while_an_event_waits_for_ring_space():
    class Slow(AsyncioQueue):
        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()

        async def aput(self, event):
            await self.gate.wait()
            await super().aput(event)

    pub = Slow()
    session = TradingSession(ConnectorConfig(exchange="binance", symbols=["BTC/USDT"]), None,  # type: ignore[arg-type]
                             pub, venue=object())  # type: ignore[arg-type]  # fmt: skip
    task = asyncio.ensure_future(session._publish(ev.Wallet(exchange="binance")))
    await asyncio.sleep(0)
    assert not session.state_consistent()  # the state would hold what the ring does not
    pub.gate.set()
    await task
    assert session.state_consistent()
