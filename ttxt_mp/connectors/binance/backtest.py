"""Binance's rules for the backtester: Spot changes a price by cancel-replace
(``POST /api/v3/order/cancelReplace``: new order id, back of the queue) and lowers a quantity
keeping priority (``PUT /api/v3/order/amend/keepPriority``); USDⓈ-M futures modify in
place (``PUT /fapi/v1/order``). Codes and messages as in errors.md (the same the
simulator answers: :mod:`.sim_trading`, :mod:`.sim_futures_trading`)."""

from ttxt_mp.backtest.rules import RejectCode as R
from ttxt_mp.backtest.rules import VenueRules

_UNKNOWN = ("-2011", "Unknown order sent.")

SPOT = VenueRules(
    price_amend="cancel_replace",
    rejects={
        R.WOULD_TAKE: ("-2010", "Order would immediately match and take."),
        R.INSUFFICIENT_BALANCE: ("-2010", "Account has insufficient balance for requested action."),
        R.DUPLICATE_CLIENT_ID: ("-2010", "Duplicate order sent."),
        R.UNKNOWN_ORDER: _UNKNOWN,
        R.INVALID_QTY: ("-1013", "Filter failure: LOT_SIZE"),
        R.INVALID_PRICE: ("-1013", "Filter failure: PRICE_FILTER"),
    },
)

LINEAR = VenueRules(
    price_amend="in_place",
    rejects={
        R.WOULD_TAKE: ("-5022", "Due to the order could not be executed as maker, the Post Only "
                       "order will be rejected. The order will not be recorded in the order "
                       "history"),
        R.INSUFFICIENT_BALANCE: ("-2019", "Margin is insufficient."),
        R.REDUCE_ONLY: ("-2022", "ReduceOnly Order is rejected."),
        R.UNKNOWN_ORDER: _UNKNOWN,
        R.INVALID_LEVERAGE: ("-4028", "Leverage is not valid"),
        R.INVALID_AMEND: ("-5027", "No need to modify the order."),
    },
)
