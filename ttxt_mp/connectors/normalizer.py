"""Translating exchange messages to and from ttxt-mp events, shared by every venue.

A venue's ``Normalizer`` turns raw WebSocket frames and REST bodies into
:mod:`ttxt_mp.events`; its ``Denormalizer`` turns normalized requests into what the venue
expects. Both are pure (no network), so they are tested on messages copied from the
exchange documentation and benchmarked on their own.

Decoding is done by ``msgspec`` into typed structs for each documented message (no
``json.loads`` into dicts). Prices and quantities arrive as decimal strings; ``msgspec``
parses them straight to float64 (correctly rounded, so any decimal with <= 15 significant
digits round-trips exactly). Negative, NaN or infinite numbers are refused.

Symbols: the exchange-native name (``BTCUSDT``) maps to ``BASE/QUOTE`` (``BTC/USDT``)
through a :class:`SymbolMap`, built from the venue's instrument list: the same
:class:`ttxt_mp.connectors.instruments.Instrument` list trading uses
(:meth:`SymbolMap.from_instruments`; a venue's ``symbols_from_exchange_info``). Without
a map, a native name is split on the longest known quote-currency suffix
(:data:`DEFAULT_QUOTES`); a name that matches none is refused with :class:`MalformedFrame`
rather than guessed.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, ClassVar

import msgspec

from ttxt_mp.connectors import instruments as _rules
from ttxt_mp.events import Event

__all__ = [
    "Control",
    "DEFAULT_QUOTES",
    "DenormalizerBase",
    "Instrument",
    "MalformedFrame",
    "NormalizerBase",
    "Qty",
    "Stream",
    "SymbolMap",
    "UnknownSymbol",
    "excerpt",
    "ms_to_ns",
]

EXCERPT_CHARS = 160
"""Characters of a bad frame quoted in :class:`MalformedFrame` (never the whole frame)."""

Qty = Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)]
"""A price or quantity: finite and >= 0 (decoded from a JSON string with strict=False)."""

DEFAULT_QUOTES: tuple[str, ...] = (
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDE", "DAI", "USD", "EUR", "GBP", "TRY",
    "BRL", "JPY", "AUD", "UAH", "PLN", "RON", "ZAR", "ARS", "MXN", "COP", "IDR", "CZK",
    "BTC", "ETH", "BNB", "SOL", "XRP", "TRX", "DOGE", "MNT",
)  # fmt: skip
"""Quote currencies tried, longest first, when no instrument map is given."""


def ms_to_ns(ms: int) -> int:
    return ms * 1_000_000


def excerpt(frame: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short printable excerpt of a frame for error messages."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        text = bytes(frame[: limit + 1]).decode("utf-8", "replace")
    else:
        text = str(frame)[: limit + 1]
    return text if len(text) <= limit else text[:limit] + "..."


class MalformedFrame(ValueError):
    """A frame or body that does not match the venue's documented message formats."""

    def __init__(self, exchange: str, reason: str, frame: Any = b"") -> None:
        self.exchange = exchange
        self.reason = reason
        self.excerpt = excerpt(frame)
        super().__init__(f"{exchange}: malformed frame: {reason}; frame: {self.excerpt!r}")


class UnknownSymbol(MalformedFrame):
    """A native symbol that the instrument map does not know and no quote suffix splits."""


class Control(msgspec.Struct, frozen=True):
    """A non-data frame: subscribe ack, pong, error reply, or an unsupported stream event.

    ``normalize`` returns ``[]`` for these and appends them to ``Normalizer.controls`` so a
    connector can check its subscriptions (``ok=False`` carries the venue's message).
    """

    exchange: str
    kind: str  # "ack" | "pong" | "error" | "unsupported"
    ok: bool = True
    id: str = ""
    message: str = ""


