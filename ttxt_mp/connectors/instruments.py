"""Trading rules of each instrument, exact price/quantity formatting, and local validation.

An :class:`Instrument` is built from the venue's own description by the parser of its
package (``VENUE.instruments``, e.g. ``ttxt_mp.connectors.<venue>.instruments``). It is the
one instrument model of a venue: trading keeps the list in an :class:`InstrumentBook`,
market data derives its :class:`~ttxt_mp.connectors.normalizer.SymbolMap` from the same
list (``SymbolMap.from_instruments``), and a process fetches it once
(:mod:`ttxt_mp.connectors.catalog`).

Normalized symbols (:func:`instrument_symbol`) are unambiguous: spot ``BTC/USDT``,
perpetuals ``BTC/USDT:USDT`` (``:SETTLE``), dated contracts ``BTC/USDT:USDT-241227``
(``-YYMMDD``, the UTC delivery date). Two instruments with the same normalized symbol are
refused (:class:`SymbolCollision`).

Tick and step sizes are kept as :class:`~decimal.Decimal`: a price is sent as the exact
decimal string of a whole number of ticks (``0.3``, never ``0.30000000000000004``).

Commands carry float64 prices (see :mod:`ttxt_mp.events`). A float that is a whole number
of ticks up to float rounding noise (relative 1e-14, far below any tick) is snapped to the
tick; anything further off is *not* silently rounded: :func:`validate` rejects it with a
reason before any request is sent. ``round_price``/``round_qty`` round on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

import msgspec

from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    OrderAck,
    OrderAction,
    OrderType,
    SetLeverage,
    TimeInForce,
)

__all__ = [
    "Instrument",
    "InstrumentBook",
    "InstrumentsError",
    "LOCAL_REJECT_CODE",
    "OffGrid",
    "SymbolCollision",
    "VenueRequest",
    "check_amend",
    "decimal_field",
    "make_instrument",
    "check_cancel",
    "check_create",
    "reject_ack",
    "format_price",
    "format_qty",
    "instrument_symbol",
    "round_price",
    "round_qty",
    "to_decimal",
]

ZERO = Decimal(0)
FLOAT_NOISE = Decimal("1e-14")
"""Relative distance from the grid still treated as float rounding noise."""


class InstrumentsError(ValueError):
    """An instrument-list body that does not match the venue's documented format."""


class SymbolCollision(InstrumentsError):
    """Two instruments of one venue (and market) with the same normalized symbol, or one
    native name with two symbols: lookups could not tell them apart."""


def instrument_symbol(
    base: str, quote: str, kind: str = "spot", settle: str = "", expiry: str = ""
) -> str:
    """The normalized symbol: ``BASE/QUOTE`` for spot, ``BASE/QUOTE:SETTLE`` for a
    perpetual, ``BASE/QUOTE:SETTLE-YYMMDD`` for a dated contract (``settle`` defaults to
    the quote for linear, to the base for inverse contracts)."""
    if kind == "spot" and not expiry:
        return f"{base}/{quote}"
    settle = settle or (base if kind == "inverse" else quote)
    return f"{base}/{quote}:{settle}-{expiry}" if expiry else f"{base}/{quote}:{settle}"


def collision(
    exchange: str, native: str, symbol: str, other: str | None, old: str | None
) -> SymbolCollision | None:
    """Why ``native`` -> ``symbol`` cannot join a map where ``symbol`` is already the
    instrument ``other`` and ``native`` already maps to ``old`` (None: not there); None if
    it can (a native added again with the same symbol replaces itself)."""
    ex = exchange or "?"
    if other is not None and other != native:
        return SymbolCollision(
            f"{ex}: instruments {other!r} and {native!r} both map to {symbol!r}; one symbol "
            "needs one instrument (dated contracts are BASE/QUOTE:SETTLE-YYMMDD)"
        )
    if old is not None and old != symbol:
        return SymbolCollision(f"{ex}: instrument {native!r} maps to both {old!r} and {symbol!r}")
    return None


