"""Kraken Spot WebSocket v2 public market data -> ttxt-mp events (and subscriptions back).

Messages as documented at docs.kraken.com (Spot WebSocket v2: "Book", "Ticker", "Trade",
"Candles (OHLC)", "Heartbeat", "Status", "Ping", "Subscribe"/"Unsubscribe"): data frames are
``{"channel": ..., "type": "snapshot"|"update", "data": [...]}``; replies to requests are
``{"method": ..., "success": ..., "result"|"error": ..., "req_id": ...}``. Prices and
quantities are JSON numbers with full precision; times are RFC 3339 strings.

Symbols are the v2 names (``BTC/USD``), which are also ttxt-mp's: the instrument map keeps
them as native names.

``book``: one book per message (``data[0]``), snapshot or update, each with the CRC32
``checksum`` of the top 10 levels after applying it; the normalizer keeps the last
checksum per symbol in :attr:`KrakenNormalizer.checksums` for the connector's book sync
(an :class:`~ttxt_mp.events.Orderbook` carries no checksum). Kraken has no update ids:
``first_update_id``/``last_update_id`` stay 0.

``ticker`` (subscribed with ``event_trigger: "bbo"``, so it moves with the best bid/offer)
gives :class:`BookTicker`; ``trade`` gives :class:`MarketTrades`; ``ohlc`` gives
:class:`Kline` (``interval`` in minutes; ``interval_begin`` opens the candle, the candle is
the running one: Kraken does not flag a closed candle).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from ttxt_mp.connectors.kraken.timestamps import rfc3339_ns
from ttxt_mp.connectors.normalizer import (
    Control,
    DenormalizerBase,
    MalformedFrame,
    NormalizerBase,
    Qty,
    Stream,
    UnknownSymbol,
)
from ttxt_mp.events import BookTicker, Event, Kline, MarketTrades, Orderbook, Side, Trade

__all__ = ["INTERVALS", "KrakenDenormalizer", "KrakenNormalizer"]

EXCHANGE = "kraken"

# "Candles (OHLC)": interval in minutes -> the normalized names.
INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d",
             10080: "1w", 21600: "15d"}  # fmt: skip
INTERVALS_BACK = {v: k for k, v in INTERVALS.items()}


class PriceLevel(Struct):
    price: Qty
    qty: Qty


class BookData(Struct):
    symbol: str
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    checksum: int
    timestamp: str = ""  # updates only


class BookFrame(Struct):
    """One-pass decode of the hottest frame; anything unusual goes the envelope way."""

    channel: Literal["book"]
    type: str
    data: list[BookData]


class TickerData(Struct):
    symbol: str
    bid: Qty
    bid_qty: Qty
    ask: Qty
    ask_qty: Qty
    last: float = 0.0
    volume: float = 0.0
    vwap: float = 0.0
    low: float = 0.0
    high: float = 0.0
    change: float = 0.0
    change_pct: float = 0.0
    timestamp: str = ""


class TradeData(Struct):
    symbol: str
    side: Literal["buy", "sell"]
    price: Qty
    qty: Qty
    ord_type: str
    trade_id: int
    timestamp: str


class OhlcData(Struct):
    symbol: str
    open: Qty
    high: Qty
    low: Qty
    close: Qty
    trades: int
    volume: Qty
    vwap: Qty
    interval_begin: str
    interval: int
    timestamp: str = ""


class Envelope(Struct):
    """Every frame: data messages carry ``channel``; replies carry ``method``."""

    channel: str = ""
    type: str = ""
    data: Raw = Raw(b"null")
    method: str = ""
    success: bool | UnsetType = UNSET
    error: str = ""
    symbol: str = ""
    req_id: int | None = None


class StatusData(Struct):
    system: str
    api_version: str = ""
    connection_id: int = 0
    version: str = ""


_env_dec = msgspec.json.Decoder(Envelope)
_bookframe_dec = msgspec.json.Decoder(BookFrame)
_book_dec = msgspec.json.Decoder(list[BookData])
_ticker_dec = msgspec.json.Decoder(list[TickerData])
_trades_dec = msgspec.json.Decoder(list[TradeData])
_ohlc_dec = msgspec.json.Decoder(list[OhlcData])
_status_dec = msgspec.json.Decoder(list[StatusData])

_BOOK_HEADS = (b'{"channel":"book"', '{"channel":"book"')
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TYPES = frozenset({"snapshot", "update"})


class KrakenNormalizer(NormalizerBase):
    """Kraken v2 frames -> events; see the module docstring."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None) -> None:
        super().__init__(symbols)
        self.checksums: dict[str, int] = {}
        """The ``checksum`` of the last book message per symbol (for the book sync)."""
        self.system = ""
        """The last ``status`` channel ``system`` value (``online``, ``maintenance``, ...)."""
        self.heartbeats = 0

    def symbol(self, native: str) -> str:
        """A v2 symbol of the instrument list (no quote-suffix guessing: ``BTC/USD`` is
        already a normalized name, anything else is unknown)."""
        if native in self.symbols:
            return self.symbols.normalized(native)
        raise UnknownSymbol(EXCHANGE, f"unknown symbol {native!r}: not in the instrument list",
                            native)  # fmt: skip

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        if local_ts is None:
            local_ts = self.now()
        if raw_frame[:17] in _BOOK_HEADS:
            try:
                fr = _bookframe_dec.decode(raw_frame)
            except msgspec.DecodeError:
                pass  # the envelope path names the error
            else:
                return self._books(fr.type, fr.data, local_ts, raw_frame)
        try:
            env = _env_dec.decode(raw_frame)
        except msgspec.DecodeError as err:
            raise self._malformed(str(err), raw_frame) from None
        ch = env.channel
        if not ch:
            return self._reply(env, raw_frame)
        if ch == "heartbeat":
            self.heartbeats += 1
            return []
        try:
            if ch == "book":
                return self._books(env.type, _book_dec.decode(env.data), local_ts, raw_frame)
            if ch == "trade":
                return self._trades(_trades_dec.decode(env.data), local_ts)
            if ch == "ticker":
                return self._tickers(_ticker_dec.decode(env.data), local_ts)
            if ch == "ohlc":
                return self._klines(_ohlc_dec.decode(env.data), local_ts)
            if ch == "status":
                for st in _status_dec.decode(env.data):
                    self.system = st.system
                return []
        except MalformedFrame:
            raise
        except (msgspec.DecodeError, ValueError) as err:
            raise self._malformed(f"{ch} data: {err}", raw_frame) from None
        return self._control(Control(EXCHANGE, "unsupported", True, "", ch))

    def _books(self, typ: str, data: list[BookData], local_ts: int, raw: Any) -> list[Event]:
        if typ not in _TYPES:
            raise self._malformed(f"book type must be snapshot or update, got {typ!r}", raw)
        out: list[Event] = []
        snap = typ == "snapshot"
        for d in data:
            symbol = self.symbol(d.symbol)
            try:
                ts = rfc3339_ns(d.timestamp) if d.timestamp else 0
            except ValueError as err:
                raise self._malformed(f"book data: {err}", raw) from None
            self.checksums[symbol] = d.checksum
            out.append(Orderbook(
                exchange=EXCHANGE, symbol=symbol, exch_ts=ts, local_ts=local_ts,
                is_snapshot=snap, bids=tuple([(x.price, x.qty) for x in d.bids]),
                asks=tuple([(x.price, x.qty) for x in d.asks]),
            ))  # fmt: skip
        return out

    def _trades(self, data: list[TradeData], local_ts: int) -> list[Event]:
        by_symbol: dict[str, list[Trade]] = {}
        last: dict[str, int] = {}
        for t in data:
            ts = rfc3339_ns(t.timestamp)
            by_symbol.setdefault(t.symbol, []).append(
                Trade(str(t.trade_id), t.price, t.qty, _SIDES[t.side], ts))
            last[t.symbol] = ts
        return [MarketTrades(exchange=EXCHANGE, symbol=self.symbol(s),
                             exch_ts=last[s], local_ts=local_ts, trades=tuple(trades))
                for s, trades in by_symbol.items()]  # fmt: skip

    def _tickers(self, data: list[TickerData], local_ts: int) -> list[Event]:
        return [BookTicker(exchange=EXCHANGE, symbol=self.symbol(t.symbol),
                           exch_ts=rfc3339_ns(t.timestamp) if t.timestamp else 0,
                           local_ts=local_ts, bid=t.bid, bid_qty=t.bid_qty, ask=t.ask,
                           ask_qty=t.ask_qty)
                for t in data]  # fmt: skip

    def _klines(self, data: list[OhlcData], local_ts: int) -> list[Event]:
        out: list[Event] = []
        for k in data:
            iv = INTERVALS.get(k.interval)
            if iv is None:
                raise ValueError(f"unknown ohlc interval {k.interval}")
            begin = rfc3339_ns(k.interval_begin)
            out.append(Kline(
                exchange=EXCHANGE, symbol=self.symbol(k.symbol),
                exch_ts=rfc3339_ns(k.timestamp) if k.timestamp else 0, local_ts=local_ts,
                interval=iv, open_ts=begin, close_ts=begin + k.interval * 60_000_000_000 - 1,
                open=k.open, high=k.high, low=k.low, close=k.close, volume=k.volume,
                quote_volume=k.volume * k.vwap, trades=k.trades, closed=False,
            ))  # fmt: skip
        return out

    def _reply(self, env: Envelope, raw: Any) -> list[Event]:
        method = env.method
        if not method:
            raise self._malformed("neither 'channel' nor 'method': not a documented Kraken "
                                  "v2 frame", raw)  # fmt: skip
        rid = "" if env.req_id is None else str(env.req_id)
        if method == "pong":
            return self._control(Control(EXCHANGE, "pong", True, rid, ""))
        ok = env.success is not False and not env.error
        what = f"{method} {env.symbol}: {env.error}" if env.symbol else f"{method}: {env.error}"
        return self._control(Control(EXCHANGE, "ack" if ok else "error", ok, rid,
                                     method if ok else what))  # fmt: skip

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Orderbook:
        """Books come in-band (the ``book`` channel's snapshot); no REST book is used."""
        raise NotImplementedError("kraken books are synced from the WebSocket snapshot")


