"""Coinbase Advanced Trade public market data -> ttxt-mp events (and subscriptions back).

Messages as documented at docs.cdp.coinbase.com ("Advanced Trade WebSocket Overview",
"Advanced Trade WebSocket Channels"): every message is ``{"channel", "client_id",
"timestamp", "sequence_num", "events": [...]}``; ``level2`` data arrives on channel
``l2_data`` (events ``snapshot`` / ``update`` of one ``product_id`` with ``updates``:
``side`` ``bid``/``offer``, ``price_level``, ``new_quantity``: the level's new size, "0"
removes it), ``market_trades`` (``trades``: ``trade_id``, ``price``, ``size``, ``side``,
``time``), ``candles`` (5-minute ``candles``: ``start`` in UNIX seconds, OHLC, ``volume``),
``ticker`` (``tickers`` with ``best_bid``, ``best_bid_quantity``, ``best_ask``,
``best_ask_quantity``), ``heartbeats`` and ``subscriptions``; a refused request is
``{"type": "error", "message": ...}``.

Trades: the ``side`` of a public trade is the MAKER's (the resting order's) side, as on
Coinbase's other feeds ("the side field indicates the maker order side"); our
``Trade.side`` is the taker's, so ``BUY`` becomes SELL and ``SELL`` becomes BUY.

Every message's ``sequence_num`` goes through :class:`ConnectionSequence` first; the
connector reads its ``gaps`` (see :mod:`ttxt_mp.connectors.coinbase.sequence`). A book
event's update id is its message's ``sequence_num``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import Raw, Struct

from ttxt_mp.connectors.coinbase.sequence import ConnectionSequence
from ttxt_mp.connectors.coinbase.times import rfc3339_ns
from ttxt_mp.connectors.normalizer import (
    Control,
    DenormalizerBase,
    MalformedFrame,
    NormalizerBase,
    Qty,
    Stream,
)
from ttxt_mp.events import BookTicker, Event, Kline, MarketTrades, Orderbook, Side, Trade

__all__ = ["CHANNELS", "CoinbaseDenormalizer", "CoinbaseNormalizer"]

EXCHANGE = "coinbase"
CANDLE_NS = 300 * 1_000_000_000  # candles are 5 minutes
CHANNELS = {"book": "level2", "trades": "market_trades", "kline": "candles",
            "book_ticker": "ticker"}  # fmt: skip
"""Our stream channel -> the Advanced Trade channel subscribed."""
HEARTBEATS = "heartbeats"

_Levels = tuple[tuple[float, float], ...]


class Envelope(Struct):
    """Every frame: data messages carry ``channel``; a refused request ``type: error``."""

    channel: str = ""
    timestamp: str = ""
    sequence_num: int = -1
    events: Raw = Raw(b"[]")
    client_id: str = ""
    type: str = ""
    message: str = ""


class L2Update(Struct):
    side: Literal["bid", "offer"]
    price_level: Qty
    new_quantity: Qty
    event_time: str = ""


class L2Event(Struct):
    type: Literal["snapshot", "update"]
    product_id: str
    updates: list[L2Update]


class L2Frame(Struct):
    """One-pass decode of the hottest frame (``l2_data``)."""

    channel: str
    timestamp: str
    sequence_num: int
    events: list[L2Event]
    client_id: str = ""


class MarketTrade(Struct):
    trade_id: str
    product_id: str
    price: Qty
    size: Qty
    side: Literal["BUY", "SELL"]  # the maker's side
    time: str


class TradesEvent(Struct):
    type: str
    trades: list[MarketTrade]


class Candle(Struct):
    start: int  # UNIX seconds (a string on the wire)
    high: Qty
    low: Qty
    open: Qty
    close: Qty
    volume: Qty
    product_id: str


class CandlesEvent(Struct):
    type: str
    candles: list[Candle]


class Ticker(Struct):
    product_id: str
    best_bid: Qty = 0.0
    best_bid_quantity: Qty = 0.0
    best_ask: Qty = 0.0
    best_ask_quantity: Qty = 0.0
    type: str = "ticker"
    price: str = ""


class TickerEvent(Struct):
    type: str
    tickers: list[Ticker]


class TradesFrame(Struct):
    channel: str
    timestamp: str
    sequence_num: int
    events: list[TradesEvent]
    client_id: str = ""


class CandlesFrame(Struct):
    channel: str
    timestamp: str
    sequence_num: int
    events: list[CandlesEvent]
    client_id: str = ""


class TickerFrame(Struct):
    channel: str
    timestamp: str
    sequence_num: int
    events: list[TickerEvent]
    client_id: str = ""


class HeartbeatEvent(Struct):
    current_time: str = ""
    heartbeat_counter: int = 0


class SubscriptionsEvent(Struct):
    subscriptions: dict[str, list[str]]


class BookLevel(Struct):
    price: Qty
    size: Qty


class PriceBook(Struct):
    product_id: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    time: str = ""


class ProductBook(Struct):
    pricebook: PriceBook


_env_dec = msgspec.json.Decoder(Envelope)
_l2frame_dec = msgspec.json.Decoder(L2Frame, strict=False)
_l2_dec = msgspec.json.Decoder(list[L2Event], strict=False)
_trades_dec = msgspec.json.Decoder(list[TradesEvent], strict=False)
_candles_dec = msgspec.json.Decoder(list[CandlesEvent], strict=False)
_ticker_dec = msgspec.json.Decoder(list[TickerEvent], strict=False)
_hb_dec = msgspec.json.Decoder(list[HeartbeatEvent], strict=False)  # counter: "3049" or 3049
_subs_dec = msgspec.json.Decoder(list[SubscriptionsEvent])
_book_dec = msgspec.json.Decoder(ProductBook, strict=False)

_HEAD = b'{"channel":"'
_TAKER = {"BUY": Side.SELL, "SELL": Side.BUY}  # maker side -> taker side


class CoinbaseNormalizer(NormalizerBase):
    """Coinbase frames -> events; ``sequence`` checks each message's ``sequence_num``."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None) -> None:
        super().__init__(symbols)
        self.sequence = ConnectionSequence()
        self.heartbeats = 0
        self.heartbeat_counter = -1

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        if local_ts is None:
            local_ts = self.now()
        if type(raw_frame) is bytes and raw_frame.startswith(_HEAD):
            fast = _FAST.get(raw_frame[12:raw_frame.find(b'"', 12)])
            if fast is not None:  # one-pass decode of a data frame
                try:
                    fr = fast[0].decode(raw_frame)
                except msgspec.DecodeError:
                    pass  # the envelope path names the error
                else:
                    if not self.sequence.see(fr.sequence_num):
                        return []
                    return self._data(fast[1], fr.events, fr.timestamp, fr.sequence_num,
                                      local_ts, raw_frame)  # fmt: skip
        try:
            env = _env_dec.decode(raw_frame)
        except msgspec.DecodeError as err:
            raise self._malformed(str(err), raw_frame) from None
        ch = env.channel
        if not ch:
            if env.type == "error":
                return self._control(Control(EXCHANGE, "error", False, "", env.message))
            raise self._malformed("neither 'channel' nor an error 'type': not a documented "
                                  "Advanced Trade message", raw_frame)  # fmt: skip
        if env.sequence_num >= 0 and not self.sequence.see(env.sequence_num):
            return []
        try:
            data = _DATA.get(ch)
            if data is not None:
                events = data[0].decode(env.events)
                return self._data(data[1], events, env.timestamp, env.sequence_num, local_ts,
                                  raw_frame)  # fmt: skip
            if ch == HEARTBEATS:
                return self._heartbeat(env)
            if ch == "subscriptions":
                subs = _subs_dec.decode(env.events)
                text = "; ".join(f"{k}: {','.join(v)}" for e in subs
                                 for k, v in e.subscriptions.items())  # fmt: skip
                return self._control(Control(EXCHANGE, "ack", True, "", text))
        except msgspec.DecodeError as err:
            raise self._malformed(f"{ch} events: {err}", raw_frame) from None
        return self._control(Control(EXCHANGE, "unsupported", True, "", ch))

    def _data(self, handler: Any, events: list[Any], timestamp: str, seq: int, local_ts: int,
              raw: Any) -> list[Event]:  # fmt: skip
        try:
            return handler(self, events, rfc3339_ns(timestamp), seq, local_ts)
        except MalformedFrame:
            raise
        except ValueError as err:  # a bad time, or a product the map cannot split
            raise self._malformed(str(err), raw) from None

    def _books(self, events: list[L2Event], ts: int, seq: int, local_ts: int) -> list[Event]:
        out: list[Event] = []
        for e in events:
            bids: list[tuple[float, float]] = []
            asks: list[tuple[float, float]] = []
            for u in e.updates:
                (bids if u.side == "bid" else asks).append((u.price_level, u.new_quantity))
            out.append(Orderbook(
                exchange=EXCHANGE, symbol=self.symbols.normalized(e.product_id), exch_ts=ts,
                local_ts=local_ts, is_snapshot=e.type == "snapshot", bids=tuple(bids),
                asks=tuple(asks), first_update_id=seq, last_update_id=seq,
            ))  # fmt: skip
        return out

    def _trades(self, events: list[TradesEvent], ts: int, seq: int, local_ts: int) -> list[Event]:
        by_symbol: dict[str, list[Trade]] = {}
        for e in events:
            for t in e.trades:
                trade = Trade(t.trade_id, t.price, t.size, _TAKER[t.side], rfc3339_ns(t.time))
                by_symbol.setdefault(t.product_id, []).append(trade)
        return [MarketTrades(exchange=EXCHANGE, symbol=self.symbols.normalized(pid), exch_ts=ts,
                             local_ts=local_ts, trades=tuple(trades))
                for pid, trades in by_symbol.items()]  # fmt: skip

    def _candles(self, events: list[CandlesEvent], ts: int, seq: int, local_ts: int) -> list[Event]:
        out: list[Event] = []
        for e in events:
            for c in e.candles:
                start = c.start * 1_000_000_000
                out.append(Kline(
                    exchange=EXCHANGE, symbol=self.symbols.normalized(c.product_id), exch_ts=ts,
                    local_ts=local_ts, interval="5m", open_ts=start,
                    close_ts=start + CANDLE_NS - 1_000_000, open=c.open, high=c.high, low=c.low,
                    close=c.close, volume=c.volume,
                ))  # fmt: skip
        return out

    def _tickers(self, events: list[TickerEvent], ts: int, seq: int, local_ts: int) -> list[Event]:
        return [BookTicker(exchange=EXCHANGE, symbol=self.symbols.normalized(t.product_id),
                           exch_ts=ts, local_ts=local_ts, bid=t.best_bid,
                           bid_qty=t.best_bid_quantity, ask=t.best_ask,
                           ask_qty=t.best_ask_quantity)
                for e in events for t in e.tickers]  # fmt: skip

    def _heartbeat(self, env: Envelope) -> list[Event]:
        """Liveness only (the socket's idle timer sees the frame); the counter is kept."""
        for e in _hb_dec.decode(env.events):
            self.heartbeats += 1
            self.heartbeat_counter = e.heartbeat_counter
        return []

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Orderbook:
        """``GET /api/v3/brokerage/market/product_book`` body -> snapshot Orderbook (no
        update id: the REST book is not tied to a connection's sequence_num)."""
        if local_ts is None:
            local_ts = self.now()
        try:
            pb = _book_dec.decode(body).pricebook
            ts = rfc3339_ns(pb.time) if pb.time else 0
        except (msgspec.DecodeError, ValueError) as err:
            raise self._malformed(f"product_book: {err}", body) from None
        return Orderbook(
            exchange=EXCHANGE, symbol=self._symbol_arg(symbol), exch_ts=ts, local_ts=local_ts,
            is_snapshot=True, bids=tuple((b.price, b.size) for b in pb.bids),
            asks=tuple((a.price, a.size) for a in pb.asks),
        )  # fmt: skip


