"""One exchange's matching and accounts on replayed market data (pure: no clock of its own,
no I/O, no randomness; the runner tells it the time of every event and command).

- The replayed books are kept as they were recorded; our orders never enter them.
- A taker order walks the opposite side best first at the replayed prices, never beyond
  its limit, never across a missing side; the size it took stays taken until the
  recording updates that level.
- A resting order gets a :class:`~ttxt_mp.backtest.queue_position.QueuePosition`: the
  visible size at its price when it arrived. Replayed trades at its price consume the
  queue, then fill it; a trade beyond its price fills it (up to the traded size); with
  ``VenueRules.queue_cancels`` cancellations at its level shorten the queue pro rata.
  Maker fills are at the order's price.
- Post-only orders that would trade are rejected (or accepted then cancelled where the
  venue does that); IOC fills what it can and expires the rest; FOK fills completely or
  expires untouched.
- Amends follow :class:`~ttxt_mp.backtest.rules.VenueRules.price_amend`; a quantity
  decrease keeps the queue place.
- Accounts (:mod:`ttxt_mp.backtest.accounts`): spot balances with funds locked for
  resting orders (a buy locks ``price x qty x (1 + fee)`` of the quote, with the maker fee
  while it rests and the larger of maker and taker while it takes on arrival; a sell locks
  its ``qty`` of the base; fees are charged in the quote; rebates are never locked); contracts ``BASE/QUOTE:SETTLE`` with
  one-way positions, leverage, margin, realized PnL, fees and funding in SETTLE. Funding is
  paid at each funding time a :class:`~ttxt_mp.events.MarkPrice` announced (on the first
  event or command at or after it), with the rate it announced and the last mark before.

Every change is appended to the sink as an ``OrderRow`` / ``FillRow`` / ``BalanceRow`` /
``PositionRow``, and returned as the private events a live connector would deliver
(``OrderAck``, ``OrderUpdate``, ``Wallet``, ``PositionUpdate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

from ttxt_mp.backtest.accounts import ACCOUNT, ZERO, Accounts, Instrument, dec, exact
from ttxt_mp.backtest.queue_position import QueuePosition
from ttxt_mp.backtest.records import BalanceRow, EquityRow, FillRow, OrderRow, PositionRow
from ttxt_mp.backtest.rules import FeeSchedule, RejectCode, VenueRules, default_rules
from ttxt_mp.events import (
    AmendOrder,
    Balance,
    CancelOrder,
    CreateOrder,
    MarginMode,
    MarketTrades,
    MarkPrice,
    OrderAck,
    OrderAction,
    Orderbook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionUpdate,
    SetLeverage,
    Side,
    TimeInForce,
    Wallet,
)
from ttxt_mp.orderbook import OrderBook
from ttxt_mp.sim.contracts import CROSS, ISOLATED, MARGIN_PLACES, position_margin

__all__ = ["BacktestVenue", "FeeSchedule", "RowSink", "VenueRules", "default_rules"]

MAX_LEVERAGE = 125
_RESTS = (TimeInForce.GTC, TimeInForce.POST_ONLY)
_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class RowSink(Protocol):
    """Where the rows go (:class:`~ttxt_mp.backtest.results.ResultsBuilder` is one)."""

    def add(self, row: Any) -> None: ...


@dataclass(slots=True, eq=False)
class _Order:
    cid: str
    oid: str
    inst: Instrument
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: float  # 0 for a market order
    qty: Decimal
    seq: int
    reduce_only: bool = False
    filled: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    lock: Decimal = ZERO  # funds (spot) or margin (contract) locked for it
    lock_rate: Decimal = ZERO  # contract: margin per unit of quantity
    queue: QueuePosition | None = None
    buy: bool = field(init=False)

    def __post_init__(self) -> None:
        self.buy = self.side == Side.BUY

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def lock_asset(self) -> str:
        i = self.inst
        return i.settle or (i.quote if self.buy else i.base)


class _Reject(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _Step:
    """What one call changed: the private events in order, then the wallet and positions."""

    __slots__ = ("events", "assets", "symbols")

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.assets: set[str] = set()
        self.symbols: set[str] = set()


class BacktestVenue:
    """One exchange's matching + accounts on replayed data (see the module docstring).

    ``rules`` apply to spot symbols, ``contract_rules`` to ``BASE/QUOTE:SETTLE`` ones (by
    default the venue's ``linear`` market's rules where it has one, else ``rules``)."""

    def __init__(self, exchange: str, *, fees: FeeSchedule, rules: VenueRules,
                 balances: dict[str, float], sink: RowSink,
                 contract_rules: VenueRules | None = None, default_leverage: int = 10,
                 ) -> None:  # fmt: skip
        for name, rate in (("maker", fees.maker), ("taker", fees.taker)):
            if not math.isfinite(rate) or abs(rate) >= 1:
                raise ValueError(f"{exchange}: {name} fee must be a fraction in (-1, 1), "
                                 f"got {rate!r}")  # fmt: skip
        self.exchange = exchange
        self.fees = fees
        self.rules = rules
        self.contract_rules = contract_rules if contract_rules is not None else \
            _contract_rules(exchange, rules)  # fmt: skip
        self.sink = sink
        self.accounts = Accounts(balances, default_leverage)
        self._maker, self._taker = dec(fees.maker), dec(fees.taker)
        self._rest_fee = max(self._maker, ZERO)  # what a resting buy locks for its fee
        self._take_fee = max(self._maker, self._taker, ZERO)  # ... an arriving one
        self._books: dict[str, OrderBook] = {}
        self._insts: dict[str, Instrument] = {}
        self._orders: dict[str, _Order] = {}  # open orders by client order id
        self._resting: dict[str, list[_Order]] = {}  # symbol -> resting orders, by seq
        self._prices: dict[str, tuple[frozenset[float], frozenset[float]]] = {}  # their
        # (bid, ask) prices: book updates elsewhere skip the queue work
        self._traded: dict[tuple[str, Side, float], float] = {}  # (symbol, book side, price)
        self._taken: dict[tuple[str, Side, float], float] = {}  # size our takers consumed
        self._marks: dict[str, float] = {}
        self._funding: dict[str, tuple[int, float]] = {}  # symbol -> (next time, rate)
        self._next_funding = 0  # the earliest of _funding's times (0: none)
        self._seq = 0
        self._trade_seq = 0
        self._started = False
        self._now = 0
        self._last_rows: dict[str, tuple[Decimal, Decimal]] = {}  # asset -> its last row

    # -- queries

    def book(self, symbol: str) -> OrderBook | None:
        return self._books.get(symbol)

    def open_orders(self) -> list[OrderUpdate]:
        """Open orders, oldest first."""
        return [self._update(o, self._now) for o in sorted(self._orders.values(), key=_by_seq)]

    def balance(self, asset: str) -> tuple[float, float]:
        """(free, locked) of ``asset``."""
        b = self.accounts.bal.get(asset)
        return (float(b[0]), float(b[1])) if b else (0.0, 0.0)

    def wallet(self) -> Wallet:
        """Every balance of the account now (what a wallet query answers live)."""
        bal = self.accounts.bal
        return Wallet(exchange=self.exchange, exch_ts=self._now, local_ts=self._now,
                      balances=tuple(Balance(a, float(bal[a][0]), float(bal[a][1]))
                                     for a in sorted(bal)))  # fmt: skip

    def positions(self) -> list[PositionUpdate]:
        """Every contract position the account has held (flat ones too), by symbol."""
        symbols = sorted(p.symbol for p in self.accounts.contracts.positions.values())
        return [self._position_update(self._inst(s), self._now) for s in symbols]

    def mark_to_market(self, ts: int, symbol: str, quote: str) -> EquityRow:
        """The account valued in ``quote`` at the books' mids (see :class:`EquityRow`):
        an asset with no book to ``quote`` is valued at 0; positions' unrealized PnL is
        at the mid of their book (the mark price when it has none)."""
        with exact():
            acc = self.accounts
            equity = sum(((b[0] + b[1]) * self._value(a, quote) for a, b in acc.bal.items()),
                         ZERO)  # fmt: skip
            realized = upnl = ZERO
            for book in (acc.spot, acc.contracts):
                for p in book.positions.values():
                    inst = self._inst(p.symbol)
                    rate = self._value(inst.settle or inst.quote, quote)
                    realized += p.realized * rate
                    if p.size:
                        mid = self._mid(p.symbol)
                        gain = p.upnl(dec(mid)) * rate if mid else ZERO
                        upnl += gain
                        if inst.contract:
                            equity += gain
            fees = sum((v * self._value(a, quote) for a, v in acc.fees.items()), ZERO)
            funding = sum((v * self._value(a, quote) for a, v in acc.funding.items()), ZERO)
            pos = acc.position(self._inst(symbol)).size if symbol else ZERO
        return EquityRow(ts=ts, equity=float(equity), realized_pnl=float(realized),
                         unrealized_pnl=float(upnl), fees=float(fees), funding=float(funding),
                         position=float(pos), mid=self._mid(symbol) if symbol else 0.0,
                         symbol=symbol, quote=quote)  # fmt: skip

    # -- market data

    def on_market(self, ev: Any) -> list[Any]:
        """Apply one replayed market event at its time; the private events it caused."""
        ts = self._now = ev.exch_ts or ev.local_ts
        kind = type(ev)
        if not self._started or (self._next_funding and ts >= self._next_funding):
            step = _Step()
            self._catch_up(ts, step)
        elif kind is Orderbook:  # the hot path: a book update causes no private event
            book = self._books.get(ev.symbol)
            if book is not None and not self._taken and not self._resting.get(ev.symbol):
                book.update(ev)
            else:
                self._on_book(ev)
            return []
        else:
            step = None
        if kind is Orderbook:
            self._on_book(ev)
        elif kind is MarketTrades:
            if self._resting.get(ev.symbol):
                step = step or _Step()
                self._on_trades(ev, ts, step)
        elif kind is MarkPrice:
            self._on_mark(ev, ts)
        if step is None:
            return []
        return self._finish(step, ts)

    def _on_book(self, ev: Orderbook) -> None:
        symbol = ev.symbol
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = OrderBook(self.exchange, symbol, rules="none")
            self._inst(symbol)
        resting = self._resting.get(symbol)
        if not resting or not (ev.is_snapshot or self._touches(ev)):
            book.update(ev)
        else:
            before = [(o, _level(book, o)) for o in resting]
            book.update(ev)
            cancels = self._rules(resting[0].inst).queue_cancels
            traded = self._traded
            for o, old in before:
                side = Side.BUY if o.buy else Side.SELL
                o.queue.on_level(old, _level(book, o), traded.get((symbol, side, o.price), 0.0),
                                 cancels)  # fmt: skip
        for kept in (self._traded, self._taken):
            if kept:
                _forget_levels(kept, ev)

    def _touches(self, ev: Orderbook) -> bool:
        """Whether a delta changes a level where one of our orders rests."""
        bids, asks = self._prices[ev.symbol]
        if bids:
            for p, _ in ev.bids:
                if p in bids:
                    return True
        if asks:
            for p, _ in ev.asks:
                if p in asks:
                    return True
        return False

    def _on_trades(self, ev: MarketTrades, ts: int, step: _Step) -> None:
        symbol = ev.symbol
        for t in ev.trades:
            hit = Side.BUY if t.side == Side.SELL else Side.SELL  # the resting side it hit
            if t.price in self._prices[symbol][0 if hit == Side.BUY else 1]:
                key = (symbol, hit, t.price)  # for on_level: what trades took at our level
                self._traded[key] = self._traded.get(key, 0.0) + t.qty
            orders = self._resting.get(symbol)
            if not orders:
                continue
            if hit == Side.BUY:
                cands = sorted((o for o in orders if o.buy and o.price >= t.price),
                               key=lambda o: (-o.price, o.seq))  # fmt: skip
            else:
                cands = sorted((o for o in orders if not o.buy and o.price <= t.price),
                               key=lambda o: (o.price, o.seq))  # fmt: skip
            used = 0.0
            for o in cands:
                if o.price == t.price:
                    left = o.queue.on_trade(t.qty)
                else:
                    o.queue.traded_through()
                    left = t.qty
                q = min(float(o.remaining), left - used)
                if q <= 0:
                    continue
                with exact():
                    if o.reduce_only:  # never beyond the position it reduces
                        q = min(q, float(self._closable(o.inst, o.buy)))
                        if q <= 0:
                            self._end(o, OrderStatus.EXPIRED, ts, step,
                                      "reduce-only order: no position left to reduce")
                            continue
                    used += q
                    self._fill(o, dec(q), dec(o.price), False, ts, step)
                    if o.status == OrderStatus.FILLED:
                        self._retire(o)

    def _on_mark(self, ev: MarkPrice, ts: int) -> None:
        symbol = ev.symbol
        self._marks[symbol] = ev.mark_price
        if ev.next_funding_ts > ts and self._inst(symbol).contract:
            self._funding[symbol] = (ev.next_funding_ts, ev.funding_rate)
            self._next_funding = min(t for t, _ in self._funding.values())

    def _catch_up(self, ts: int, step: _Step) -> None:
        """Before anything at ``ts``: the initial balances (once), due funding payments."""
        self._now = ts
        if not self._started:
            self._started = True
            for asset in self.accounts.bal:
                self._balance_row(ts, asset, "initial")
        if not self._next_funding or ts < self._next_funding:
            return
        with exact():
            for symbol in sorted(self._funding, key=lambda s: (self._funding[s][0], s)):
                when, rate = self._funding[symbol]
                if when > ts:
                    continue
                del self._funding[symbol]
                inst = self._inst(symbol)
                mark = self._marks.get(symbol, 0.0)
                if self.accounts.fund(inst, dec(mark), dec(rate), ts):
                    # stamped now, not at ``when``: rows stay in time order across venues
                    self._balance_row(ts, inst.settle, "funding")
                    self._position_row(ts, inst)
                    step.assets.add(inst.settle)
                    step.symbols.add(symbol)
        self._next_funding = min((t for t, _ in self._funding.values()), default=0)

    # -- commands

    def submit(self, cmd: CreateOrder | CancelOrder | AmendOrder | SetLeverage, ts: int) -> list[Any]:
        """The command arrives at ``ts``: its ``OrderAck`` first, then what it caused."""
        step = _Step()
        self._catch_up(ts, step)
        with exact():
            if isinstance(cmd, CreateOrder):
                self._create(cmd, ts, step)
            elif isinstance(cmd, CancelOrder):
                self._cancel(cmd, ts, step)
            elif isinstance(cmd, AmendOrder):
                self._amend(cmd, ts, step)
            elif isinstance(cmd, SetLeverage):
                self._set_leverage(cmd, ts, step)
            else:
                raise TypeError(f"not a command: {type(cmd).__name__}")
        return self._finish(step, ts)

    def _ack(self, cmd: Any, action: OrderAction, ts: int, step: _Step, order_id: str = "",
             reject: _Reject | None = None) -> None:  # fmt: skip
        code = message = ""
        if reject is not None:
            rules = self._rules(self._inst_or_none(cmd.symbol))
            code, message = rules.reject(reject.code, reject.reason)
        step.events.append(OrderAck(
            exchange=self.exchange, symbol=cmd.symbol, exch_ts=ts, local_ts=ts,
            client_order_id=cmd.client_order_id, action=action, accepted=reject is None,
            order_id=order_id, code=code, message=message,
        ))  # fmt: skip

    def _create(self, cmd: CreateOrder, ts: int, step: _Step) -> None:
        try:
            o = self._admit(cmd)
        except _Reject as r:
            self._ack(cmd, OrderAction.CREATE, ts, step, reject=r)
            self.sink.add(OrderRow(
                ts=ts, exchange=self.exchange, symbol=cmd.symbol,
                client_order_id=cmd.client_order_id, order_id="", side=cmd.side.name,
                order_type=cmd.order_type.name, tif=cmd.tif.name, status="REJECTED",
                price=cmd.price, qty=cmd.qty, filled_qty=0.0, avg_price=0.0, reason=r.reason,
            ))  # fmt: skip
            return
        if o.tif == TimeInForce.POST_ONLY and self._crossing(o, self._books.get(cmd.symbol)):
            self._ack(cmd, OrderAction.CREATE, ts, step, order_id=o.oid)  # the venue cancels it
            self._end(o, OrderStatus.CANCELED, ts, step, "post-only order would trade")
            return
        self._ack(cmd, OrderAction.CREATE, ts, step, order_id=o.oid)
        self._enter(o, ts, step)

    def _admit(self, cmd: CreateOrder) -> _Order:
        """Check ``cmd`` and lock what it needs; the new order (not yet matched)."""
        try:
            inst = self._inst(cmd.symbol)
        except ValueError as e:
            raise _Reject(RejectCode.UNKNOWN_SYMBOL, str(e)) from None
        if not math.isfinite(cmd.qty) or cmd.qty <= 0:
            raise _Reject(RejectCode.INVALID_QTY, f"qty {cmd.qty!r} is not a positive number")
        market = cmd.order_type == OrderType.MARKET
        if market:
            if cmd.tif == TimeInForce.POST_ONLY:
                raise _Reject(RejectCode.INVALID_PRICE, "a market order cannot be post-only")
            price = 0.0
        else:
            if not math.isfinite(cmd.price) or cmd.price <= 0:
                raise _Reject(RejectCode.INVALID_PRICE,
                              f"price {cmd.price!r} is not a positive number")  # fmt: skip
            price = _snap(cmd.price)
        if cmd.client_order_id in self._orders:
            raise _Reject(RejectCode.DUPLICATE_CLIENT_ID,
                          f"client order id {cmd.client_order_id!r} is in use")  # fmt: skip
        qty = dec(cmd.qty)
        buy = cmd.side == Side.BUY
        reduce_only = cmd.reduce_only and inst.contract
        if reduce_only and not self._closable(inst, buy):
            raise _Reject(RejectCode.REDUCE_ONLY, "reduce-only order: no opposite position")
        o = _Order(cmd.client_order_id, "", inst, cmd.side, cmd.order_type, cmd.tif, price, qty,
                   0, reduce_only=reduce_only)  # fmt: skip
        if cmd.tif == TimeInForce.POST_ONLY and not self._rules(inst).post_only_cancel and \
                self._crossing(o, self._books.get(inst.symbol)):  # fmt: skip
            raise _Reject(RejectCode.WOULD_TAKE, "post-only order would immediately match and take")
        need = self._initial_need(o)
        if self.accounts.free(o.lock_asset) < need:
            raise _Reject(RejectCode.INSUFFICIENT_BALANCE,
                          f"insufficient {o.lock_asset} balance: needs {need}, free "
                          f"{self.accounts.free(o.lock_asset)}")  # fmt: skip
        self._seq += 1
        o.oid, o.seq = str(self._seq), self._seq
        return o

    def _initial_need(self, o: _Order) -> Decimal:
        """What an order locks on arrival: spot funds for all of it (a market buy: the cost
        of what the book can fill now), a contract the margin of what it would open."""
        inst = o.inst
        if inst.contract:
            if o.reduce_only:
                return ZERO
            ref = dec(o.price) if o.price else self._walk_cost(o)[1]
            opening = max(ZERO, o.qty - self._closable(inst, o.buy))
            pos = self.accounts.position(inst)
            margin = position_margin(opening, ref, pos.leverage)
            o.lock_rate = margin / o.qty
            return margin
        if not o.buy:
            return o.qty
        if o.price:
            return dec(o.price) * o.qty * (1 + self._take_fee)
        return self._walk_cost(o)[0] * (1 + self._taker)

    def _need(self, o: _Order, taking: bool = False) -> Decimal:
        """What an order keeps locked for its remaining quantity: resting (maker fees) or,
        ``taking``, while it still takes liquidity on arrival (taker fees)."""
        rem = o.remaining
        if o.inst.contract:
            return (rem * o.lock_rate).quantize(MARGIN_PLACES, ROUND_CEILING)
        if not o.buy:
            return rem
        return dec(o.price) * rem * (1 + (self._take_fee if taking else self._rest_fee))

    def _relock(self, o: _Order, need: Decimal) -> None:
        diff = need - o.lock
        if diff:
            self.accounts.lock(o.lock_asset, diff)
            o.lock = need

    def _enter(self, o: _Order, ts: int, step: _Step) -> None:
        """An accepted order arrives: it locks, takes what it can, then rests or ends."""
        self._relock(o, self._initial_need(o))
        self._order_row(o, ts)
        if o.tif == TimeInForce.FOK:
            fillable = sum(q for _, q in self._crossing(o, self._books.get(o.inst.symbol)))
            if fillable < float(o.qty):
                step.events.append(self._update(o, ts))
                self._end(o, OrderStatus.EXPIRED, ts, step, "FOK order cannot fill completely")
                return
        self._take(o, ts, step)
        if o.status == OrderStatus.FILLED:
            return
        if o.order_type == OrderType.LIMIT and o.tif in _RESTS:
            self._rest(o)
        else:
            self._end(o, OrderStatus.EXPIRED, ts, step, "unfilled rest of an IOC/FOK/market order")

    def _take(self, o: _Order, ts: int, step: _Step) -> None:
        """``o`` (just arrived, state event first) takes what the book offers within its
        limit, level by level; a filled order releases what it still locks."""
        step.assets.add(o.lock_asset)
        step.events.append(self._update(o, ts))
        for p, q in self._crossing(o, self._books.get(o.inst.symbol)):
            take = min(o.remaining, dec(q))
            if o.reduce_only:
                take = min(take, self._closable(o.inst, o.buy))
            if take <= 0:
                break
            key = (o.inst.symbol, Side.SELL if o.buy else Side.BUY, p)
            self._taken[key] = self._taken.get(key, 0.0) + float(take)
            self._fill(o, take, dec(p), True, ts, step)
        if o.status == OrderStatus.FILLED:
            self._relock(o, ZERO)

    def _rest(self, o: _Order, queue: QueuePosition | None = None) -> None:
        """``o`` rests: it keeps what its remainder needs locked and queues behind the size
        visible at its price (or keeps ``queue``, its old place)."""
        self._relock(o, self._need(o))
        o.queue = queue or QueuePosition(_level(self._books.get(o.inst.symbol), o))
        self._orders[o.cid] = o
        resting = self._resting.setdefault(o.inst.symbol, [])
        resting.append(o)
        if len(resting) > 1 and resting[-2].seq > o.seq:
            resting.sort(key=_by_seq)
        self._index(o.inst.symbol)

    def _index(self, symbol: str) -> None:
        resting = self._resting[symbol]
        bids, asks = self._prices[symbol] = (frozenset(o.price for o in resting if o.buy),
                                             frozenset(o.price for o in resting if not o.buy))
        for key in [k for k in self._traded if k[0] == symbol]:  # what no order waits at
            if key[2] not in (bids if key[1] == Side.BUY else asks):
                del self._traded[key]

    def _retire(self, o: _Order) -> None:
        """Take a finished order off the book and release what it still locks."""
        self._relock(o, ZERO)
        if self._orders.get(o.cid) is o:
            del self._orders[o.cid]
            self._resting[o.inst.symbol].remove(o)
            self._index(o.inst.symbol)

    def _end(self, o: _Order, status: OrderStatus, ts: int, step: _Step, reason: str) -> None:
        self._retire(o)
        step.assets.add(o.lock_asset)
        o.status = status
        self._order_row(o, ts, reason)
        step.events.append(self._update(o, ts))

    def _crossing(self, o: _Order, book: OrderBook | None) -> list[tuple[float, float]]:
        """Opposite levels ``o`` may take, best first, net of what our takers consumed."""
        if book is None:
            return []
        levels = book.asks() if o.buy else book.bids()
        side = Side.SELL if o.buy else Side.BUY
        taken, symbol, limit = self._taken, o.inst.symbol, o.price
        out = []
        for p, q in levels:
            if limit and (p > limit if o.buy else p < limit):
                break
            q -= taken.get((symbol, side, p), 0.0)
            if q > 0:
                out.append((p, q))
        return out

    def _walk_cost(self, o: _Order) -> tuple[Decimal, Decimal]:
        """(cost, average price) of what the book can fill of ``o`` now (0s if nothing)."""
        cost = filled = ZERO
        for p, q in self._crossing(o, self._books.get(o.inst.symbol)):
            take = min(o.qty - filled, dec(q))
            cost += take * dec(p)
            filled += take
            if filled >= o.qty:
                break
        return cost, cost / filled if filled else ZERO

    def _closable(self, inst: Instrument, buy: bool) -> Decimal:
        return self.accounts.contracts.closable(ACCOUNT, inst.symbol, buy) if inst.contract else ZERO

    def _fill(self, o: _Order, qty: Decimal, price: Decimal, taker: bool, ts: int,
              step: _Step) -> None:  # fmt: skip
        inst = o.inst
        notional = qty * price
        fee = notional * (self._taker if taker else self._maker)
        o.filled += qty
        o.cum_quote += notional
        o.status = OrderStatus.FILLED if o.filled >= o.qty else OrderStatus.PARTIALLY_FILLED
        acc = self.accounts
        if inst.contract:
            release = o.lock - self._need(o) if o.status != OrderStatus.FILLED else o.lock
            release = min(o.lock, max(ZERO, release))
            o.lock -= release
            acc.contract_fill(inst, qty if o.buy else -qty, price, fee, release, ts)
            step.symbols.add(inst.symbol)
        else:
            o.lock -= (notional + fee) if o.buy else qty
            acc.spot_fill(inst, o.buy, qty, price, fee, ts)
            if o.buy and o.price:  # a fill below the limit frees the difference
                self._relock(o, self._need(o, taker))
        self._trade_seq += 1
        trade_id = str(self._trade_seq)
        fee_asset = inst.settle or inst.quote
        self.sink.add(FillRow(
            ts=ts, exchange=self.exchange, symbol=inst.symbol, client_order_id=o.cid,
            order_id=o.oid, trade_id=trade_id, side=o.side.name, price=float(price),
            qty=float(qty), liquidity="taker" if taker else "maker", fee=float(fee),
            fee_asset=fee_asset,
        ))  # fmt: skip
        self._order_row(o, ts)
        if inst.contract:
            self._balance_row(ts, inst.settle, "fill")
            self._position_row(ts, inst)
        else:
            self._balance_row(ts, inst.base, "fill")
            self._balance_row(ts, inst.quote, "fee" if fee else "fill")
        step.assets.update((inst.settle,) if inst.contract else (inst.base, inst.quote))
        step.events.append(self._update(o, ts, last_price=float(price), last_qty=float(qty),
                                        fee=float(fee), fee_asset=fee_asset, trade_id=trade_id))

    def _find(self, cmd: CancelOrder | AmendOrder) -> _Order:
        o = self._orders.get(cmd.client_order_id)
        if o is None and cmd.order_id:
            o = next((x for x in self._orders.values() if x.oid == cmd.order_id), None)
        if o is None or (cmd.symbol and o.inst.symbol != cmd.symbol):
            raise _Reject(RejectCode.UNKNOWN_ORDER,
                          f"unknown order {cmd.client_order_id or cmd.order_id!r} (not open)")
        return o

    def _cancel(self, cmd: CancelOrder, ts: int, step: _Step) -> None:
        try:
            o = self._find(cmd)
        except _Reject as r:
            self._ack(cmd, OrderAction.CANCEL, ts, step, reject=r)
            return
        self._ack(cmd, OrderAction.CANCEL, ts, step, order_id=o.oid)
        self._end(o, OrderStatus.CANCELED, ts, step, "")

    def _amend(self, cmd: AmendOrder, ts: int, step: _Step) -> None:
        try:
            o = self._find(cmd)
            price = _snap(cmd.new_price) if cmd.new_price else o.price
            qty = dec(cmd.new_qty) if cmd.new_qty else o.qty
            if not math.isfinite(price) or price <= 0 or cmd.new_qty < 0 or \
                    not math.isfinite(cmd.new_qty):  # fmt: skip
                raise _Reject(RejectCode.INVALID_AMEND, "new price and qty must be positive")
            if qty <= o.filled:
                raise _Reject(RejectCode.INVALID_AMEND,
                              f"new qty {qty} must exceed the filled qty {o.filled}")  # fmt: skip
            if price == o.price and qty == o.qty:
                raise _Reject(RejectCode.INVALID_AMEND, "nothing to change")
        except _Reject as r:
            self._ack(cmd, OrderAction.AMEND, ts, step, reject=r)
            return
        if price == o.price and qty < o.qty:  # keeps its place in the queue
            self._ack(cmd, OrderAction.AMEND, ts, step, order_id=o.oid)
            o.qty = qty
            self._relock(o, self._need(o))
            step.assets.add(o.lock_asset)
            self._order_row(o, ts, "amended")
            step.events.append(self._update(o, ts))
            return
        rules = self._rules(o.inst)
        if rules.price_amend == "cancel_replace":
            self._cancel_replace(cmd, o, price, qty, ts, step)
            return
        # in place: the same order moves to the back of the queue at its new price
        probe = _Order(o.cid, o.oid, o.inst, o.side, o.order_type, o.tif, price, qty - o.filled,
                       o.seq, o.reduce_only)  # fmt: skip
        if o.tif == TimeInForce.POST_ONLY and self._crossing(probe, self._books.get(o.inst.symbol)):
            r = _Reject(RejectCode.WOULD_TAKE, "post-only order would trade at the new price")
            self._ack(cmd, OrderAction.AMEND, ts, step, reject=r)
            return
        self._retire(o)
        need = self._initial_need(probe)
        if self.accounts.free(o.lock_asset) < need:
            self._rest(o, o.queue)  # unchanged, in its old place
            r = _Reject(RejectCode.INSUFFICIENT_BALANCE, f"insufficient {o.lock_asset} balance")
            self._ack(cmd, OrderAction.AMEND, ts, step, reject=r)
            return
        self._ack(cmd, OrderAction.AMEND, ts, step, order_id=o.oid)
        self._seq += 1
        o.seq = self._seq
        o.price, o.qty, o.lock_rate = price, qty, probe.lock_rate
        self._relock(o, need)
        self._order_row(o, ts, "amended")
        self._take(o, ts, step)
        if o.status != OrderStatus.FILLED:
            self._rest(o)

    def _cancel_replace(self, cmd: AmendOrder, o: _Order, price: float, qty: Decimal, ts: int,
                        step: _Step) -> None:  # fmt: skip
        """Cancel ``o`` and place its remaining quantity anew (new order id, same client
        order id); the new order must pass every check a new order does."""
        remaining = qty - o.filled
        self._retire(o)
        new = CreateOrder(exchange=self.exchange, symbol=o.inst.symbol, client_order_id=o.cid,
                          side=o.side, order_type=o.order_type, qty=float(remaining),
                          price=price, tif=o.tif, reduce_only=o.reduce_only)  # fmt: skip
        try:
            replacement = self._admit(new)
            if o.tif == TimeInForce.POST_ONLY and \
                    self._crossing(replacement, self._books.get(o.inst.symbol)):  # fmt: skip
                self._seq -= 1  # the replacement is not placed: its id is not used
                raise _Reject(RejectCode.WOULD_TAKE,
                              "post-only order would trade at the new price")  # fmt: skip
        except _Reject as r:  # STOP_ON_FAILURE: the old order stays
            self._rest(o, o.queue)
            self._ack(cmd, OrderAction.AMEND, ts, step, reject=r)
            return
        self._ack(cmd, OrderAction.AMEND, ts, step, order_id=replacement.oid)
        o.status = OrderStatus.CANCELED
        self._order_row(o, ts, "cancel-replace")
        step.assets.add(o.lock_asset)
        step.events.append(self._update(o, ts))
        self._enter(replacement, ts, step)

    def _set_leverage(self, cmd: SetLeverage, ts: int, step: _Step) -> None:
        try:
            inst = self._inst(cmd.symbol)
            if not inst.contract:
                raise _Reject(RejectCode.NOT_CONTRACT, f"{cmd.symbol} is not a contract")
            lev = cmd.leverage
            if lev and (not math.isfinite(lev) or not 1 <= lev <= MAX_LEVERAGE or lev != int(lev)):
                raise _Reject(RejectCode.INVALID_LEVERAGE,
                              f"leverage must be a whole number 1..{MAX_LEVERAGE}, got {lev!r}")
            contracts = self.accounts.contracts
            pos = contracts.position(ACCOUNT, inst.symbol)
            if cmd.margin_mode != MarginMode.UNCHANGED:
                if pos.size or self._resting.get(inst.symbol):
                    raise _Reject(RejectCode.INVALID_LEVERAGE,
                                  "margin mode cannot change with a position or open orders")
            if lev:
                dm = contracts.margin_after(ACCOUNT, inst.symbol, Decimal(int(lev)))
                if dm > self.accounts.free(inst.settle):
                    raise _Reject(RejectCode.INSUFFICIENT_BALANCE,
                                  f"insufficient {inst.settle} for the margin at {lev:g}x")
        except (_Reject, ValueError) as r:
            if isinstance(r, ValueError):
                r = _Reject(RejectCode.NOT_CONTRACT, str(r))
            self._ack(cmd, OrderAction.SET_LEVERAGE, ts, step, reject=r)
            return
        if cmd.margin_mode != MarginMode.UNCHANGED:
            pos.margin_mode = ISOLATED if cmd.margin_mode == MarginMode.ISOLATED else CROSS
        if lev:
            self.accounts.lock(inst.settle, contracts.set_leverage(ACCOUNT, inst.symbol,
                                                                   Decimal(int(lev))))
            self._balance_row(ts, inst.settle, "lock")
            step.assets.add(inst.settle)
        self._ack(cmd, OrderAction.SET_LEVERAGE, ts, step)
        self._position_row(ts, inst)
        step.symbols.add(inst.symbol)

    # -- output

    def _finish(self, step: _Step, ts: int) -> list[Any]:
        """The step's events, then one Wallet of the assets it touched, then positions."""
        out = step.events
        if step.assets:
            bal = self.accounts.bal
            out.append(Wallet(exchange=self.exchange, exch_ts=ts, local_ts=ts, balances=tuple(
                Balance(a, float(bal[a][0]), float(bal[a][1]))
                for a in sorted(step.assets) if a in bal)))  # fmt: skip
            for a in sorted(step.assets):
                if a in bal:
                    self._balance_row(ts, a, "lock")
        for symbol in sorted(step.symbols):
            out.append(self._position_update(self._inst(symbol), ts))
        return out

    def _balance_row(self, ts: int, asset: str, reason: str) -> None:
        b = self.accounts.balance(asset)
        last = self._last_rows.get(asset)
        if reason == "lock":
            if last == (b[0], b[1]):
                return  # nothing moved since its last row
            if last is not None and b[1] < last[1]:
                reason = "unlock"
        self._last_rows[asset] = (b[0], b[1])
        self.sink.add(BalanceRow(ts=ts, exchange=self.exchange, asset=asset, free=float(b[0]),
                                 locked=float(b[1]), reason=reason))  # fmt: skip

    def _position_row(self, ts: int, inst: Instrument) -> None:
        p = self.accounts.position(inst)
        self.sink.add(PositionRow(ts=ts, exchange=self.exchange, symbol=inst.symbol,
                                  size=float(p.size), entry_price=float(p.entry),
                                  realized_pnl=float(p.realized), funding=float(p.funding)))

    def _position_update(self, inst: Instrument, ts: int) -> PositionUpdate:
        p = self.accounts.position(inst)
        mark = self._marks.get(inst.symbol) or self._mid(inst.symbol)
        upnl = float(p.upnl(dec(mark))) if mark and p.size else 0.0
        return PositionUpdate(exchange=self.exchange, symbol=inst.symbol, exch_ts=ts,
                              local_ts=ts, size=float(p.size), entry_price=float(p.entry),
                              mark_price=mark, unrealized_pnl=upnl,
                              leverage=float(p.leverage))  # fmt: skip

    def _update(self, o: _Order, ts: int, last_price: float = 0.0, last_qty: float = 0.0,
                fee: float = 0.0, fee_asset: str = "", trade_id: str = "") -> OrderUpdate:  # fmt: skip
        return OrderUpdate(
            exchange=self.exchange, symbol=o.inst.symbol, exch_ts=ts, local_ts=ts,
            client_order_id=o.cid, order_id=o.oid, side=o.side, order_type=o.order_type,
            tif=o.tif, status=o.status, price=o.price, qty=float(o.qty),
            filled_qty=float(o.filled), avg_price=_avg(o), last_fill_price=last_price,
            last_fill_qty=last_qty, fee=fee, fee_asset=fee_asset, trade_id=trade_id,
        )  # fmt: skip

    def _order_row(self, o: _Order, ts: int, reason: str = "") -> None:
        self.sink.add(OrderRow(
            ts=ts, exchange=self.exchange, symbol=o.inst.symbol, client_order_id=o.cid,
            order_id=o.oid, side=o.side.name, order_type=o.order_type.name, tif=o.tif.name,
            status=o.status.name, price=o.price, qty=float(o.qty), filled_qty=float(o.filled),
            avg_price=_avg(o), reason=reason,
        ))  # fmt: skip

    # -- helpers

    def _inst(self, symbol: str) -> Instrument:
        inst = self._insts.get(symbol)
        if inst is None:
            inst = self._insts[symbol] = Instrument.parse(symbol)
        return inst

    def _inst_or_none(self, symbol: str) -> Instrument | None:
        try:
            return self._inst(symbol)
        except ValueError:
            return None

    def _rules(self, inst: Instrument | None) -> VenueRules:
        return self.contract_rules if inst is not None and inst.contract else self.rules

    def _mid(self, symbol: str) -> float:
        book = self._books.get(symbol)
        mid = book.mid if book is not None else None
        return mid if mid is not None else self._marks.get(symbol, 0.0)

    def _value(self, asset: str, quote: str) -> Decimal:
        """The price of one ``asset`` in ``quote``: 1, or the mid of a book between them."""
        if asset == quote:
            return Decimal(1)
        for symbol in sorted(self._books):
            inst = self._insts[symbol]
            if inst.quote == quote and inst.base == asset:
                mid = self._mid(symbol)
                if mid:
                    return dec(mid)
        return ZERO


