"""Binance Spot and USDⓈ-M futures market data -> ttxt-mp events (and subscriptions back).

Spot messages as documented in binance-spot-api-docs ``web-socket-streams.md`` (Diff. Depth
Stream ``depthUpdate``, Trade Streams ``trade``, Aggregate Trade Streams ``aggTrade``,
Kline/Candlestick Streams ``kline``, Individual Symbol Book Ticker Streams (no event type:
``{"u","s","b","B","a","A"}``); raw ``/ws/<stream>`` payloads or combined
``{"stream":..,"data":..}`` wrappers) and
``rest-api.md`` (``GET /api/v3/depth``, ``GET /api/v3/exchangeInfo``).

USDⓈ-M futures ("WebSocket Market Streams" of the derivatives docs) share the layout:
diff depth carries ``pu`` and ``T`` (same struct), ``bookTicker`` has an event type and
``E``/``T`` (the Spot struct reads it, ``exch_ts`` from ``E``), and three more events:
``markPriceUpdate`` -> ``MarkPrice``, ``forceOrder`` -> ``Liquidation``; the REST
``GET /fapi/v1/openInterest`` body -> ``OpenInterest`` (:meth:`normalize_open_interest`).

Trade side: Binance sends ``m`` = "is the buyer the market maker?"; ``m=true`` means the
taker sold, so the normalized (taker) side is SELL. An aggregate trade (one taker order at
one price) is one ``Trade`` whose id is the aggregate id ``a``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from ttxt_mp.connectors.binance.instruments import binance_instruments
from ttxt_mp.connectors.normalizer import (
    Control,
    DenormalizerBase,
    NormalizerBase,
    Qty,
    Stream,
    SymbolMap,
)
from ttxt_mp.events import (
    BookTicker,
    Event,
    Kline,
    Liquidation,
    MarketTrades,
    MarkPrice,
    OpenInterest,
    Orderbook,
    Side,
    Trade,
)

__all__ = ["BinanceDenormalizer", "BinanceNormalizer", "symbols_from_exchange_info"]

EXCHANGE = "binance"

_Levels = tuple[tuple[Qty, Qty], ...]


class DepthUpdate(Struct, tag_field="e", tag="depthUpdate"):
    E: int  # event time (ms)
    s: str
    U: int  # first update id in event
    u: int  # final update id in event
    b: _Levels
    a: _Levels
    pu: int = -1  # futures: final update id of the previous event
    T: int = 0  # futures: transaction time


class TradeMsg(Struct, tag_field="e", tag="trade"):
    E: int
    s: str
    t: int
    p: Qty
    q: Qty
    T: int
    m: bool  # is the buyer the market maker?


class AggTradeMsg(Struct, tag_field="e", tag="aggTrade"):
    E: int
    s: str
    a: int  # aggregate trade id
    p: Qty
    q: Qty
    f: int  # first trade id
    l: int  # noqa: E741 - last trade id (the venue's field name)
    T: int
    m: bool


class BookTickerMsg(Struct):
    """Individual Symbol Book Ticker Streams: Spot's has no event type and no time; the
    futures one adds ``"e":"bookTicker"``, ``E`` (event time) and ``T`` (transaction time)."""

    u: int  # order book updateId
    s: str
    b: Qty
    B: Qty
    a: Qty
    A: Qty
    E: int = 0


class FutBookTickerMsg(BookTickerMsg, tag_field="e", tag="bookTicker"):
    """The futures bookTicker as a tagged event (a raw ``/ws/<sym>@bookTicker`` frame)."""


class MarkPriceMsg(Struct, tag_field="e", tag="markPriceUpdate"):
    """Mark Price Stream (USDⓈ-M). ``r`` is "" for delivery contracts (and may be < 0)."""

    E: int
    s: str
    p: Qty  # mark price
    i: Qty = 0.0  # index price
    r: str = ""  # funding rate
    T: int = 0  # next funding time (0 for delivery contracts)


class ForceOrderBody(Struct):
    s: str
    S: Literal["BUY", "SELL"]  # side of the liquidation order
    q: Qty  # original quantity
    p: Qty  # price
    ap: Qty = 0.0  # average price
    z: Qty = 0.0  # filled accumulated quantity
    T: int = 0  # order trade time


class ForceOrderMsg(Struct, tag_field="e", tag="forceOrder"):
    """Liquidation Order Streams (USDⓈ-M): the latest liquidation of a symbol per second."""

    E: int
    o: ForceOrderBody


class OpenInterestMsg(Struct):
    """``GET /fapi/v1/openInterest`` (USDⓈ-M)."""

    openInterest: Qty
    symbol: str
    time: int


class CombinedBookTicker(Struct):
    stream: str
    data: BookTickerMsg


class KlineBody(Struct):
    t: int
    T: int
    s: str
    i: str
    o: Qty
    c: Qty
    h: Qty
    l: Qty  # noqa: E741 - the venue's field name
    v: Qty
    n: int
    x: bool
    q: Qty


class KlineMsg(Struct, tag_field="e", tag="kline"):
    E: int
    s: str
    k: KlineBody


StreamEvent = (DepthUpdate | TradeMsg | AggTradeMsg | KlineMsg | MarkPriceMsg | ForceOrderMsg
               | FutBookTickerMsg)  # fmt: skip
KNOWN_EVENTS = frozenset({"depthUpdate", "trade", "aggTrade", "kline", "markPriceUpdate",
                          "forceOrder", "bookTicker"})  # fmt: skip


class Combined(Struct):
    stream: str
    data: StreamEvent


class ControlMsg(Struct):
    """Replies to SUBSCRIBE & co (``{"result":null,"id":1}``) and errors (``code``/``msg``)."""

    result: Any = UNSET
    id: int | str | None | UnsetType = UNSET
    code: int | UnsetType = UNSET
    msg: str = ""


class _Tag(Struct):
    e: str


class _CombinedTag(Struct):
    stream: str
    data: _Tag


class DepthSnapshot(Struct):
    lastUpdateId: int
    bids: _Levels
    asks: _Levels
    E: int = 0  # futures only
    T: int = 0


_event_dec = msgspec.json.Decoder(StreamEvent, strict=False)
_combined_dec = msgspec.json.Decoder(Combined, strict=False)
_control_dec = msgspec.json.Decoder(ControlMsg)
_tag_dec = msgspec.json.Decoder(_Tag)
_ctag_dec = msgspec.json.Decoder(_CombinedTag)
_snapshot_dec = msgspec.json.Decoder(DepthSnapshot, strict=False)
_ticker_dec = msgspec.json.Decoder(BookTickerMsg, strict=False)
_cticker_dec = msgspec.json.Decoder(CombinedBookTicker, strict=False)
_oi_dec = msgspec.json.Decoder(OpenInterestMsg, strict=False)
_SIDE = {"BUY": Side.BUY, "SELL": Side.SELL}
_TICKER_STREAM = (b'@bookTicker"', '@bookTicker"')  # in a wrapper's stream name (bytes, str)
_QUOTE = frozenset({34, '"'})  # a '"' read from bytes (an int) or from str

_TIME_UNITS = {"ms": 1_000_000, "us": 1_000, "MICROSECOND": 1_000, "MILLISECOND": 1_000_000}


class BinanceNormalizer(NormalizerBase):
    """Binance frames -> events. ``time_unit="us"`` for streams opened with
    ``timeUnit=MICROSECOND`` (default: milliseconds, as the docs say)."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None, *, time_unit: str = "ms") -> None:
        super().__init__(symbols)
        try:
            self._ts = _TIME_UNITS[time_unit]
        except KeyError:
            raise ValueError(f"time_unit must be one of {sorted(_TIME_UNITS)}") from None

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        if local_ts is None:
            local_ts = self.now()
        head = raw_frame[:10]  # a layout hint only: anything else is still tried below
        wrapped = head == b'{"stream":' or head == '{"stream":'
        if wrapped:
            # A bookTicker's last value is a string (its "A"): one index tells it from the
            # events (a searched stream name cost depth frames 15 %). Only a hint.
            if raw_frame[-3] in _QUOTE:
                try:
                    return self._ticker(_cticker_dec.decode(raw_frame).data, local_ts)
                except msgspec.DecodeError as err:
                    if _TICKER_STREAM[type(raw_frame) is str] in raw_frame[10:64]:
                        raise self._malformed(f"bookTicker: {err}", raw_frame) from None
        elif head[:5] == b'{"u":' or head[:5] == '{"u":':
            try:
                return self._ticker(_ticker_dec.decode(raw_frame), local_ts)
            except msgspec.DecodeError as err:
                raise self._malformed(f"bookTicker: {err}", raw_frame) from None
        try:
            msg = (_combined_dec if wrapped else _event_dec).decode(raw_frame)
        except msgspec.DecodeError as err:
            try:
                msg = (_event_dec if wrapped else _combined_dec).decode(raw_frame)
            except msgspec.DecodeError:
                return self._not_an_event(raw_frame, err, local_ts)
        if type(msg) is Combined:
            msg = msg.data
        ts = self._ts
        kind = type(msg)
        if kind is DepthUpdate:
            return [
                Orderbook(
                    exchange=EXCHANGE,
                    symbol=self.symbols.normalized(msg.s),
                    exch_ts=msg.E * ts,
                    local_ts=local_ts,
                    bids=msg.b,
                    asks=msg.a,
                    first_update_id=msg.U,
                    last_update_id=msg.u,
                    prev_update_id=msg.pu,
                )
            ]
        if kind is TradeMsg or kind is AggTradeMsg:
            tid = msg.t if kind is TradeMsg else msg.a
            trade = Trade(str(tid), msg.p, msg.q, Side.SELL if msg.m else Side.BUY, msg.T * ts)
            return [
                MarketTrades(
                    exchange=EXCHANGE,
                    symbol=self.symbols.normalized(msg.s),
                    exch_ts=msg.E * ts,
                    local_ts=local_ts,
                    trades=(trade,),
                )
            ]
        if kind is KlineMsg:
            return self._kline(msg, local_ts)
        if kind is MarkPriceMsg:
            return self._mark_price(msg, local_ts, raw_frame)
        if kind is ForceOrderMsg:
            o = msg.o
            return [
                Liquidation(
                    exchange=EXCHANGE,
                    symbol=self.symbols.normalized(o.s),
                    exch_ts=o.T * ts,  # the liquidation order's trade time
                    local_ts=local_ts,
                    side=_SIDE[o.S],
                    price=o.ap or o.p,  # the average fill price once filled
                    qty=o.z or o.q,
                )
            ]
        return self._ticker(msg, local_ts)  # FutBookTickerMsg

    def _kline(self, msg: KlineMsg, local_ts: int) -> list[Event]:
        ts = self._ts
        k = msg.k
        return [
            Kline(
                exchange=EXCHANGE,
                symbol=self.symbols.normalized(msg.s),
                exch_ts=msg.E * ts,
                local_ts=local_ts,
                interval=k.i,
                open_ts=k.t * ts,
                close_ts=k.T * ts,
                open=k.o,
                high=k.h,
                low=k.l,
                close=k.c,
                volume=k.v,
                quote_volume=k.q,
                trades=k.n,
                closed=k.x,
            )
        ]

    def _mark_price(self, msg: MarkPriceMsg, local_ts: int, raw: Any) -> list[Event]:
        try:
            rate = float(msg.r) if msg.r else 0.0
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate):
            raise self._malformed(f"markPriceUpdate: funding rate {msg.r!r} is not a number", raw)
        ts = self._ts
        return [
            MarkPrice(
                exchange=EXCHANGE,
                symbol=self.symbols.normalized(msg.s),
                exch_ts=msg.E * ts,
                local_ts=local_ts,
                mark_price=msg.p,
                index_price=msg.i,
                funding_rate=rate,
                next_funding_ts=msg.T * ts,
            )
        ]

    def _ticker(self, msg: BookTickerMsg, local_ts: int) -> list[Event]:
        return [
            BookTicker(
                exchange=EXCHANGE,
                symbol=self.symbols.normalized(msg.s),
                exch_ts=msg.E * self._ts,
                local_ts=local_ts,
                bid=msg.b,
                bid_qty=msg.B,
                ask=msg.a,
                ask_qty=msg.A,
                update_id=msg.u,
            )
        ]

    def _not_an_event(self, raw: Any, err: msgspec.DecodeError, local_ts: int) -> list[Event]:
        """Slow path: a control reply, a bookTicker laid out unusually (keys in another
        order), an event type we do not normalize, or garbage."""
        try:
            ctl = _control_dec.decode(raw)
        except msgspec.DecodeError:
            ctl = None
        if ctl is not None:
            if ctl.code is not UNSET:
                ident = "" if ctl.id is UNSET or ctl.id is None else str(ctl.id)
                return self._control(
                    Control(EXCHANGE, "error", False, ident, f"code {ctl.code}: {ctl.msg}")
                )
            if ctl.id is not UNSET:
                ident = "" if ctl.id is None else str(ctl.id)
                result = "" if ctl.result is None or ctl.result is UNSET else repr(ctl.result)
                return self._control(Control(EXCHANGE, "ack", True, ident, result))
        for dec in (_ticker_dec, _cticker_dec):
            try:
                msg = dec.decode(raw)
            except msgspec.DecodeError:
                continue
            return self._ticker(msg if dec is _ticker_dec else msg.data, local_ts)
        for dec in (_ctag_dec, _tag_dec):
            try:
                tag = dec.decode(raw)
            except msgspec.DecodeError:
                continue
            etype = tag.data.e if isinstance(tag, _CombinedTag) else tag.e
            if etype not in KNOWN_EVENTS:
                return self._control(Control(EXCHANGE, "unsupported", True, "", etype))
            if dec is _ctag_dec:  # a wrapper: its decoder's error says where, in $.data
                try:
                    _combined_dec.decode(raw)
                except msgspec.DecodeError as wrapper_err:
                    err = wrapper_err
            break
        raise self._malformed(str(err), raw)

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Orderbook:
        """``GET /api/v3/depth`` (or ``/fapi/v1/depth``) body -> snapshot Orderbook.

        Spot's depth body carries no time (futures' has ``E``): ``exch_ts`` is then the
        local receive time, so a snapshot sorts where it was taken in recordings and
        plots instead of at 1970."""
        if local_ts is None:
            local_ts = self.now()
        try:
            snap = _snapshot_dec.decode(body)
        except msgspec.DecodeError as err:
            raise self._malformed(f"depth snapshot: {self._error_reply(body, err)}",
                                  body) from None  # fmt: skip
        return Orderbook(
            exchange=EXCHANGE,
            symbol=self._symbol_arg(symbol),
            exch_ts=snap.E * self._ts if snap.E else local_ts,
            local_ts=local_ts,
            is_snapshot=True,
            bids=snap.bids,
            asks=snap.asks,
            first_update_id=snap.lastUpdateId,
            last_update_id=snap.lastUpdateId,
        )


    def normalize_open_interest(self, body: Any, local_ts: int | None = None) -> OpenInterest:
        """``GET /fapi/v1/openInterest`` body -> OpenInterest (contracts, in base units;
        the endpoint gives no value: ``open_interest_value`` 0)."""
        if local_ts is None:
            local_ts = self.now()
        try:
            msg = _oi_dec.decode(body)
        except msgspec.DecodeError as err:
            raise self._malformed(f"open interest: {self._error_reply(body, err)}", body) from None
        return OpenInterest(
            exchange=EXCHANGE,
            symbol=self.symbols.normalized(msg.symbol),
            exch_ts=msg.time * self._ts,
            local_ts=local_ts,
            open_interest=msg.openInterest,
        )

    @staticmethod
    def _error_reply(body: Any, err: msgspec.DecodeError) -> str:
        """Why a REST body did not decode: the venue's error reply if it is one."""
        try:
            ctl = _control_dec.decode(body)
        except msgspec.DecodeError:
            return str(err)
        return f"error reply code {ctl.code}: {ctl.msg}" if ctl.code is not UNSET else str(err)