class OffGrid(ValueError):
    """A price or quantity that is not a whole number of ticks/steps."""


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """One tradable symbol and its rules. Zero limits mean "no limit"."""

    exchange: str
    native_symbol: str
    base: str
    quote: str
    kind: str = "spot"  # spot | linear | inverse
    settle: str = ""  # derivatives: the settlement coin ("": spot)
    expiry: str = ""  # dated contracts: the UTC delivery date, YYMMDD ("": spot, perpetual)
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO
    price_precision: int = 0
    qty_precision: int = 0
    status: str = "TRADING"
    trading: bool = True

    @property
    def symbol(self) -> str:
        """The normalized symbol (see :func:`instrument_symbol`), unique per venue market."""
        return instrument_symbol(self.base, self.quote, self.kind, self.settle, self.expiry)


def _places(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def decimal_field(text: str | None, what: str, exchange: str) -> Decimal:
    """A venue's decimal text (empty: 0); InstrumentsError names the venue and field."""
    if text is None or text == "":
        return ZERO
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise InstrumentsError(f"{exchange}: {what} is not a decimal: {text!r}") from None
    if not d.is_finite() or d < 0:
        raise InstrumentsError(f"{exchange}: {what} must be finite and >= 0, got {text!r}")
    return d


def make_instrument(
    exchange: str, native: str, base: str, quote: str, kind: str, tick: Decimal, step: Decimal,
    **kw,
) -> Instrument:
    if tick <= 0 or step <= 0:
        raise InstrumentsError(
            f"{exchange}: {native}: tick size {tick} and step size {step} must be > 0"
        )
    return Instrument(
        exchange=exchange, native_symbol=native, base=base, quote=quote, kind=kind,
        tick_size=tick.normalize(), step_size=step.normalize(),
        price_precision=_places(tick), qty_precision=_places(step), **kw,
    )  # fmt: skip


# --------------------------------------------------------------------------- formatting


def to_decimal(x: float | int | str | Decimal) -> Decimal:
    """The decimal a float stands for (its shortest repr), or the exact str/Decimal."""
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {x!r}")
        d = Decimal(repr(x))
    else:
        try:
            d = Decimal(str(x))
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {x!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {x!r}")
    return d


def _fixed(d: Decimal, places: int) -> str:
    text = format(d.quantize(Decimal(1).scaleb(-places)), "f")
    return "0" if text.startswith("-") and Decimal(text) == 0 else text


def _snap(value: Decimal, step: Decimal) -> Decimal | None:
    """value as a whole number of steps, if it is one up to float noise."""
    k = (value / step).to_integral_value(ROUND_HALF_EVEN)
    snapped = k * step
    if abs(value - snapped) <= max(abs(value), step) * FLOAT_NOISE:
        return snapped
    return None


def _on_grid(value: float | str | Decimal, step: Decimal, places: int, what: str) -> str:
    d = to_decimal(value)
    snapped = _snap(d, step)
    if snapped is None:
        raise OffGrid(f"{what} {d} is not a multiple of {step}")
    return _fixed(snapped, places)


def format_price(inst: Instrument, price: float | str | Decimal) -> str:
    """Exact decimal string of a price on the tick; :class:`OffGrid` otherwise."""
    return _on_grid(price, inst.tick_size, inst.price_precision, "price")


def format_qty(inst: Instrument, qty: float | str | Decimal) -> str:
    """Exact decimal string of a quantity on the step; :class:`OffGrid` otherwise."""
    return _on_grid(qty, inst.step_size, inst.qty_precision, "qty")


def round_price(inst: Instrument, price: float | str | Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
    d = to_decimal(price)
    k = (d / inst.tick_size).to_integral_value(rounding)
    return _fixed(k * inst.tick_size, inst.price_precision)


def round_qty(inst: Instrument, qty: float | str | Decimal, rounding: str = ROUND_DOWN) -> str:
    d = to_decimal(qty)
    k = (d / inst.step_size).to_integral_value(rounding)
    return _fixed(k * inst.step_size, inst.qty_precision)


# --------------------------------------------------------------------------- validation


def _positive(x: float, what: str) -> str | None:
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        return f"{what} must be a finite number > 0, got {x!r}"
    return None


def _check_value(
    x: float, what: str, grid: Decimal, off_grid: str, lo: Decimal, hi: Decimal, unit: str = ""
) -> tuple[str | None, Decimal]:
    """``x`` as an exact decimal on ``grid`` within [``lo``, ``hi``] (0 = no bound), or why not."""
    if err := _positive(x, what):
        return err, ZERO
    d = to_decimal(x)
    if _snap(d, grid) is None:
        return f"{what} {d} is {off_grid} {grid}", d
    if lo and d < lo:
        return f"{what} {d} is below the minimum {lo}{unit}", d
    if hi and d > hi:
        return f"{what} {d} is above the maximum {hi}{unit}", d
    return None, d


def _check_qty(inst: Instrument, qty: float) -> tuple[str | None, Decimal]:
    return _check_value(
        qty, "qty", inst.step_size, "not a multiple of the step size", inst.min_qty,
        inst.max_qty, f" {inst.base}",
    )  # fmt: skip


def _check_price(inst: Instrument, price: float) -> tuple[str | None, Decimal]:
    return _check_value(
        price, "price", inst.tick_size, "not on the tick size", inst.min_price, inst.max_price
    )


def _check_notional(inst: Instrument, price: Decimal, qty: Decimal) -> str | None:
    notional = price * qty
    if inst.min_notional and notional < inst.min_notional:
        return (
            f"notional {notional.normalize():f} {inst.quote} (price x qty) is below the "
            f"minimum {inst.min_notional} {inst.quote}"
        )
    if inst.max_notional and notional > inst.max_notional:
        return f"notional {notional.normalize():f} {inst.quote} is above the maximum {inst.max_notional}"
    return None


def check_create(inst: Instrument, cmd: CreateOrder) -> str | None:
    """Why ``cmd`` cannot be valid on ``inst`` (None if it can)."""
    if not inst.trading:
        return f"{inst.symbol} is not trading on {inst.exchange} (status {inst.status})"
    if cmd.reduce_only and inst.kind == "spot":
        return f"reduce_only applies to derivatives, not to spot {inst.symbol}"
    err, qty = _check_qty(inst, cmd.qty)
    if err:
        return err
    if cmd.order_type == OrderType.MARKET:
        if cmd.price:
            return f"a market order must not carry a price (got {cmd.price!r})"
        if cmd.tif in (TimeInForce.POST_ONLY, TimeInForce.FOK):
            return f"a market order cannot be {cmd.tif.name}; use a limit order"
        return None  # notional of a market order is checked by the venue at its price
    if cmd.order_type != OrderType.LIMIT:
        return f"unsupported order type {cmd.order_type!r}"
    if not cmd.price:
        return "a limit order needs a price > 0"
    err, price = _check_price(inst, cmd.price)
    if err:
        return err
    return _check_notional(inst, price, qty)


def check_amend(inst: Instrument, cmd: AmendOrder) -> str | None:
    if not (cmd.client_order_id or cmd.order_id):
        return "amend needs the client_order_id or the order_id of the order"
    if not cmd.new_price and not cmd.new_qty:
        return "nothing to amend: new_price and new_qty are both 0 (unchanged)"
    price = qty = None
    if cmd.new_price:
        err, price = _check_price(inst, cmd.new_price)
        if err:
            return "new " + err
    if cmd.new_qty:
        err, qty = _check_qty(inst, cmd.new_qty)
        if err:
            return "new " + err
    if price is not None and qty is not None:
        return _check_notional(inst, price, qty)
    return None


def check_cancel(inst: Instrument, cmd: CancelOrder) -> str | None:
    if not (cmd.client_order_id or cmd.order_id):
        return "cancel needs the client_order_id or the order_id of the order"
    return None


class InstrumentBook:
    """The instruments of one venue, by normalized (``BTC/USDT``) and native symbol.

    Two instruments with one normalized symbol (or one native name) are refused with
    :class:`SymbolCollision`; adding the same native name again replaces it."""

    def __init__(self, exchange: str, instruments: Iterable[Instrument] = ()) -> None:
        self.exchange = exchange
        self._by_symbol: dict[str, Instrument] = {}
        self._by_native: dict[str, Instrument] = {}
        for inst in instruments:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        if inst.exchange != self.exchange:
            raise ValueError(f"instrument of {inst.exchange} added to the {self.exchange} book")
        sym = inst.symbol
        other = self._by_symbol.get(sym)
        old = self._by_native.get(inst.native_symbol)
        err = collision(self.exchange, inst.native_symbol, sym,
                        other and other.native_symbol, old and old.symbol)  # fmt: skip
        if err is not None:
            raise err
        self._by_symbol[sym] = inst
        self._by_native[inst.native_symbol] = inst

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self):
        return iter(self._by_symbol.values())

    def get(self, symbol: str) -> Instrument | None:
        """By ``BASE/QUOTE`` or native name."""
        return self._by_symbol.get(symbol) or self._by_native.get(symbol)

    def normalized(self, native: str) -> str:
        """Native -> ``BASE/QUOTE``; unknown native names are returned unchanged."""
        inst = self._by_native.get(native)
        return inst.symbol if inst is not None else native

    def validate(self, cmd: CreateOrder | CancelOrder | AmendOrder) -> str | None:
        """Local rejection reason for a command, or None if it may be sent."""
        inst = self.get(cmd.symbol)
        if inst is None:
            return f"unknown symbol {cmd.symbol!r} on {self.exchange}"
        if isinstance(cmd, CreateOrder):
            return check_create(inst, cmd)
        if isinstance(cmd, AmendOrder):
            return check_amend(inst, cmd)
        if isinstance(cmd, CancelOrder):
            return check_cancel(inst, cmd)
        raise TypeError(f"not an order command: {type(cmd).__name__}")


# --------------------------------------------------------------------------- requests / acks


class VenueRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One signed REST call a denormalizer asks for; pure data, sent by the connector.

    ``params`` go in the query string (in order, see ``encode_query``); ``body`` is sent
    as is (Bybit: compact JSON). ``cmd`` is the command it carries out, for the ack.
    """

    method: str
    path: str
    params: dict[str, str] = {}
    body: bytes | None = None
    headers: dict[str, str] = {}
    action: OrderAction
    client_order_id: str
    symbol: str
    exchange: str

    def rejected(self, code: str | int | None, message: str, local_ts: int = 0) -> OrderAck:
        """The ack for a request the venue refused at the HTTP level (e.g. a ``RESTError``
        carrying the venue's code and message)."""
        return OrderAck(
            exchange=self.exchange, symbol=self.symbol, client_order_id=self.client_order_id,
            action=self.action, accepted=False, code="" if code is None else str(code),
            message=message, local_ts=local_ts,
        )  # fmt: skip


LOCAL_REJECT_CODE = "LOCAL"


def reject_ack(
    cmd: CreateOrder | CancelOrder | AmendOrder | SetLeverage,
    action: OrderAction,
    reason: str,
    *,
    code: str = LOCAL_REJECT_CODE,
    local_ts: int = 0,
) -> OrderAck:
    """A rejected ack for ``cmd`` (``code`` "LOCAL": refused before any request)."""
    return OrderAck(
        exchange=cmd.exchange, symbol=cmd.symbol, client_order_id=cmd.client_order_id,
        action=action, accepted=False, order_id=getattr(cmd, "order_id", ""), code=code,
        message=reason, local_ts=local_ts,
    )  # fmt: skip
