"""What the trading modules share: the order commands and the codes/messages clients read.

The command path and the exactly-once protocol are described in
:mod:`ttxt_mp.connectors.trading`.
"""

from __future__ import annotations

from ttxt_mp.events import AmendOrder, CancelOrder, CreateOrder, OrderAction, SetLeverage

__all__ = [
    "ACTION",
    "COMMANDS",
    "Command",
    "ERROR_CODE",
    "RECONCILED",
    "RECONCILING",
    "RESOLVED_CODE",
]

Command = CreateOrder | CancelOrder | AmendOrder | SetLeverage
COMMANDS = (CreateOrder, CancelOrder, AmendOrder, SetLeverage)
ACTION = {CreateOrder: OrderAction.CREATE, CancelOrder: OrderAction.CANCEL,
          AmendOrder: OrderAction.AMEND, SetLeverage: OrderAction.SET_LEVERAGE}  # fmt: skip
RESOLVED_CODE = "RESOLVED"
"""``OrderAck.code`` of an ack found by querying the venue (outcome was unknown)."""
ERROR_CODE = "ERROR"
"""``OrderAck.code`` of a command that failed inside the connector (or whose outcome the
venue could not be asked about)."""
RECONCILED = "trading: reconciled"
RECONCILING = "trading: reconciling"
"""How the private stream's UP / RESYNCING status messages start around a reconciliation
(:class:`ttxt_mp.trading_client.TradingClient` waits for :data:`RECONCILED`)."""