class Instrument(msgspec.Struct, frozen=True):
    """What market data needs of an instrument: a view of the venue's one instrument model,
    :class:`ttxt_mp.connectors.instruments.Instrument` (made by :meth:`of`)."""

    native: str
    base: str
    quote: str
    tick_size: float = 0.0
    kind: str = "spot"
    settle: str = ""
    expiry: str = ""

    @property
    def symbol(self) -> str:
        """The normalized symbol (see :func:`ttxt_mp.connectors.instruments.instrument_symbol`)."""
        return _rules.instrument_symbol(self.base, self.quote, self.kind, self.settle, self.expiry)

    @classmethod
    def of(cls, inst: _rules.Instrument) -> Instrument:
        return cls(native=inst.native_symbol, base=inst.base, quote=inst.quote,
                   tick_size=float(inst.tick_size), kind=inst.kind, settle=inst.settle,
                   expiry=inst.expiry)  # fmt: skip


class SymbolMap:
    """Exchange-native symbol <-> normalized symbol (``BASE/QUOTE``), with cached lookups.

    Two instruments with one normalized symbol (or one native name with two symbols) are
    refused with :class:`~ttxt_mp.connectors.instruments.SymbolCollision`."""

    def __init__(
        self,
        instruments: Iterable[Instrument] = (),
        *,
        quotes: Iterable[str] = DEFAULT_QUOTES,
        exchange: str = "",
    ) -> None:
        self.exchange = exchange
        self.instruments: dict[str, Instrument] = {}
        self._to_norm: dict[str, str] = {}
        self._to_native: dict[str, str] = {}
        self._symbols: dict[str, str] = {}  # of the instruments added (not the cache)
        self.quotes = tuple(sorted({q.upper() for q in quotes}, key=len, reverse=True))
        for ins in instruments:
            self.add(ins)

    @classmethod
    def from_instruments(
        cls,
        instruments: Iterable[_rules.Instrument],
        *,
        quotes: Iterable[str] = DEFAULT_QUOTES,
        exchange: str = "",
    ) -> SymbolMap:
        """The market-data map of a venue's instrument list (the one trading uses too)."""
        items = list(instruments)
        exchange = exchange or (items[0].exchange if items else "")
        return cls((Instrument.of(i) for i in items), quotes=quotes, exchange=exchange)

    @classmethod
    def parse(
        cls, parser: Callable[[Any], Iterable[_rules.Instrument]], body: Any, exchange: str
    ) -> SymbolMap:
        """The map of an instrument-list body read by the venue's parser
        (``VENUE.instruments``); a body it refuses raises :class:`MalformedFrame`."""
        try:
            return cls.from_instruments(parser(body), exchange=exchange)
        except _rules.InstrumentsError as err:
            raise MalformedFrame(exchange, str(err), body) from None

    @classmethod
    def coerce(cls, symbols: Any, exchange: str = "") -> SymbolMap:
        """Accept a SymbolMap, a ``{native: "BASE/QUOTE"}`` mapping, an iterable of
        ``"BASE/QUOTE"`` names (native = BASE+QUOTE), or None (quote-suffix fallback)."""
        if isinstance(symbols, SymbolMap):
            return symbols
        smap = cls(exchange=exchange)
        if symbols is None:
            return smap
        if isinstance(symbols, Mapping):
            items = symbols.items()
        elif isinstance(symbols, str):
            raise TypeError("symbols must be a SymbolMap, a mapping or a list, not a str")
        else:
            items = ((s.replace("/", ""), s) for s in symbols)
        for native, norm in items:
            base, sep, quote = str(norm).partition("/")
            if not sep or not base or not quote:
                raise ValueError(f"symbol {norm!r} is not of the form BASE/QUOTE")
            smap.add(Instrument(native=str(native).upper(), base=base, quote=quote))
        return smap

    def add(self, ins: Instrument) -> None:
        sym = ins.symbol
        other, old = self._symbols.get(sym), self.instruments.get(ins.native)
        err = _rules.collision(self.exchange, ins.native, sym, other, old and old.symbol)
        if err is not None:
            raise err
        self.instruments[ins.native] = ins
        self._symbols[sym] = ins.native
        self._to_norm[ins.native] = sym
        self._to_native[sym] = ins.native

    def __len__(self) -> int:
        return len(self.instruments)

    def __contains__(self, native: object) -> bool:
        return native in self._to_norm

    def normalized(self, native: str) -> str:
        """``BTCUSDT`` -> ``BTC/USDT``; raises :class:`UnknownSymbol` if it cannot tell."""
        try:
            return self._to_norm[native]
        except KeyError:
            pass
        up = native.upper()
        norm = self._to_norm.get(up)
        if norm is None:
            for q in self.quotes:
                if up.endswith(q) and len(up) > len(q):
                    norm = f"{up[: -len(q)]}/{q}"
                    break
            else:
                raise UnknownSymbol(
                    self.exchange or "?",
                    f"unknown symbol {native!r}: not in the instrument map and no known "
                    "quote suffix; build the map with symbols_from_exchange_info()",
                    native,
                )
        self._to_norm[native] = norm
        self._to_native.setdefault(norm, up)
        return norm

    def native(self, symbol: str) -> str:
        """``BTC/USDT`` -> ``BTCUSDT`` (the instrument map's name when known)."""
        n = self._to_native.get(symbol)
        if n is None:
            if "/" in symbol:
                n = symbol.replace("/", "").upper()
            else:  # already native
                n = symbol.upper()
        return n


