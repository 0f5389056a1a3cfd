"""Configuration of the simulated markets: symbols, tick/step sizes, event rates, venue timings."""

from __future__ import annotations

import msgspec

VENUES = ("binance", "bybit")


class SymbolSpec(msgspec.Struct, frozen=True):
    """One instrument: realistic increments and a starting price."""

    symbol: str
    base: str
    quote: str
    tick: str  # price increment (Binance PRICE_FILTER.tickSize / Bybit priceFilter.tickSize)
    step: str  # quantity increment (Binance LOT_SIZE.stepSize / Bybit basePrecision)
    price: float  # starting mid price
    typical_qty: float  # median resting quantity of one level, in base units


# Increments close to what the venues list for these pairs (they change over time; these are
# plausible, not authoritative).
_KNOWN: dict[str, tuple[str, str, str, str, float, float]] = {
    "BTCUSDT": ("BTC", "USDT", "0.01", "0.00001", 65000.0, 0.25),
    "ETHUSDT": ("ETH", "USDT", "0.01", "0.0001", 3200.0, 3.0),
    "SOLUSDT": ("SOL", "USDT", "0.01", "0.001", 150.0, 40.0),
    "BNBUSDT": ("BNB", "USDT", "0.01", "0.001", 600.0, 8.0),
    "XRPUSDT": ("XRP", "USDT", "0.0001", "0.1", 0.6, 5000.0),
    "DOGEUSDT": ("DOGE", "USDT", "0.00001", "1", 0.15, 20000.0),
    "ETHBTC": ("ETH", "BTC", "0.00001", "0.0001", 0.05, 3.0),
}
_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "EUR")


def known_symbols() -> list[str]:
    """The pairs simulated with realistic increments, as ``BASE/QUOTE`` (the demo's choice)."""
    return [f"{v[0]}/{v[1]}" for v in _KNOWN.values()]


def default_spec(symbol: str) -> SymbolSpec:
    """Spec for a symbol: a known pair, or a generic one split on a common quote asset."""
    sym = symbol.upper()
    if not sym.isalnum():
        raise ValueError(f"symbol must be alphanumeric like BTCUSDT, got {symbol!r}")
    if sym in _KNOWN:
        base, quote, tick, step, price, qty = _KNOWN[sym]
        return SymbolSpec(sym, base, quote, tick, step, price, qty)
    for q in _QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            return SymbolSpec(sym, sym[: -len(q)], q, "0.001", "0.01", 10.0, 100.0)
    raise ValueError(f"cannot split {symbol!r} into base and quote; pass a SymbolSpec")


class Rates(msgspec.Struct):
    """Market event rates and book shape (per symbol)."""

    updates_per_sec: float = 200.0  # limit-order arrivals and cancels
    trades_per_sec: float = 5.0  # market orders (crossing limit orders also trade)
    levels: int = 1000  # initial levels per side
    max_levels: int = 5000  # farthest levels are removed beyond this many per side
    volatility: float = 0.5  # annualised, drives the random-walk mid
    cancel_ratio: float = 0.45  # share of update events that cancel/reduce a level


class VenueTimings(msgspec.Struct):
    """Protocol timings; defaults are the documented values, tests shrink them."""

    # Binance "General WSS information": ping frame every 20 s, disconnect if no pong within 1 min.
    binance_ping_interval: float = 20.0
    binance_pong_timeout: float = 60.0
    # Binance "Websocket Limits": 5 incoming messages per second (0 disables the check).
    binance_max_incoming_per_sec: int = 5
    # Binance "IP Limits": REQUEST_WEIGHT 6000 per minute.
    binance_weight_limit: int = 6000
    # Bybit "Connect": cut off after 10 minutes with no ping-pong and no stream data.
    bybit_idle_timeout: float = 600.0
    bybit_idle_data_keepalive: bool = True  # False: only client pings keep a connection alive
    # Bybit "Orderbook": level 1 re-sends a snapshot after 3 s without change.
    bybit_l1_resend: float = 3.0
    # Bybit "Orderbook" push frequency (spot), in ms, by depth.
    bybit_push_ms: dict[int, int] = msgspec.field(
        default_factory=lambda: {1: 10, 50: 20, 200: 200, 1000: 200}
    )
    # Bybit "Kline": push frequency 1-60 s.
    bybit_kline_push: float = 1.0
    max_send_queue: int = 200_000  # frames queued for a slow client before it is dropped
