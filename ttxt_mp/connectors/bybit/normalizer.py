"""Bybit v5 public market data -> ttxt-mp events (and subscriptions back).

Messages as documented at bybit-exchange.github.io/docs/v5: WebSocket ``orderbook.{depth}.
{symbol}`` (snapshot/delta with ``u``, ``seq``, ``cts``), ``publicTrade.{symbol}``,
``kline.{interval}.{symbol}``, the connect page's subscribe/pong replies, and REST
``GET /v5/market/orderbook`` and ``GET /v5/market/instruments-info``.

A frame is decoded once into an envelope whose ``data`` stays raw, then ``data`` is decoded
by the struct of its topic. ``u == 1`` is a snapshot after a Bybit service restart (docs:
"please overwrite your local orderbook"), so it is normalized with ``is_snapshot=True``
whatever its ``type`` says.

Linear (perpetuals and dated futures) adds ``tickers.{symbol}`` (merged snapshot/deltas ->
:class:`MarkPrice` / :class:`OpenInterest`, :mod:`ttxt_mp.connectors.bybit.tickers`) and
``allLiquidation.{symbol}`` (-> :class:`Liquidation`; ``S`` is the liquidated POSITION's
side, so ``Buy``, a long, is a SELL liquidation order).

Best bid/offer: ``orderbook.1.{symbol}`` is the level-1 book ("snapshot message only",
re-sent with the same ``u`` after 3 s without change); with ``book_ticker`` every level-1
message is also a :class:`BookTicker` (price and quantity 0 for an empty side).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from ttxt_mp.connectors.bybit.instruments import bybit_instruments
from ttxt_mp.connectors.bybit.tickers import TickerMerger, decode_ticker, decode_ticker_frame
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
    Orderbook,
    Side,
    Trade,
)

__all__ = ["BybitDenormalizer", "BybitNormalizer", "symbols_from_exchange_info"]

EXCHANGE = "bybit"

_Levels = tuple[tuple[Qty, Qty], ...]

# Bybit kline intervals (minutes, D, W, M) -> the normalized names Binance also uses.
INTERVALS = {
    "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h",
    "240": "4h", "360": "6h", "720": "12h", "D": "1d", "W": "1w", "M": "1M",
}  # fmt: skip
INTERVALS_BACK = {v: k for k, v in INTERVALS.items()}


class Envelope(Struct):
    """Every public frame: data messages carry ``topic``; replies carry ``op``."""

    topic: str = ""
    type: str = ""
    ts: int = 0
    data: Raw = Raw(b"null")
    cts: int = 0
    op: str = ""
    success: bool | UnsetType = UNSET
    ret_msg: str = ""
    req_id: str = ""


class BookData(Struct):
    s: str
    b: _Levels
    a: _Levels
    u: int
    seq: int = -1


class TradeData(Struct):
    T: int
    s: str
    S: Literal["Buy", "Sell"]
    v: Qty
    p: Qty
    i: str
    BT: bool = False


class KlineData(Struct):
    start: int
    end: int
    interval: str
    open: Qty
    close: Qty
    high: Qty
    low: Qty
    volume: Qty
    turnover: Qty
    confirm: bool
    timestamp: int = 0


class LiquidationData(Struct):
    T: int
    s: str
    S: Literal["Buy", "Sell"]  # the liquidated position's side
    v: Qty
    p: Qty  # bankruptcy price


class BookFrame(Struct):
    """One-pass decode of the hottest frame (orderbook), tried when the frame starts with
    its topic; anything unusual falls back to the envelope path and its precise errors."""

    topic: str
    type: str
    ts: int
    data: BookData
    cts: int = 0


class RestReply(Struct):
    retCode: int
    retMsg: str = ""
    result: Raw = Raw(b"null")


class RestBook(Struct):
    s: str
    b: _Levels
    a: _Levels
    ts: int
    u: int
    seq: int = -1


_env_dec = msgspec.json.Decoder(Envelope)
_bookframe_dec = msgspec.json.Decoder(BookFrame, strict=False)
_book_dec = msgspec.json.Decoder(BookData, strict=False)
_trades_dec = msgspec.json.Decoder(list[TradeData], strict=False)
_klines_dec = msgspec.json.Decoder(list[KlineData], strict=False)
_liqs_dec = msgspec.json.Decoder(list[LiquidationData], strict=False)
_rest_dec = msgspec.json.Decoder(RestReply)
_rest_book_dec = msgspec.json.Decoder(RestBook, strict=False)

_BOOK, _TRADE, _KLINE, _TICKER, _BOOK_TICKER = 1, 2, 3, 4, 5  # _BOOK_TICKER: book and ticker
_STATS, _LIQ = 6, 7  # tickers.{symbol} (linear), allLiquidation.{symbol}
_TICKER_HEADS = (b'{"topic":"tickers.', '{"topic":"tickers.')  # one-pass ticker frames
_BOOKS = frozenset({_BOOK, _TICKER, _BOOK_TICKER})
_NO_LEVEL = (0.0, 0.0)
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_LIQ_SIDES = {"Buy": Side.SELL, "Sell": Side.BUY}  # position side -> liquidation order side


class BybitNormalizer(NormalizerBase):
    """Bybit frames -> events. ``book_depth``: the depth whose ``orderbook.{depth}`` topic
    is the book (None: every orderbook topic is); ``book_ticker``: level-1 messages
    (``orderbook.1``) also give a BookTicker; ``mark_price`` / ``open_interest``: linear
    ``tickers`` messages give MarkPrice / OpenInterest (neither: the topic is unsupported)."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None, *, book_depth: int | None = None,
                 book_ticker: bool = False, mark_price: bool = False,
                 open_interest: bool = False) -> None:  # fmt: skip
        super().__init__(symbols)
        self.book_depth = book_depth
        self.book_ticker = book_ticker
        self.stats = mark_price or open_interest
        self.tickers = TickerMerger(EXCHANGE, mark_price=mark_price, open_interest=open_interest)
        self._topics: dict[str, tuple[int, str, str]] = {}

    def _topic(self, topic: str, raw: Any) -> tuple[int, str, str] | None:
        """topic -> (kind, normalized symbol, interval); None if not a normalized stream."""
        kind, _, rest = topic.partition(".")
        if kind == "orderbook":
            depth, _, native = rest.partition(".")
            if not depth.isdigit():
                raise self._malformed(f"bad orderbook depth {depth!r} in topic {topic!r}", raw)
            book = self.book_depth is None or int(depth) == self.book_depth
            ticker = self.book_ticker and depth == "1"
            if not (book or ticker):
                return None  # a depth this normalizer was not asked for
            what = _BOOK_TICKER if book and ticker else _BOOK if book else _TICKER
            parsed = (what, self.symbols.normalized(native), "")
        elif kind == "publicTrade":
            parsed = (_TRADE, self.symbols.normalized(rest), "")
        elif kind == "kline":
            iv, _, native = rest.partition(".")
            if iv not in INTERVALS:
                raise self._malformed(f"unknown kline interval {iv!r} in topic {topic!r}", raw)
            parsed = (_KLINE, self.symbols.normalized(native), INTERVALS[iv])
        elif kind == "tickers" and self.stats:
            parsed = (_STATS, self.symbols.normalized(rest), "")
        elif kind == "allLiquidation":
            parsed = (_LIQ, self.symbols.normalized(rest), "")
        else:
            return None
        self._topics[topic] = parsed
        return parsed

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        if local_ts is None:
            local_ts = self.now()
        head = raw_frame[:20]
        if head == b'{"topic":"orderbook.' or head == '{"topic":"orderbook.':
            try:
                fr = _bookframe_dec.decode(raw_frame)
            except msgspec.DecodeError:
                pass
            else:
                parsed = self._topics.get(fr.topic) or self._topic(fr.topic, raw_frame)
                if parsed is not None:
                    if parsed[0] == _BOOK:  # the hottest frame: no extra call
                        return [self._book(fr.type, fr.ts, fr.data, parsed[1], local_ts,
                                           raw_frame)]  # fmt: skip
                    if parsed[0] in _BOOKS:
                        return self._books(parsed, fr.type, fr.ts, fr.data, local_ts, raw_frame)
        elif self.stats and head[:18] in _TICKER_HEADS:
            try:
                tf = decode_ticker_frame(raw_frame)
            except msgspec.DecodeError:
                pass  # the envelope path names the error
            else:
                parsed = self._topics.get(tf.topic) or self._topic(tf.topic, raw_frame)
                if parsed is not None and parsed[0] == _STATS:
                    try:
                        return self._merge(tf.type, tf.data, parsed[1], tf.ts, local_ts)
                    except ValueError as err:
                        raise self._malformed(f"{tf.topic} data: {err}", raw_frame) from None
        try:
            env = _env_dec.decode(raw_frame)
        except msgspec.DecodeError as err:
            raise self._malformed(str(err), raw_frame) from None
        topic = env.topic
        if not topic:
            return self._reply(env, raw_frame)
        parsed = self._topics.get(topic) or self._topic(topic, raw_frame)
        if parsed is None:
            return self._control(Control(EXCHANGE, "unsupported", True, "", topic))
        kind, symbol, interval = parsed
        try:
            if kind in _BOOKS:
                d = _book_dec.decode(env.data)
                return self._books(parsed, env.type, env.ts, d, local_ts, raw_frame)
            if kind == _TRADE:
                return [self._trades(env, symbol, local_ts)]
            if kind == _STATS:
                return self._stats(env, symbol, local_ts)
            if kind == _LIQ:
                return self._liquidations(env, symbol, local_ts)
            return self._klines(env, symbol, interval, local_ts)
        except (msgspec.DecodeError, ValueError) as err:
            raise self._malformed(f"{topic} data: {err}", raw_frame) from None

    def _books(self, parsed: tuple[int, str, str], typ: str, ts: int, d: BookData,
               local_ts: int, raw: Any) -> list[Event]:  # fmt: skip
        """An orderbook message -> its Orderbook and/or (level 1) its BookTicker."""
        kind, symbol, _ = parsed
        book = self._book(typ, ts, d, symbol, local_ts, raw)
        if kind == _BOOK:
            return [book]
        bid = d.b[0] if d.b else _NO_LEVEL
        ask = d.a[0] if d.a else _NO_LEVEL
        ticker = BookTicker(exchange=EXCHANGE, symbol=symbol, exch_ts=book.exch_ts,
                            local_ts=local_ts, bid=bid[0], bid_qty=bid[1], ask=ask[0],
                            ask_qty=ask[1], update_id=d.u)  # fmt: skip
        return [book, ticker] if kind == _BOOK_TICKER else [ticker]

    def _book(
        self, typ: str, ts: int, d: BookData, symbol: str, local_ts: int, raw: Any
    ) -> Orderbook:
        if typ != "snapshot" and typ != "delta":
            raise self._malformed(f"orderbook type must be snapshot or delta, got {typ!r}", raw)
        return Orderbook(
            exchange=EXCHANGE,
            symbol=symbol,
            exch_ts=ts * 1_000_000,
            local_ts=local_ts,
            is_snapshot=typ == "snapshot" or d.u == 1,
            bids=d.b,
            asks=d.a,
            first_update_id=d.u,
            last_update_id=d.u,
            seq=d.seq,
        )

    def _trades(self, env: Envelope, symbol: str, local_ts: int) -> MarketTrades:
        trades = tuple(
            [
                Trade(t.i, t.p, t.v, _SIDES[t.S], t.T * 1_000_000)
                for t in _trades_dec.decode(env.data)
            ]
        )
        return MarketTrades(
            exchange=EXCHANGE,
            symbol=symbol,
            exch_ts=env.ts * 1_000_000,
            local_ts=local_ts,
            trades=trades,
        )

    def _stats(self, env: Envelope, symbol: str, local_ts: int) -> list[Event]:
        return self._merge(env.type, decode_ticker(env.data), symbol, env.ts, local_ts)

    def _merge(self, typ: str, d: Any, symbol: str, ts: int, local_ts: int) -> list[Event]:
        """``tickers``: merge into the symbol's state; MarkPrice/OpenInterest if changed."""
        if typ != "snapshot" and typ != "delta":
            raise ValueError(f"ticker type must be snapshot or delta, got {typ!r}")
        return self.tickers.apply(typ == "snapshot", d, symbol, ts * 1_000_000, local_ts)

    def _liquidations(self, env: Envelope, symbol: str, local_ts: int) -> list[Event]:
        return [
            Liquidation(exchange=EXCHANGE, symbol=symbol, exch_ts=x.T * 1_000_000,
                        local_ts=local_ts, side=_LIQ_SIDES[x.S], price=x.p, qty=x.v)
            for x in _liqs_dec.decode(env.data)
        ]  # fmt: skip

    def _klines(self, env: Envelope, symbol: str, interval: str, local_ts: int) -> list[Event]:
        return [
            Kline(
                exchange=EXCHANGE,
                symbol=symbol,
                exch_ts=env.ts * 1_000_000,
                local_ts=local_ts,
                interval=interval,
                open_ts=k.start * 1_000_000,
                close_ts=k.end * 1_000_000,
                open=k.open,
                high=k.high,
                low=k.low,
                close=k.close,
                volume=k.volume,
                quote_volume=k.turnover,
                closed=k.confirm,
            )
            for k in _klines_dec.decode(env.data)
        ]

    def _reply(self, env: Envelope, raw: Any) -> list[Event]:
        op = env.op
        if not op:
            raise self._malformed("neither 'topic' nor 'op': not a documented Bybit frame", raw)
        ok = env.success is not False
        if op in ("ping", "pong"):
            return self._control(Control(EXCHANGE, "pong", ok, env.req_id, env.ret_msg))
        kind = "ack" if ok else "error"
        return self._control(Control(EXCHANGE, kind, ok, env.req_id, f"{op}: {env.ret_msg}"))

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Orderbook:
        """``GET /v5/market/orderbook`` body -> snapshot Orderbook (``u`` as update id)."""
        if local_ts is None:
            local_ts = self.now()
        try:
            reply = _rest_dec.decode(body)
            if reply.retCode != 0:
                raise self._malformed(
                    f"orderbook reply retCode {reply.retCode}: {reply.retMsg}", body
                )
            book = _rest_book_dec.decode(reply.result)
        except msgspec.DecodeError as err:
            raise self._malformed(f"orderbook snapshot: {err}", body) from None
        return Orderbook(
            exchange=EXCHANGE,
            symbol=self._symbol_arg(symbol),
            exch_ts=book.ts * 1_000_000,
            local_ts=local_ts,
            is_snapshot=True,
            bids=book.b,
            asks=book.a,
            first_update_id=book.u,
            last_update_id=book.u,
            seq=book.seq,
        )


