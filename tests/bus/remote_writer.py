"""A publisher that follows the bus contract (BUS.md, ttxt_mp.bus.format) as the bridge
does: entries of packed events, the meta hash, and the state hash written in one MULTI.

It keeps the truth of what it published (books per symbol, trades), so tests compare what a
remote reader rebuilds with it. Exchange names are neutral (``venue1``): shared test code
names no venue.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from ttxt_mp import codec
from ttxt_mp.bus import format as fmt
from ttxt_mp.events import GapNotice, MarketTrades, Orderbook, Side, Trade

EXCHANGE = "venue1"


class BusWriter:
    """One engine ring's stream (``<connector>-market``) written like the bridge does."""

    def __init__(self, url: str, engine: str, ring: str = "venue1-market",
                 maxlen: int | None = None, numbered: bool = True) -> None:  # fmt: skip
        """``numbered``: entries carry the bridge's optional ``s``/``x`` (ring event number
        of the first event / after the last; a GapNotice's ``lost`` advances it)."""
        self.r = redis.Redis.from_url(url)
        self.numbered = numbered
        self.evno = 0
        self.engine, self.ring, self.maxlen = engine, ring, maxlen
        self.key = fmt.ring_stream_key(engine, ring)
        self.skey = fmt.state_key(engine, ring)
        self.books: dict[str, dict[str, dict[float, float]]] = {}
        self.update_id: dict[str, int] = {}
        self.trades: list[str] = []  # trade ids, in publication order
        self.last_id = b"0-0"
        self._tid = 0

    def meta(self, rings: list[str] | None = None, layout: bytes | None = None) -> None:
        self.r.hset(fmt.meta_key(self.engine), mapping={
            "layout": layout or fmt.layout_tag(), "format": str(fmt.FORMAT_VERSION),
            "rings": json.dumps(rings or [self.ring]),
            "bridge": json.dumps({"state": "up", "published": 0, "dropped": 0}),
        })  # fmt: skip

    # ------------------------------------------------------------------ events
    def snapshot(self, symbol: str, mid: float = 100.0) -> Orderbook:
        bids = {mid - i: 1.0 + i for i in range(1, 6)}
        asks = {mid + i: 1.0 + i for i in range(1, 6)}
        self.books[symbol] = {"bids": bids, "asks": asks}
        u = self.update_id[symbol] = self.update_id.get(symbol, 0) + 1
        return self._book_event(symbol, True, list(bids.items()), list(asks.items()), u)

    def delta(self, symbol: str, i: int) -> Orderbook:
        book = self.books[symbol]
        price, qty = 100.0 - 1 - (i % 5), float(i % 7)  # qty 0 removes the level
        if qty:
            book["bids"][price] = qty
        else:
            book["bids"].pop(price, None)
        u = self.update_id[symbol] = self.update_id[symbol] + 1
        return self._book_event(symbol, False, [(price, qty)], [], u)

    def _book_event(self, symbol: str, snap: bool, bids: list, asks: list, u: int) -> Orderbook:
        return Orderbook(exchange=EXCHANGE, symbol=symbol, is_snapshot=snap,
                         bids=tuple(sorted(bids, reverse=True)), asks=tuple(sorted(asks)),
                         first_update_id=u, last_update_id=u, exch_ts=u, local_ts=u)  # fmt: skip

    def trade(self, symbol: str) -> MarketTrades:
        self._tid += 1
        tid = f"t{self._tid}"
        self.trades.append(tid)
        return MarketTrades(exchange=EXCHANGE, symbol=symbol, exch_ts=self._tid,
                            trades=(Trade(tid, 100.0, 1.0, Side.BUY, self._tid),))  # fmt: skip

    @staticmethod
    def gap(lost: int) -> GapNotice:
        return GapNotice(exchange="", lost=lost)

    # ------------------------------------------------------------------ writing
    def publish(self, events: list[Any], *, tag: bytes | None = None) -> bytes:
        """One entry of ``events`` (XADD, exact MAXLEN trimming when set)."""
        fields = fmt.encode_entry(codec.encode(e) for e in events)
        if self.numbered:
            self.evno += sum(e.lost for e in events if type(e) is GapNotice)
            fields[b"s"] = str(self.evno).encode()
            self.evno += sum(1 for e in events if type(e) is not GapNotice)
            fields[b"x"] = str(self.evno).encode()
        if tag is not None:
            fields[b"v"] = tag
        self.last_id = self.r.xadd(self.key, fields, maxlen=self.maxlen, approximate=False)
        return self.last_id

    def write_state(self, after: bytes | None = None, layout: bytes | None = None) -> None:
        """The state hash as the bridge keeps it: a snapshot of every book at ``after``."""
        mapping: dict[str, bytes] = {"_after": after or self.last_id,
                                     "_layout": layout or fmt.layout_tag()}  # fmt: skip
        for sym, book in self.books.items():
            ev = self._book_event(sym, True, list(book["bids"].items()),
                                  list(book["asks"].items()), self.update_id[sym])  # fmt: skip
            mapping[fmt.state_field(ev)] = fmt.pack_events([ev])
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.skey)
        pipe.hset(self.skey, mapping=mapping)
        pipe.execute()

    def truth(self, symbol: str) -> tuple[list, list]:
        book = self.books[symbol]
        return (sorted(book["bids"].items(), reverse=True), sorted(book["asks"].items()))

    def close(self) -> None:
        self.r.close()


def book_levels(client: Any, symbol: str) -> tuple[list, list]:
    """A BaseClient's book as (bids, asks) lists, comparable with :meth:`BusWriter.truth`."""
    book = client.books[(EXCHANGE, symbol)]
    return ([tuple(x) for x in book.bids()], [tuple(x) for x in book.asks()])