class Stream(msgspec.Struct, frozen=True):
    """One market-data subscription in normalized terms.

    ``channel`` is ``"book"``, ``"trades"``, ``"kline"``, or a venue's optional
    ``"book_ticker"`` (best bid/offer) or ``"agg_trades"`` (aggregate trades, instead of
    ``"trades"``); ``depth`` applies to books (the venue's level count; 0 = the venue's
    diff stream), ``interval`` to klines (``1m``...).
    """

    channel: str
    symbol: str
    depth: int = 0
    interval: str = "1m"


class NormalizerBase(ABC):
    """Raw exchange frames -> ttxt-mp events, for one venue.

    ``normalize(frame, local_ts)`` returns the events a frame carries (often one, ``[]`` for
    control frames, several for kline batches). Anything that does not match a documented
    message raises :class:`MalformedFrame` naming the venue, the cause and an excerpt.
    ``local_ts`` is the receive time in ns (taken now if None).
    """

    exchange: ClassVar[str]
    CONTROL_KEEP: ClassVar[int] = 256

    def __init__(self, symbols: Any = None) -> None:
        self.symbols = SymbolMap.coerce(symbols, self.exchange)
        self.controls: deque[Control] = deque(maxlen=self.CONTROL_KEEP)
        self.unsupported = 0

    @abstractmethod
    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        """Events carried by one WebSocket frame (bytes or str)."""

    @abstractmethod
    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Event:
        """The order book snapshot in a REST depth body (``symbol`` native or BASE/QUOTE)."""

    def symbol(self, native: str) -> str:
        return self.symbols.normalized(native)

    def _symbol_arg(self, symbol: str) -> str:
        return symbol if "/" in symbol else self.symbols.normalized(symbol)

    def _control(self, ctl: Control) -> list[Event]:
        self.controls.append(ctl)
        if ctl.kind == "unsupported":
            self.unsupported += 1
        return []

    def _malformed(self, reason: str, frame: Any) -> MalformedFrame:
        return MalformedFrame(self.exchange, reason, frame)

    @staticmethod
    def now() -> int:
        return time.time_ns()


class DenormalizerBase(ABC):
    """Normalized requests -> the venue's wire format (pure, no network).

    Market data: :meth:`subscribe` / :meth:`unsubscribe` build the venue's subscription
    frames for a list of :class:`Stream`. Order entry (CreateOrder/CancelOrder/AmendOrder)
    is added to the same class by the trading connectors.
    """

    exchange: ClassVar[str]

    def __init__(self, symbols: Any = None) -> None:
        self.symbols = SymbolMap.coerce(symbols, self.exchange)

    def native(self, symbol: str) -> str:
        return self.symbols.native(symbol)

    @abstractmethod
    def topic(self, stream: Stream) -> str:
        """The venue's name for one stream (e.g. ``btcusdt@depth@100ms``)."""

    @abstractmethod
    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        """Subscription frames (split as the venue's per-request limits require)."""

    @abstractmethod
    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        """Unsubscription frames."""
