"""The toy exchange's wire format, and its translation to and from ttxt-mp events.

Symbols are ``BASE-QUOTE`` on the wire (``BTC-USDT``), ``BASE/QUOTE`` in ttxt-mp. Prices
and quantities are decimal strings; times are integer milliseconds since the epoch.

REST ``GET {rest}/api/instruments``::

    {"instruments": [{"name": "BTC-USDT", "base": "BTC", "quote": "USDT", "tick": "0.5"}]}

WebSocket ``{ws}/ws``, client to server (one JSON object per text frame)::

    {"op": "subscribe", "id": 7, "channels": ["book:BTC-USDT", "trades:BTC-USDT",
                                              "ticker:BTC-USDT"]}
    {"op": "unsubscribe", "id": 8, "channels": ["trades:BTC-USDT"]}
    {"op": "ping"}

server to client::

    {"op": "subscribed", "id": 7, "channels": [...]}     the subscription is active
    {"op": "unsubscribed", "id": 8, "channels": [...]}   those channels are off
    {"op": "error", "id": 7, "msg": "unknown channel 'x'"}  refused (nothing subscribed)
    {"op": "pong"}                                          reply to a ping

    {"ch": "book", "sym": "BTC-USDT", "type": "snapshot", "seq": 1000, "ts": 1700000000000,
     "bids": [["99.5", "1.25"], ...], "asks": [["100.5", "2"], ...]}
    {"ch": "book", "sym": "BTC-USDT", "type": "delta", "seq": 1001, "ts": ...,
     "bids": [["99.5", "0"]], "asks": []}
    {"ch": "trades", "sym": "BTC-USDT", "ts": ...,
     "trades": [{"id": "BTC-USDT-1", "px": "100.5", "qty": "0.1", "side": "buy", "ts": ...}]}
    {"ch": "ticker", "sym": "BTC-USDT", "ts": ..., "seq": 1001, "last": "100.5",
     "bid": "99.5", "ask": "100.5", "vol": "12.5"}

Book rules: subscribing to ``book:SYM`` (again, at any time) sends a ``snapshot`` of the
whole book (at most 50 levels a side) that replaces the local one; each later ``delta``
has ``seq`` = previous ``seq`` + 1 and sets the quantity of each listed level, ``"0"``
removing it. A ``seq`` that skips one means a delta was lost: resubscribe for a fresh
snapshot. ``ticker.seq`` is the book ``seq`` the ticker was taken at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from ttxt_mp.connectors.normalizer import (
    Control,
    DenormalizerBase,
    Instrument,
    MalformedFrame,
    NormalizerBase,
    Qty,
    Stream,
    SymbolMap,
)
from ttxt_mp.events import Event, MarketTrades, Orderbook, Side, Trade
from ttxt_toyvenue import EXCHANGE

__all__ = ["ToyDenormalizer", "ToyNormalizer", "symbols_from_instruments"]

_Levels = tuple[tuple[Qty, Qty], ...]


class WireTrade(msgspec.Struct):
    id: str
    px: Qty
    qty: Qty
    side: Literal["buy", "sell"]
    ts: int


class Frame(msgspec.Struct):
    """Every server frame: replies carry ``op``, data carry ``ch`` (and ``sym``)."""

    op: str = ""
    id: int = 0
    msg: str = ""
    ch: str = ""
    sym: str = ""
    type: str = ""
    seq: int = 0
    ts: int = 0
    bids: _Levels = ()
    asks: _Levels = ()
    trades: tuple[WireTrade, ...] = ()
    last: Qty = 0.0
    bid: Qty = 0.0
    ask: Qty = 0.0
    vol: Qty = 0.0


class WireInstrument(msgspec.Struct):
    name: str
    base: str
    quote: str
    tick: Qty = 0.0


class Instruments(msgspec.Struct):
    instruments: tuple[WireInstrument, ...]


_frame = msgspec.json.Decoder(Frame, strict=False)  # strict=False: "100.5" -> 100.5
_instruments = msgspec.json.Decoder(Instruments, strict=False)
_encode = msgspec.json.Encoder().encode
_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
MS = 1_000_000


def symbols_from_instruments(body: Any) -> SymbolMap:
    """``GET /api/instruments`` body -> SymbolMap (``BTC-USDT`` <-> ``BTC/USDT``)."""
    try:
        reply = _instruments.decode(body)
    except msgspec.DecodeError as err:
        raise MalformedFrame(EXCHANGE, f"instruments: {err}", body) from None
    smap = SymbolMap(exchange=EXCHANGE)
    for i in reply.instruments:
        smap.add(Instrument(native=i.name, base=i.base, quote=i.quote, tick_size=i.tick))
    return smap


class ToyNormalizer(NormalizerBase):
    """Toy frames -> Orderbook, MarketTrades and :class:`~ttxt_toyvenue.events.ToyTicker`;
    replies -> :class:`Control`."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None) -> None:
        super().__init__(symbols)
        from ttxt_toyvenue.events import ToyTicker  # the kind, registered on first use

        self._ticker = ToyTicker

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        try:
            f = _frame.decode(raw_frame)
        except msgspec.DecodeError as err:
            raise self._malformed(str(err), raw_frame) from None
        now = self.now() if local_ts is None else local_ts
        if f.op:
            if f.op == "pong":
                return self._control(Control(EXCHANGE, "pong"))
            if f.op in ("subscribed", "unsubscribed"):
                return self._control(Control(EXCHANGE, "ack", id=str(f.id)))
            if f.op == "error":
                return self._control(Control(EXCHANGE, "error", ok=False, id=str(f.id),
                                             message=f.msg))  # fmt: skip
            return self._control(Control(EXCHANGE, "unsupported", message=f"op {f.op!r}"))
        if not f.sym:
            raise self._malformed("a data frame without 'sym'", raw_frame)
        symbol = self.symbol(f.sym)
        if f.ch == "book":
            if f.type not in ("snapshot", "delta"):
                raise self._malformed(f"book type {f.type!r}", raw_frame)
            return [Orderbook(exchange=EXCHANGE, symbol=symbol, exch_ts=f.ts * MS,
                              local_ts=now, is_snapshot=f.type == "snapshot", bids=f.bids,
                              asks=f.asks, first_update_id=f.seq, last_update_id=f.seq)]  # fmt: skip
        if f.ch == "trades":
            trades = tuple(Trade(t.id, t.px, t.qty, _SIDE[t.side], t.ts * MS) for t in f.trades)
            return [MarketTrades(exchange=EXCHANGE, symbol=symbol, exch_ts=f.ts * MS,
                                 local_ts=now, trades=trades)]  # fmt: skip
        if f.ch == "ticker":
            return [self._ticker(exchange=EXCHANGE, symbol=symbol, exch_ts=f.ts * MS,
                                 local_ts=now, last=f.last, bid=f.bid, ask=f.ask,
                                 volume=f.vol, seq=f.seq)]  # fmt: skip
        return self._control(Control(EXCHANGE, "unsupported", message=f"channel {f.ch!r}"))

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Event:
        """A book snapshot frame (the toy exchange has no REST book: it is in-band)."""
        (ev,) = self.normalize(body, local_ts)
        if not isinstance(ev, Orderbook) or not ev.is_snapshot:
            raise self._malformed("not a book snapshot", body)
        return ev