class KrakenDenormalizer(DenormalizerBase):
    """Streams -> v2 ``subscribe`` / ``unsubscribe`` requests, one per channel and its
    parameters (book depth, ohlc interval) listing every symbol: ``book`` with
    ``snapshot: true``, ``ticker`` with ``event_trigger: "bbo"``, ``trade`` and ``ohlc``
    without a snapshot."""

    exchange = EXCHANGE

    def topic(self, stream: Stream) -> str:
        return f"{self._key(stream)}:{self.native(stream.symbol)}"

    def _key(self, stream: Stream) -> str:
        ch = stream.channel
        if ch == "book":
            return f"book/{stream.depth}"
        if ch == "book_ticker":
            return "ticker"
        if ch == "trades":
            return "trade"
        if ch == "kline":
            try:
                return f"ohlc/{INTERVALS_BACK[stream.interval]}"
            except KeyError:
                raise ValueError(f"kraken: no kline interval {stream.interval!r}; one of "
                                 f"{list(INTERVALS_BACK)}") from None  # fmt: skip
        raise ValueError(f"kraken: unknown channel {ch!r}")

    def native(self, symbol: str) -> str:
        """v2 names are ttxt-mp's (``BTC/USD``): the symbol as it is."""
        return symbol

    def _frames(self, method: str, streams: Iterable[Stream], req_id: int | str) -> list[bytes]:
        groups: dict[str, list[str]] = {}
        for s in streams:
            syms = groups.setdefault(self._key(s), [])
            native = self.native(s.symbol)
            if native not in syms:
                syms.append(native)
        rid = int(req_id)  # v2 req_id is an integer
        out = []
        for key, syms in groups.items():
            channel, _, arg = key.partition("/")
            params: dict[str, Any] = {"channel": channel, "symbol": syms}
            if channel == "book":
                params["depth"] = int(arg)
            elif channel == "ohlc":
                params["interval"] = int(arg)
            if method == "subscribe":
                if channel == "ticker":
                    params["event_trigger"] = "bbo"
                params["snapshot"] = channel in ("book", "ticker")
            out.append(msgspec.json.encode({"method": method, "params": params, "req_id": rid}))
        return out

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("subscribe", streams, req_id)

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("unsubscribe", streams, req_id)