def symbols_from_exchange_info(body: Any) -> SymbolMap:
    """``GET /v5/market/instruments-info`` body -> SymbolMap, from the instrument list
    trading uses (:func:`~ttxt_mp.connectors.bybit.instruments.bybit_instruments`)."""
    return SymbolMap.parse(bybit_instruments, body, EXCHANGE)


class BybitDenormalizer(DenormalizerBase):
    """Streams -> Bybit v5 topics and ``{"op":"subscribe"}`` frames; the book ticker is the
    level-1 book ``orderbook.1``, mark price and open interest are both ``tickers``.

    Connect, "Args limits": an ``args`` array is at most 21,000 characters; spot takes up
    to 10 args per request (``max_args``), futures have no count limit (``max_args=None``)."""

    exchange = EXCHANGE
    MAX_ARGS = 10
    MAX_ARGS_CHARS = 21_000

    def __init__(self, symbols: Any = None, *, book_depth: int = 50,
                 max_args: int | None = MAX_ARGS) -> None:  # fmt: skip
        super().__init__(symbols)
        self.book_depth = book_depth
        self.max_args = max_args

    def topic(self, stream: Stream) -> str:
        sym = self.native(stream.symbol)
        if stream.channel == "book":
            return f"orderbook.{stream.depth or self.book_depth}.{sym}"
        if stream.channel == "book_ticker":
            return f"orderbook.1.{sym}"  # the level-1 book
        if stream.channel == "trades":
            return f"publicTrade.{sym}"
        if stream.channel in ("mark_price", "open_interest"):
            return f"tickers.{sym}"  # one topic gives both
        if stream.channel == "liquidations":
            return f"allLiquidation.{sym}"
        if stream.channel == "kline":
            try:
                return f"kline.{INTERVALS_BACK[stream.interval]}.{sym}"
            except KeyError:
                raise ValueError(
                    f"bybit: no kline interval {stream.interval!r}; one of {list(INTERVALS_BACK)}"
                ) from None
        raise ValueError(f"bybit: unknown channel {stream.channel!r}")

    def _frames(self, op: str, streams: Iterable[Stream], req_id: int | str) -> list[bytes]:
        # a book of depth 1 and the book ticker are one topic: subscribed once
        chunks = self._chunks(list(dict.fromkeys(self.topic(s) for s in streams)))
        return [
            msgspec.json.encode(
                {"req_id": f"{req_id}" if len(chunks) == 1 else f"{req_id}-{n}", "op": op,
                 "args": chunk}
            )
            for n, chunk in enumerate(chunks)
        ]  # fmt: skip

    def _chunks(self, args: list[str]) -> list[list[str]]:
        """``args`` cut to the documented limits (count and characters per array)."""
        limit = self.max_args or len(args) or 1
        chunks: list[list[str]] = []
        chars = 0
        for a in args:
            cost = len(a) + 3  # quotes and comma
            if not chunks or len(chunks[-1]) >= limit or chars + cost > self.MAX_ARGS_CHARS:
                chunks.append([])
                chars = 2  # the brackets
            chunks[-1].append(a)
            chars += cost
        return chunks

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("subscribe", streams, req_id)

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("unsubscribe", streams, req_id)