class ToyDenormalizer(DenormalizerBase):
    """Streams -> ``book:SYM`` / ``trades:SYM`` / ``ticker:SYM`` subscriptions."""

    exchange = EXCHANGE
    CHANNELS = {"book": "book", "trades": "trades"}

    def topic(self, stream: Stream) -> str:
        try:
            return f"{self.CHANNELS[stream.channel]}:{self.native(stream.symbol)}"
        except KeyError:
            raise ValueError(f"the toy venue has no {stream.channel!r} stream") from None

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        streams = list(streams)
        channels = [self.topic(s) for s in streams]
        # The ticker comes with every symbol that has any stream.
        for sym in dict.fromkeys(s.symbol for s in streams):
            channels.append(f"ticker:{self.native(sym)}")
        return [_encode({"op": "subscribe", "id": int(req_id), "channels": channels})]

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return [_encode({"op": "unsubscribe", "id": int(req_id),
                         "channels": [self.topic(s) for s in streams]})]  # fmt: skip

    def resubscribe_book(self, symbol: str, req_id: int) -> list[bytes]:
        """Subscribing to a book again makes the exchange send a fresh snapshot."""
        return [_encode({"op": "subscribe", "id": req_id,
                         "channels": [f"book:{self.native(symbol)}"]})]  # fmt: skip