_DATA: dict[str, tuple[msgspec.json.Decoder, Any]] = {
    "l2_data": (_l2_dec, CoinbaseNormalizer._books),
    "market_trades": (_trades_dec, CoinbaseNormalizer._trades),
    "candles": (_candles_dec, CoinbaseNormalizer._candles),
    "ticker": (_ticker_dec, CoinbaseNormalizer._tickers),
}
"""Data channel -> (decoder of its ``events``, handler)."""
_FAST: dict[bytes, tuple[msgspec.json.Decoder, Any]] = {
    b"l2_data": (_l2frame_dec, CoinbaseNormalizer._books),
    b"market_trades": (msgspec.json.Decoder(TradesFrame, strict=False), CoinbaseNormalizer._trades),
    b"candles": (msgspec.json.Decoder(CandlesFrame, strict=False), CoinbaseNormalizer._candles),
    b"ticker": (msgspec.json.Decoder(TickerFrame, strict=False), CoinbaseNormalizer._tickers),
}
"""Data channel (as the frame starts) -> (one-pass frame decoder, handler)."""


class CoinbaseDenormalizer(DenormalizerBase):
    """Subscriptions: one channel per message ("you must send a subscribe message ... for
    each channel"), ``product_ids`` as ``BASE-QUOTE``; no ``jwt`` (public channels)."""

    exchange = EXCHANGE

    def topic(self, stream: Stream) -> str:
        """``<channel>:<product_id>``, e.g. ``level2:BTC-USD``."""
        if stream.channel == "kline" and stream.interval != "5m":
            raise ValueError(f"{EXCHANGE}: candles are 5-minute only, not {stream.interval!r}")
        try:
            channel = CHANNELS[stream.channel]
        except KeyError:
            raise ValueError(f"{EXCHANGE}: unknown channel {stream.channel!r}") from None
        return f"{channel}:{self.native(stream.symbol)}"

    def native(self, symbol: str) -> str:
        n = self.symbols._to_native.get(symbol)  # noqa: SLF001 - the instrument map's name
        return n if n is not None else symbol.replace("/", "-").upper()

    def _frames(self, op: str, streams: Iterable[Stream], heartbeats: bool) -> list[bytes]:
        products: dict[str, list[str]] = {}
        for s in streams:
            channel, _, pid = self.topic(s).partition(":")
            if pid not in products.setdefault(channel, []):
                products[channel].append(pid)
        out = [msgspec.json.encode({"type": op, "product_ids": pids, "channel": ch})
               for ch, pids in products.items()]  # fmt: skip
        if heartbeats:
            out.append(msgspec.json.encode({"type": op, "channel": HEARTBEATS}))
        return out

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1,
                  heartbeats: bool = False) -> list[bytes]:  # fmt: skip
        return self._frames("subscribe", streams, heartbeats)

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1,
                    heartbeats: bool = False) -> list[bytes]:  # fmt: skip
        return self._frames("unsubscribe", streams, heartbeats)
