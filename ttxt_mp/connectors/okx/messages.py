"""The documented OKX v5 public WebSocket and REST messages as msgspec structs
(www.okx.com/docs-v5/en: "WebSocket" overview, "Order book channel", "Trades channel",
"Candlesticks channel", "Mark price channel", "Funding rate channel", "Index tickers
channel", "Open interest channel", "Liquidation orders channel", "Get order book").

Every push is ``{"arg": {"channel": ..., "instId": ...}, ["action": ...,] "data": [...]}``;
replies are ``{"event": "subscribe"|"unsubscribe"|"error"|"notice", ...}``; the keep-alive
answer is the bare text ``pong``. Numbers arrive as strings (``"8476.98"``) and are decoded
with ``strict=False`` straight to floats/ints, except book levels kept as text for the
checksum (:class:`BookText`).
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

import msgspec
from msgspec import Raw, Struct

from ttxt_mp.connectors.normalizer import Qty

__all__ = [
    "Arg", "BookData", "BookNum", "BookText", "BooksFrame", "CandleRow", "Envelope", "FundingData", "IndexData",
    "LiqData", "LiqDetail", "MarkData", "OiData", "RestBooks", "TradeData",
]  # fmt: skip

_Rate = Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
_Ms = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
_TextLevel = tuple[str, str, str, str]  # price, size, "0" (deprecated), order count
_Level = tuple[Qty, Qty, str, str]


class Arg(Struct):
    channel: str
    instId: str = ""
    instType: str = ""


class Envelope(Struct):
    """Any frame: a push (``arg`` + ``data``) or a reply (``event``)."""

    arg: Arg | None = None
    action: str = ""
    data: Raw = Raw(b"null")
    event: str = ""
    code: str = ""
    msg: str = ""
    id: str = ""
    connId: str = ""


L = TypeVar("L")


class BookData(Struct, Generic[L]):
    """Book data: levels as text (``BookText``, for the checksum) or as numbers
    (``BookNum``: ``books`` with the checksum off, ``books5``, ``bbo-tbt``)."""

    asks: list[L]
    bids: list[L]
    ts: _Ms
    checksum: int = 0
    prevSeqId: int = -1
    seqId: int = -1


BookText = BookData[_TextLevel]
BookNum = BookData[_Level]


class BooksFrame(Struct, Generic[L]):
    """One-pass decode of the hottest frame, ``books``; anything unusual falls back to
    :class:`Envelope` and its precise errors."""

    arg: Arg
    action: str
    data: list[BookData[L]]


class TradeData(Struct):
    instId: str
    tradeId: str
    px: Qty
    sz: Qty
    side: Literal["buy", "sell"]
    ts: _Ms


CandleRow = tuple[_Ms, Qty, Qty, Qty, Qty, Qty, Qty, Qty, Literal["0", "1"]]
"""ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm."""


class MarkData(Struct):
    instId: str
    markPx: Qty
    ts: _Ms


class FundingData(Struct):
    instId: str
    fundingRate: _Rate
    fundingTime: _Ms  # the coming settlement
    ts: _Ms = 0


class IndexData(Struct):
    instId: str
    idxPx: Qty
    ts: _Ms


class OiData(Struct):
    instId: str
    oi: Qty  # contracts
    oiCcy: Qty  # base currency
    ts: _Ms
    oiUsd: Qty = 0.0


class LiqDetail(Struct):
    side: Literal["buy", "sell"]  # the liquidation order's side
    sz: Qty  # contracts
    bkPx: Qty
    ts: _Ms
    posSide: str = ""


class LiqData(Struct):
    instId: str
    details: list[LiqDetail]
    instType: str = ""


class RestBook(Struct):
    asks: list[_Level]
    bids: list[_Level]
    ts: _Ms
    seqId: int = 0


class RestBooks(Struct):
    code: str
    msg: str = ""
    data: list[RestBook] = []
