"""The strategy's ``self.trading`` in a backtest: :class:`TradingClient`'s methods and
state, with commands carried to the simulated venue by the backtest's event heap.

Bookkeeping (client order ids, acks, own orders, fills, wallets, positions) is the shared
:class:`~ttxt_mp.trading_client.TradingState`, so a strategy sees exactly what it sees
live. What differs is time: a command reaches the venue after the entry latency and its
answers come back through the strategy's ``on_*`` hooks after the ack latency, while the
strategy's own code takes no simulated time. So nothing can be *waited* for inside a
handler: :meth:`wait_ack` returns an ack that has already arrived and otherwise raises
:class:`~ttxt_mp.trading_client.TradingError` saying so (live, blocking in a handler
stalls the feed as well; react in ``on_order_ack`` instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ttxt_mp.events import OrderAck, OrderAction
from ttxt_mp.trading_client import TradingError, TradingState, _base36

__all__ = ["BacktestTrading"]

Submit = Callable[[str, Any], None]


class BacktestTrading(TradingState):
    """Order entry for a strategy in a backtest.

    ``submit(exchange, cmd)`` hands a stamped command to the runner (which delivers it to
    that exchange's venue after the entry latency); ``clock()`` is the simulated time in
    ns; ``exchanges`` are the venues of the backtest (a command to another is refused at
    once, like a typo live would never be acked). The session part of client order ids is
    derived from the simulated start, so two runs give the same ids."""

    def __init__(self, name: str, *, handler: Any, submit: Submit, clock: Callable[[], int],
                 exchanges: list[str], start_ns: int = 0) -> None:  # fmt: skip
        super().__init__(name, handler=handler,
                         session=_base36(start_ns // 1_000_000 % 36**8))  # fmt: skip
        self._submit = submit
        self._clock = clock
        self.exchanges = list(exchanges)

    def _time_ns(self) -> int:
        return self._clock()

    def _send(self, exchange: str, cmd: Any, action: OrderAction) -> str:
        if exchange not in self.exchanges:
            raise TradingError(f"no venue {exchange!r} in this backtest; the recording has "
                               f"{', '.join(self.exchanges) or 'none'}")  # fmt: skip
        self._submit(exchange, cmd)
        return self._count_sent(cmd, action)

    # --- the TradingClient calls that wait: in simulated time nothing arrives meanwhile

    def poll(self, timeout: float = 0.0) -> int:
        """0: the backtest delivers private events itself, at their simulated time."""
        return 0

    def wait_ack(self, client_order_id: str, timeout: float = 5.0,
                 action: OrderAction | None = None) -> OrderAck:  # fmt: skip
        got = self.take_ack(client_order_id, action)
        if got is None:
            raise TradingError(
                f"wait_ack({client_order_id!r}): the ack has not arrived yet and cannot "
                "while the strategy's code runs (simulated time stands still in a handler); "
                "handle it in on_order_ack, or use take_ack"
            )
        return got

    async def await_ack(self, client_order_id: str, timeout: float = 5.0,
                        action: OrderAction | None = None) -> OrderAck:  # fmt: skip
        return self.wait_ack(client_order_id, timeout, action)

    def wait_for(self, predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
        if not predicate():
            raise TradingError(f"wait_for({what}): not reached, and simulated time cannot "
                               "pass inside a strategy's handler")  # fmt: skip

    def close(self) -> None:
        pass

    def __enter__(self) -> BacktestTrading:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
