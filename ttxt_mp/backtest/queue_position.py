"""Where a resting order stands in its price level's queue, estimated from replayed data.

The replayed book shows only the total visible size per price, so the order's place is
the size that was visible at its price when it arrived (``ahead``); what arrives later
queues behind it. Replayed trades at that price consume ``ahead`` first and then fill the
order. A book update that lowers the level by more than the trades there explain is a
cancellation; cancellations are spread over the queue pro rata (the size ahead shrinks by
``cancelled x ahead / level``), because the replay cannot say where in the queue they were.
Whatever happens, no more can be ahead than the level still shows.
"""

from __future__ import annotations

__all__ = ["QueuePosition"]


class QueuePosition:
    """The visible size ahead of one resting order (see the module docstring)."""

    __slots__ = ("ahead",)

    def __init__(self, ahead: float) -> None:
        self.ahead = max(0.0, ahead)

    def on_trade(self, qty: float) -> float:
        """A replayed trade of ``qty`` at the order's price: it consumes the queue ahead
        first; returns what is left of it for the order (0 while the queue is not reached)."""
        took = min(self.ahead, qty)
        self.ahead -= took
        return qty - took

    def traded_through(self) -> None:
        """A trade beyond the order's price: the whole level was consumed."""
        self.ahead = 0.0

    def on_level(self, old: float, new: float, traded: float, cancels: bool) -> None:
        """The visible size at the order's price went from ``old`` to ``new``; ``traded`` of
        it was taken by trades already counted by :meth:`on_trade`. With ``cancels`` the
        rest of a decrease is a cancellation that shortens the queue pro rata."""
        if new >= old:
            return  # arrivals queue behind us
        before = old - traded  # the level after the trades, before the cancellations
        cancelled = before - new
        if cancels and cancelled > 0 and before > 0:
            self.ahead -= cancelled * min(1.0, self.ahead / before)
        self.ahead = max(0.0, min(self.ahead, new))

    def __repr__(self) -> str:
        return f"QueuePosition(ahead={self.ahead!r})"
