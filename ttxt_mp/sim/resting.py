"""The users' resting orders of one symbol as the synthetic flow meets them (the
:class:`~ttxt_mp.sim.market.Resting` hook a trading core attaches to each market).

A venue matches an incoming order against the best price first and, within a price, the
oldest order first. The synthetic book is one total per level, so a user's order keeps
its place as ``ahead``: the synthetic lots that were at its price when it started resting
(arrivals after it queue behind). A synthetic taker at that price consumes ``ahead``
first, then the user's order (a fill at the user's price, maker fee, on the private
stream), then what follows. A synthetic cancel at the level shortens ``ahead`` pro rata
(``ahead x new / old``: the cancelled size may have been anywhere in the queue), the
model the backtest's queue position uses; never is more ahead than the level shows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ttxt_mp.events import Side, TimeInForce

if TYPE_CHECKING:
    from ttxt_mp.sim.trading import TradingCore

__all__ = ["UserQueue"]


class UserQueue:
    """Queue places of one symbol's resting user orders (see the module docstring)."""

    __slots__ = ("core", "symbol", "account", "ahead")

    def __init__(self, core: TradingCore, symbol: str, account: str) -> None:
        self.core = core
        self.symbol = symbol
        self.account = account  # the synthetic flow's account in the matching engine
        self.ahead: dict[int, tuple[int, int]] = {}  # order id -> (engine seq, lots ahead)

    def _tick(self, price: Decimal) -> int:
        return int((price / self.core.specs[self.symbol].tick_size).to_integral_value())

    def _visible(self, is_bid: bool, tick: int) -> int:
        return self.core.markets[self.symbol].book.side(is_bid).levels.get(tick, 0)

    def _orders(self, is_bid: bool, tick: int) -> list:
        book = self.core.engine.books[self.symbol]
        side = Side.BUY if is_bid else Side.SELL
        price = tick * self.core.specs[self.symbol].tick_size
        return list(book.levels[side].get(price, ()))

    def _place(self, o, visible: int) -> int:  # noqa: ANN001 - the engine's order
        """The order's lots ahead, measured now if it (re-)entered the book since."""
        seq_ahead = self.ahead.get(o.order_id)
        if seq_ahead is None or seq_ahead[0] != o.seq:
            seq_ahead = self.ahead[o.order_id] = (o.seq, visible)
        return min(seq_ahead[1], visible)

    def track(self, order_id: int) -> None:
        """After a change to a user order: one that now rests (new, or re-entered the book
        by an amend) gets the synthetic size at its price as its place; a closed one is
        forgotten."""
        o = self.core.engine.orders.get(order_id)
        if o is None:
            self.ahead.pop(order_id, None)
        else:
            self._place(o, self._visible(o.side == Side.BUY, self._tick(o.price)))

    # -- the Resting hook

    def best(self, is_bid: bool) -> int | None:
        eng = self.core.engine
        if not eng.orders:
            return None  # the common case: no user order rests anywhere
        p = eng.best_bid(self.symbol) if is_bid else eng.best_ask(self.symbol)
        return None if p is None else self._tick(p)

    def take(self, is_bid: bool, tick: int, lots: int, visible: int) -> list[tuple[int, bool]]:
        core, sym = self.core, self.symbol
        step = core.specs[sym].step_size
        price = tick * core.specs[sym].tick_size
        taker = Side.SELL if is_bid else Side.BUY
        orders = self._orders(is_bid, tick)
        parts: list[tuple[int, bool]] = []
        used = 0  # synthetic lots consumed at the level
        for o in orders:
            ahead = self._place(o, visible)
            syn = min(lots, max(0, ahead - used))
            if syn:
                parts.append((syn, False))
                used += syn
                lots -= syn
            if not lots:
                break
            q = min(lots, int(o.remaining / step))
            if o.reduce_only and o.spec.settle:  # never trade past the position it reduces
                q = min(q, int(core.engine._closable(o) / step))
            if q <= 0:
                continue
            r = core.engine.place(self.account, sym, taker, q * step, price,
                                  tif=TimeInForce.IOC)  # fmt: skip
            got = int(sum((f.qty for f in r.fills), Decimal(0)) / step)
            core._record(r)
            if got:
                parts.append((got, True))
                lots -= got
            if not lots:
                break
        rest = min(lots, visible - used)
        if rest > 0:
            parts.append((rest, False))
            used += rest
        if used:
            self._consumed(orders, used)
        return parts

    def _consumed(self, orders: list, lots: int) -> None:
        for o in orders:
            if o.order_id in self.ahead:
                seq, a = self.ahead[o.order_id]
                self.ahead[o.order_id] = (seq, max(0, a - lots))

    def reduced(self, is_bid: bool, tick: int, old: int, new: int) -> None:
        if old <= 0 or not self.ahead:
            return
        for o in self._orders(is_bid, tick):
            seq_ahead = self.ahead.get(o.order_id)
            if seq_ahead is not None and seq_ahead[0] == o.seq:
                self.ahead[o.order_id] = (seq_ahead[0], min(new, seq_ahead[1] * new // old))
