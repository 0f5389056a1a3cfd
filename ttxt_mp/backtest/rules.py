"""What differs between venues in a backtest: fees, amend semantics, how the queue moves,
and the error codes and messages of their rejections (so a backtested strategy sees the
acks it would see live).

Per-venue knowledge lives in the venue packages: a :class:`~ttxt_mp.connectors.venue.VenueSpec`
names its :class:`VenueRules` in ``backtest`` (``"module:attribute"``, per market through
``market_overrides``); :func:`default_rules` asks the registry and names no venue.
"""

from __future__ import annotations

import msgspec

__all__ = ["FeeSchedule", "RejectCode", "VenueRules", "default_rules"]


class FeeSchedule(msgspec.Struct, frozen=True):
    """Fees as fractions of the notional; negative = a rebate."""

    maker: float
    taker: float


class RejectCode:
    """Why the backtest venue refused a command: the keys of :attr:`VenueRules.rejects`
    (the simulator's :class:`~ttxt_mp.sim.matching.Reject` vocabulary)."""

    WOULD_TAKE = "WOULD_TAKE"  # post-only order that would trade
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    DUPLICATE_CLIENT_ID = "DUPLICATE_CLIENT_ID"
    INVALID_QTY = "INVALID_QTY"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_AMEND = "INVALID_AMEND"
    REDUCE_ONLY = "REDUCE_ONLY"
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    NOT_CONTRACT = "NOT_CONTRACT"


PRICE_AMENDS = ("in_place", "cancel_replace")


class VenueRules(msgspec.Struct, frozen=True):
    """How one venue (market) treats orders.

    ``price_amend``: ``"cancel_replace"`` = a price change (or a quantity increase) cancels
    the order and places a new one (new order id, the remaining quantity, back of the
    queue); ``"in_place"`` = the same order moves (back of the queue). Either way a pure
    quantity decrease keeps the order's place in the queue.
    ``queue_cancels``: visible size removed at our level (beyond what trades explain)
    shortens our queue pro rata; False: only trades do.
    ``rejects``: :class:`RejectCode` -> (the venue's code, its message); a missing one is
    reported with the RejectCode itself as code.
    ``post_only_cancel``: the venue accepts a crossing post-only order and cancels it at
    once (an accepted ack, then CANCELED) instead of rejecting the request."""

    price_amend: str = "in_place"
    queue_cancels: bool = True
    rejects: dict[str, tuple[str, str]] = {}
    post_only_cancel: bool = False

    def __post_init__(self) -> None:
        if self.price_amend not in PRICE_AMENDS:
            raise ValueError(f"price_amend must be one of {PRICE_AMENDS}, got {self.price_amend!r}")

    def reject(self, code: str, reason: str) -> tuple[str, str]:
        """(code, message) of a rejection as the venue words it; ``reason`` when it has
        no wording of its own."""
        return self.rejects.get(code, (code, reason))


def default_rules(exchange: str, market: str = "spot") -> VenueRules:
    """The rules the venue package declares for ``market`` (``VenueSpec.backtest``);
    plain :class:`VenueRules` for a venue that declares none. UnknownVenue / LookupError
    for an exchange or market that is not installed."""
    from ttxt_mp.connectors.venue import venue

    spec = venue(exchange).for_market(market)
    if not spec.backtest:
        return VenueRules()
    rules = spec.load("backtest")
    if not isinstance(rules, VenueRules):
        raise TypeError(f"venue {spec.label!r}: backtest names a {type(rules).__name__}, "
                        "not a VenueRules")  # fmt: skip
    return rules