def _snap(price: float) -> float:
    """A price to 12 significant digits: ``0.1 + 0.2`` is the book's ``0.3``, so an order
    priced by arithmetic finds its level (recorded prices have fewer digits)."""
    return float(f"{price:.12g}") if math.isfinite(price) else price


def _by_seq(o: _Order) -> int:
    return o.seq


def _avg(o: _Order) -> float:
    return float(o.cum_quote / o.filled) if o.filled else 0.0


def _level(book: OrderBook | None, o: _Order) -> float:
    if book is None:
        return 0.0
    return book.bid_qty(o.price) if o.buy else book.ask_qty(o.price)


def _forget_levels(kept: dict[tuple[str, Side, float], float], ev: Orderbook) -> None:
    """The recording updated these levels: what we tracked at them is now in its numbers."""
    symbol = ev.symbol
    if ev.is_snapshot:
        for key in [k for k in kept if k[0] == symbol]:
            del kept[key]
        return
    for side, levels in ((Side.BUY, ev.bids), (Side.SELL, ev.asks)):
        for p, _ in levels:
            kept.pop((symbol, side, p), None)


def _contract_rules(exchange: str, rules: VenueRules) -> VenueRules:
    """The venue's contract market rules, or ``rules`` when it has none (or is unknown)."""
    from ttxt_mp.connectors.venue import venues

    spec = venues().get(exchange)
    for market in ("linear", "inverse"):
        if spec is not None and market in spec.markets:
            return default_rules(exchange, market)
    return rules
