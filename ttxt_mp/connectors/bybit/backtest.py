"""Bybit's rules for the backtester: ``/v5/order/amend`` changes an order in place (Bybit
documents no priority rule: like other venues, a price change loses the queue place, a
quantity decrease keeps it); a post-only order that would trade is accepted and then
cancelled ("PostOnly: if the order would be filled immediately ... it will be cancelled").
Codes as the simulator answers them (:mod:`.sim_trading`, :mod:`.sim_positions`): the
spot table (170xxx) and the contract table (110xxx)."""

from ttxt_mp.backtest.rules import RejectCode as R
from ttxt_mp.backtest.rules import VenueRules

SPOT = VenueRules(
    price_amend="in_place",
    post_only_cancel=True,
    rejects={
        R.INSUFFICIENT_BALANCE: ("170131", "Balance insufficient"),
        R.UNKNOWN_ORDER: ("170213", "Order does not exist."),
        R.DUPLICATE_CLIENT_ID: ("170141", "Duplicate clientOrderId"),
        R.INVALID_AMEND: ("170313", "The modified contract quantity cannot be less than to "
                          "the filled quantity"),
    },
)

LINEAR = VenueRules(
    price_amend="in_place",
    post_only_cancel=True,
    rejects={
        R.INSUFFICIENT_BALANCE: ("110007", "Insufficient available balance"),
        R.UNKNOWN_ORDER: ("110001", "Order does not exist"),
        R.DUPLICATE_CLIENT_ID: ("110072", "OrderLinkedID is duplicate"),
        R.REDUCE_ONLY: ("110017", "Reduce-only rule not satisfied"),
        R.INVALID_LEVERAGE: ("110013", "Due to risk limit, cannot set leverage"),
        R.INVALID_AMEND: ("110022", "Quantity has been restricted and orders cannot be "
                          "modified to increase the quantity"),
    },
)