def symbols_from_exchange_info(body: Any) -> SymbolMap:
    """``GET /api/v3/exchangeInfo`` body -> SymbolMap, from the instrument list trading uses
    (:func:`~ttxt_mp.connectors.binance.instruments.binance_instruments`)."""
    return SymbolMap.parse(binance_instruments, body, EXCHANGE)


class BinanceDenormalizer(DenormalizerBase):
    """Streams -> Binance stream names and SUBSCRIBE/UNSUBSCRIBE frames."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None, *, depth_speed: str = "100ms") -> None:
        super().__init__(symbols)
        self.depth_speed = depth_speed

    def topic(self, stream: Stream) -> str:
        sym = self.native(stream.symbol).lower()
        if stream.channel == "book":
            if stream.depth:
                raise ValueError(
                    "binance: only the diff depth stream (depth=0) keeps a full book; "
                    f"got depth={stream.depth}"
                )
            return f"{sym}@depth@{self.depth_speed}" if self.depth_speed else f"{sym}@depth"
        if stream.channel == "trades":
            return f"{sym}@trade"
        if stream.channel == "agg_trades":
            return f"{sym}@aggTrade"
        if stream.channel == "book_ticker":
            return f"{sym}@bookTicker"
        if stream.channel == "kline":
            return f"{sym}@kline_{stream.interval}"
        if stream.channel == "mark_price":
            return f"{sym}@markPrice@1s"  # USDⓈ-M: every second (``@markPrice``: 3 s)
        if stream.channel == "liquidations":
            return f"{sym}@forceOrder"
        if stream.channel == "open_interest":
            raise ValueError("binance: open interest has no stream; it is polled over REST "
                             "(GET /fapi/v1/openInterest)")  # fmt: skip
        raise ValueError(f"binance: unknown channel {stream.channel!r}")

    def _frame(self, method: str, streams: Iterable[Stream], req_id: int | str) -> list[bytes]:
        params = [self.topic(s) for s in streams]
        return [msgspec.json.encode({"method": method, "params": params, "id": req_id})]

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frame("SUBSCRIBE", streams, req_id)

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frame("UNSUBSCRIBE", streams, req_id)
