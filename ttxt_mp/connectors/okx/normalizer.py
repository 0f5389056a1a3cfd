"""OKX v5 public market data -> ttxt-mp events (and subscriptions back).

Messages: :mod:`ttxt_mp.connectors.okx.messages`. Channels:

- ``books`` (400 levels): ``action`` snapshot/update with ``seqId``/``prevSeqId`` and
  ``checksum`` -> Orderbook (``last_update_id`` = seqId, ``prev_update_id`` = prevSeqId).
  With ``keep_text``, a message whose checksum is not 0 is also decoded as text and its
  :class:`BookText` left in :attr:`OkxNormalizer.texts` for the book sync's checksum (a 0,
  all OKX sends from June 2026, costs nothing more than the numbers).
- ``books5`` (5 levels) and ``bbo-tbt`` (1 level): snapshots -> Orderbook; ``bbo-tbt`` also
  gives a BookTicker with ``book_ticker``.
- ``trades`` -> MarketTrades; ``candle<bar>`` (the business endpoint) -> Kline.
- Swaps: ``mark-price`` + ``funding-rate`` + ``index-tickers`` -> MarkPrice
  (:mod:`~ttxt_mp.connectors.okx.derivatives`), ``open-interest`` -> OpenInterest (``oi``
  contracts, value ``oiUsd``), ``liquidation-orders`` (per instType) -> Liquidation for the
  symbols asked for (``side`` is the liquidation order's own side, ``bkPx``, ``sz``).

Quantities are what OKX sends: base currency on spot, contracts on swaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import msgspec

from ttxt_mp.connectors.normalizer import (
    Control,
    DenormalizerBase,
    NormalizerBase,
    Stream,
    SymbolMap,
)
from ttxt_mp.connectors.okx import messages as m
from ttxt_mp.connectors.okx.derivatives import MarkState
from ttxt_mp.connectors.okx.instruments import okx_instruments
from ttxt_mp.events import (
    BookTicker,
    Event,
    Kline,
    Liquidation,
    MarketTrades,
    OpenInterest,
    Orderbook,
    Side,
    Trade,
)

__all__ = ["BookText", "OkxDenormalizer", "OkxNormalizer", "symbols_from_instruments"]

EXCHANGE = "okx"
BookText = m.BookText
_INF = float("inf")
_MIN = 60_000

# normalized interval -> OKX bar (UTC-aligned bars from 6h up: "candle6Hutc", ...)
BARS = {
    "1s": "1s", "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H",
    "2h": "2H", "4h": "4H", "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "2d": "2Dutc",
    "3d": "3Dutc", "1w": "1Wutc", "1M": "1Mutc", "3M": "3Mutc",
}  # fmt: skip
CHANNEL_INTERVALS = {f"candle{bar}": iv for iv, bar in BARS.items()}
_SPAN_MS = {"1s": 1000, "1m": _MIN, "3m": 3 * _MIN, "5m": 5 * _MIN, "15m": 15 * _MIN,
            "30m": 30 * _MIN, "1h": 60 * _MIN, "2h": 120 * _MIN, "4h": 240 * _MIN,
            "6h": 360 * _MIN, "12h": 720 * _MIN, "1d": 1440 * _MIN, "2d": 2880 * _MIN,
            "3d": 4320 * _MIN, "1w": 7 * 1440 * _MIN}  # fmt: skip
BOOK_CHANNELS = {400: "books", 5: "books5", 1: "bbo-tbt"}
BUSINESS = "business"
PUBLIC = "public"

_env = msgspec.json.Decoder(m.Envelope)
_book_text = msgspec.json.Decoder(list[m.BookText], strict=False)
_books_num_frame = msgspec.json.Decoder(m.BooksFrame[m._Level], strict=False)
_books_text_frame = msgspec.json.Decoder(m.BooksFrame[m._TextLevel], strict=False)
_BOOKS_HEAD = (b'{"arg":{"channel":"books",', '{"arg":{"channel":"books",')
_book_num = msgspec.json.Decoder(list[m.BookNum], strict=False)
_trades = msgspec.json.Decoder(list[m.TradeData], strict=False)
_candles = msgspec.json.Decoder(list[m.CandleRow], strict=False)
_marks = msgspec.json.Decoder(list[m.MarkData], strict=False)
_funding = msgspec.json.Decoder(list[m.FundingData], strict=False)
_index = msgspec.json.Decoder(list[m.IndexData], strict=False)
_oi = msgspec.json.Decoder(list[m.OiData], strict=False)
_liqs = msgspec.json.Decoder(list[m.LiqData], strict=False)
_rest_books = msgspec.json.Decoder(m.RestBooks, strict=False)
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_PONG = (b"pong", "pong")


def _num(text: str) -> float:
    x = float(text)
    if not 0.0 <= x < _INF:  # NaN compares False
        raise ValueError(f"not a finite non-negative number: {text[:32]!r}")
    return x


def _numbers(levels: list[tuple[str, str, str, str]]) -> tuple[tuple[float, float], ...]:
    try:
        return tuple([(_num(lv[0]), _num(lv[1])) for lv in levels])
    except ValueError as e:
        raise ValueError(f"book level: {e}") from None


def _close_ms(interval: str, start: int) -> int:
    """The candle's last millisecond (months by the calendar)."""
    span = _SPAN_MS.get(interval)
    if span is not None:
        return start + span - 1
    d = dt.datetime.fromtimestamp(start / 1000, dt.UTC)
    months = d.month - 1 + (3 if interval == "3M" else 1)
    nxt = dt.datetime(d.year + months // 12, months % 12 + 1, 1, tzinfo=dt.UTC)
    return int(nxt.timestamp() * 1000) - 1


class OkxNormalizer(NormalizerBase):
    """OKX frames -> events. ``book_depth``: the depth whose channel is the book (None: every
    book channel is); ``book_ticker``: ``bbo-tbt`` also gives BookTickers; ``keep_text``:
    ``books`` levels decoded as text for the checksum (:attr:`texts`); ``mark_price`` /
    ``open_interest``: the swap channels are normalized; ``liquidation_symbols``: the native
    symbols whose liquidations are kept (the channel is per instType)."""

    exchange = EXCHANGE

    def __init__(self, symbols: Any = None, *, book_depth: int | None = None,
                 book_ticker: bool = False, keep_text: bool = True, mark_price: bool = True,
                 open_interest: bool = True,
                 liquidation_symbols: Iterable[str] | None = None) -> None:  # fmt: skip
        super().__init__(symbols)
        self.book_channel = BOOK_CHANNELS.get(book_depth) if book_depth else None
        self.any_book = book_depth is None
        self.book_ticker = book_ticker
        self.keep_text = keep_text
        self.mark_price = mark_price
        self.open_interest = open_interest
        self.liq_symbols = None if liquidation_symbols is None else set(liquidation_symbols)
        self.marks = MarkState(EXCHANGE)
        self._sums = False  # the last books message carried a checksum
        self.texts: dict[str, m.BookText] = {}
        """symbol -> text of its last ``books`` message with a checksum (``keep_text``)."""
        self.index_of: dict[str, list[str]] = {}  # index instId -> swap symbols
        for native in self.symbols.instruments:
            if native.endswith("-SWAP"):
                self.index_of.setdefault(native[:-5], []).append(self.symbols.normalized(native))

    def normalize(self, raw_frame: Any, local_ts: int | None = None) -> list[Event]:
        if local_ts is None:
            local_ts = self.now()
        if raw_frame in _PONG:
            return self._control(Control(EXCHANGE, "pong"))
        if raw_frame[:26] in _BOOKS_HEAD and (self.any_book or self.book_channel == "books"):
            out = self._books_fast(raw_frame, local_ts)
            if out is not None:
                return out
        try:
            env = _env.decode(raw_frame)
        except msgspec.DecodeError as err:
            raise self._malformed(str(err), raw_frame) from None
        arg = env.arg
        if arg is None or env.event:
            return self._reply(env, raw_frame)
        ch = arg.channel
        try:
            return self._push(ch, arg, env, local_ts)
        except (msgspec.DecodeError, ValueError) as err:
            raise self._malformed(f"{ch} data: {err}", raw_frame) from None

    def _push(self, ch: str, arg: m.Arg, env: m.Envelope, local_ts: int) -> list[Event]:
        if ch in ("books", "books5", "bbo-tbt"):
            return self._books(ch, arg.instId, env, local_ts)
        if ch == "trades":
            return [self._trades(arg.instId, env, local_ts)]
        if ch in CHANNEL_INTERVALS:
            return self._klines(arg.instId, CHANNEL_INTERVALS[ch], env, local_ts)
        if ch == "mark-price" and self.mark_price:
            return [e for d in _marks.decode(env.data) for e in self.marks.update(
                self.symbols.normalized(d.instId), d.ts * 1_000_000, local_ts, mark=d.markPx)]
        if ch == "funding-rate" and self.mark_price:
            return [e for d in _funding.decode(env.data) for e in self.marks.update(
                self.symbols.normalized(d.instId), d.ts * 1_000_000, local_ts,
                rate=d.fundingRate, next_ts=d.fundingTime * 1_000_000)]
        if ch == "index-tickers" and self.mark_price:
            return [e for d in _index.decode(env.data) for s in self.index_of.get(d.instId, ())
                    for e in self.marks.update(s, d.ts * 1_000_000, local_ts, index=d.idxPx)]
        if ch == "open-interest" and self.open_interest:
            return [OpenInterest(exchange=EXCHANGE, symbol=self.symbols.normalized(d.instId),
                                 exch_ts=d.ts * 1_000_000, local_ts=local_ts,
                                 open_interest=d.oi, open_interest_value=d.oiUsd)
                    for d in _oi.decode(env.data)]  # fmt: skip
        if ch == "liquidation-orders":
            return self._liquidations(env, local_ts)
        return self._control(Control(EXCHANGE, "unsupported", True, "", ch))

    def _books_fast(self, raw: Any, local_ts: int) -> list[Event] | None:
        """``books`` in one decode: as text while checksums come (``keep_text``), else to
        numbers (a first checksum decodes that message again as text); None: let the
        envelope path decode (and name) it."""
        text = self.keep_text and self._sums
        try:
            fr = (_books_text_frame if text else _books_num_frame).decode(raw)
        except msgspec.DecodeError:
            return None
        snapshot = fr.action == "snapshot"
        if not snapshot and fr.action != "update":
            return None
        symbol = self.symbols.normalized(fr.arg.instId)
        out: list[Event] = []
        for d in fr.data:
            if text:
                try:
                    bids, asks = _numbers(d.bids), _numbers(d.asks)
                except ValueError:
                    return None
            else:
                bids = tuple([(lv[0], lv[1]) for lv in d.bids])
                asks = tuple([(lv[0], lv[1]) for lv in d.asks])
            out.append(self._book(symbol, d, bids, asks, snapshot, local_ts))
            if d.checksum and self.keep_text:
                self.texts[symbol] = d if text else _books_text_frame.decode(raw).data[-1]
            self._sums = bool(d.checksum)
        return out

    def _books(self, ch: str, inst: str, env: m.Envelope, local_ts: int) -> list[Event]:
        book = self.any_book or ch == self.book_channel
        ticker = self.book_ticker and ch == "bbo-tbt"
        if not (book or ticker):
            return self._control(Control(EXCHANGE, "unsupported", True, "", ch))
        symbol = self.symbols.normalized(inst)
        out: list[Event] = []
        if ch == "books":
            snapshot = env.action == "snapshot"
            if not snapshot and env.action != "update":
                raise ValueError(f"action must be snapshot or update, got {env.action!r}")
            if self.keep_text:
                for d in _book_text.decode(env.data):
                    if d.checksum:
                        self.texts[symbol] = d
                    out.append(self._book(symbol, d, _numbers(d.bids), _numbers(d.asks),
                                          snapshot, local_ts))  # fmt: skip
                return out
        else:
            snapshot = True
        for n in _book_num.decode(env.data):
            bids = tuple([(lv[0], lv[1]) for lv in n.bids])
            asks = tuple([(lv[0], lv[1]) for lv in n.asks])
            if book:
                out.append(self._book(symbol, n, bids, asks, snapshot, local_ts))
            if ticker:
                b = bids[0] if bids else (0.0, 0.0)
                a = asks[0] if asks else (0.0, 0.0)
                out.append(BookTicker(exchange=EXCHANGE, symbol=symbol, exch_ts=n.ts * 1_000_000,
                                      local_ts=local_ts, bid=b[0], bid_qty=b[1], ask=a[0],
                                      ask_qty=a[1], update_id=n.seqId))  # fmt: skip
        return out

    @staticmethod
    def _book(symbol: str, d: m.BookData, bids: tuple, asks: tuple,
              snapshot: bool, local_ts: int) -> Orderbook:  # fmt: skip
        return Orderbook(exchange=EXCHANGE, symbol=symbol, exch_ts=d.ts * 1_000_000,
                         local_ts=local_ts, is_snapshot=snapshot, bids=bids, asks=asks,
                         first_update_id=d.seqId, last_update_id=d.seqId,
                         prev_update_id=d.prevSeqId)  # fmt: skip

    def _trades(self, inst: str, env: m.Envelope, local_ts: int) -> MarketTrades:
        rows = _trades.decode(env.data)
        trades = tuple([Trade(t.tradeId, t.px, t.sz, _SIDES[t.side], t.ts * 1_000_000)
                        for t in rows])  # fmt: skip
        return MarketTrades(exchange=EXCHANGE, symbol=self.symbols.normalized(inst),
                            exch_ts=rows[-1].ts * 1_000_000 if rows else 0, local_ts=local_ts,
                            trades=trades)  # fmt: skip

    def _klines(self, inst: str, interval: str, env: m.Envelope, local_ts: int) -> list[Event]:
        symbol = self.symbols.normalized(inst)
        return [Kline(exchange=EXCHANGE, symbol=symbol, exch_ts=r[0] * 1_000_000,
                      local_ts=local_ts, interval=interval, open_ts=r[0] * 1_000_000,
                      close_ts=_close_ms(interval, r[0]) * 1_000_000, open=r[1], high=r[2],
                      low=r[3], close=r[4], volume=r[5], quote_volume=r[7],
                      closed=r[8] == "1")
                for r in _candles.decode(env.data)]  # fmt: skip

    def _liquidations(self, env: m.Envelope, local_ts: int) -> list[Event]:
        keep = self.liq_symbols
        return [Liquidation(exchange=EXCHANGE, symbol=self.symbols.normalized(d.instId),
                            exch_ts=x.ts * 1_000_000, local_ts=local_ts, side=_SIDES[x.side],
                            price=x.bkPx, qty=x.sz)
                for d in _liqs.decode(env.data) if keep is None or d.instId in keep
                for x in d.details]  # fmt: skip

    def _reply(self, env: m.Envelope, raw: Any) -> list[Event]:
        ev = env.event
        what = f"{env.arg.channel} {env.arg.instId or env.arg.instType}" if env.arg else ""
        if ev in ("subscribe", "unsubscribe"):
            return self._control(Control(EXCHANGE, "ack", True, env.id, f"{ev} {what}".strip()))
        if ev == "error":
            return self._control(Control(EXCHANGE, "error", False, env.id,
                                         f"code {env.code}: {env.msg}"))  # fmt: skip
        if ev == "notice":  # e.g. 64008: the connection closes soon for a service upgrade
            return self._control(Control(EXCHANGE, "notice", True, env.id,
                                         f"code {env.code}: {env.msg}"))  # fmt: skip
        if ev:
            return self._control(Control(EXCHANGE, "unsupported", True, env.id, ev))
        raise self._malformed("neither 'arg' nor 'event': not a documented OKX frame", raw)

    def normalize_snapshot(self, body: Any, symbol: str, local_ts: int | None = None) -> Orderbook:
        """``GET /api/v5/market/books`` body -> snapshot Orderbook (``seqId``, 0 if absent)."""
        if local_ts is None:
            local_ts = self.now()
        try:
            reply = _rest_books.decode(body)
        except msgspec.DecodeError as err:
            raise self._malformed(f"books reply: {err}", body) from None
        if reply.code != "0" or not reply.data:
            raise self._malformed(f"books reply code {reply.code}: {reply.msg}", body)
        b = reply.data[0]
        return Orderbook(exchange=EXCHANGE, symbol=self._symbol_arg(symbol),
                         exch_ts=b.ts * 1_000_000, local_ts=local_ts, is_snapshot=True,
                         bids=tuple([(lv[0], lv[1]) for lv in b.bids]),
                         asks=tuple([(lv[0], lv[1]) for lv in b.asks]),
                         first_update_id=b.seqId, last_update_id=b.seqId)  # fmt: skip


def symbols_from_instruments(body: Any) -> SymbolMap:
    """``GET /api/v5/public/instruments`` body -> SymbolMap."""
    return SymbolMap.parse(okx_instruments, body, EXCHANGE)


class OkxDenormalizer(DenormalizerBase):
    """Streams -> OKX ``{"op": "subscribe", "args": [{"channel", "instId"}]}`` frames.

    "WebSocket" overview: the args of one request may total at most 64 KB; a request ``id``
    is at most 32 alphanumerics. Candles live on the business endpoint
    (:meth:`endpoint`); everything else here on the public one."""

    exchange = EXCHANGE
    MAX_REQUEST_BYTES = 64 * 1024

    def __init__(self, symbols: Any = None, *, book_depth: int = 400) -> None:
        super().__init__(symbols)
        self.book_depth = book_depth

    def topic(self, stream: Stream) -> str:
        return ";".join(f"{a.get('channel')}:{a.get('instId') or a.get('instType')}"
                        for a in self.args(stream))  # fmt: skip

    def args(self, stream: Stream) -> list[dict[str, str]]:
        """The subscription args of one stream (mark price: three channels)."""
        inst = self.native(stream.symbol)
        ch = stream.channel
        if ch == "book":
            depth = stream.depth or self.book_depth
            if depth not in BOOK_CHANNELS:
                raise ValueError(f"okx: no book of {depth} levels; one of {sorted(BOOK_CHANNELS)}")
            return [{"channel": BOOK_CHANNELS[depth], "instId": inst}]
        if ch == "book_ticker":
            return [{"channel": "bbo-tbt", "instId": inst}]
        if ch == "trades":
            return [{"channel": "trades", "instId": inst}]
        if ch == "kline":
            bar = BARS.get(stream.interval)
            if bar is None:
                raise ValueError(f"okx: no kline interval {stream.interval!r}; one of {list(BARS)}")
            return [{"channel": f"candle{bar}", "instId": inst}]
        if ch == "mark_price":
            index = inst[:-5] if inst.endswith("-SWAP") else inst
            return [{"channel": "mark-price", "instId": inst},
                    {"channel": "funding-rate", "instId": inst},
                    {"channel": "index-tickers", "instId": index}]  # fmt: skip
        if ch == "open_interest":
            return [{"channel": "open-interest", "instId": inst}]
        if ch == "liquidations":
            return [{"channel": "liquidation-orders", "instType": "SWAP"}]
        raise ValueError(f"okx: unknown channel {ch!r}")

    @staticmethod
    def endpoint(stream: Stream) -> str:
        """``business`` for candles, else ``public``."""
        return BUSINESS if stream.channel == "kline" else PUBLIC

    def _frames(self, op: str, streams: Iterable[Stream], req_id: int | str) -> list[bytes]:
        args: list[dict[str, str]] = []
        for s in streams:
            for a in self.args(s):
                if a not in args:  # one liquidation channel serves every symbol
                    args.append(a)
        frames: list[bytes] = []
        chunk: list[dict[str, str]] = []
        size = 0
        for a in args:
            cost = len(msgspec.json.encode(a)) + 1
            if chunk and size + cost > self.MAX_REQUEST_BYTES - 64:
                frames.append(self._frame(op, chunk, f"{req_id}n{len(frames)}"))
                chunk, size = [], 0
            chunk.append(a)
            size += cost
        if chunk:
            frames.append(self._frame(op, chunk, str(req_id) if not frames
                                      else f"{req_id}n{len(frames)}"))  # fmt: skip
        return frames

    @staticmethod
    def _frame(op: str, args: list[dict[str, str]], req_id: str) -> bytes:
        return msgspec.json.encode({"id": req_id, "op": op, "args": args})

    def subscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("subscribe", streams, req_id)

    def unsubscribe(self, streams: Iterable[Stream], req_id: int | str = 1) -> list[bytes]:
        return self._frames("unsubscribe", streams, req_id)
