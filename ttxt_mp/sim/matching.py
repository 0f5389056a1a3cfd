"""Price-time-priority matching engine for the exchange simulator (pure: no I/O, no clock
but the one it is given).

One book per symbol holds resting limit orders of every account: the synthetic market
maker's liquidity and the users' orders alike. An incoming order trades against the best
price first and, within a price, the oldest order first, always at the resting (maker)
order's price; the rest of a GTC limit order rests, the rest of an IOC or market order
expires, a FOK order fills completely or not at all, and a post-only order that would
trade is rejected. Self-trades are allowed (no self-trade prevention).

Balances are per account and asset (``free``/``locked``); funds are locked when an order
is accepted (a buy locks ``price x qty`` of the quote asset, a sell ``qty`` of the base
asset) and released as it fills, is canceled or expires. Fees are charged in the asset
received (maker/taker rates of the symbol), rounded to ``fee_places`` decimals, and
collected in :attr:`MatchingEngine.fees`, so for every asset the sum over accounts of
``free + locked`` plus the fees collected only changes through :meth:`deposit`.

Every call returns a :class:`Result` with the order events (snapshots of each order it
touched, in venue-neutral terms) and fills; the simulator turns them into each venue's
messages. Amounts are :class:`~decimal.Decimal` (exact).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

import msgspec

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.contracts import CROSS, ISOLATED, MARGIN_PLACES, Contracts

__all__ = [
    "Fill",
    "MatchingEngine",
    "OrderEvent",
    "Reject",
    "Result",
    "SymbolSpec",
]

ZERO = Decimal(0)
_CTX = Context(prec=60)


class Reject:
    """Rejection codes (the simulator maps them to each venue's error code/message)."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    INVALID_QTY = "INVALID_QTY"
    INVALID_PRICE = "INVALID_PRICE"
    MIN_QTY = "MIN_QTY"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    WOULD_TAKE = "WOULD_TAKE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    DUPLICATE_CLIENT_ID = "DUPLICATE_CLIENT_ID"
    INVALID_AMEND = "INVALID_AMEND"
    REDUCE_ONLY = "REDUCE_ONLY"  # a reduce-only order with no opposite position to reduce
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    MARGIN_MODE = "MARGIN_MODE"  # margin mode change with a position or open orders
    NOT_CONTRACT = "NOT_CONTRACT"  # a contract setting on a spot symbol


class SymbolSpec(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str  # the venue's native name, e.g. BTCUSDT
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    maker_fee: Decimal = ZERO  # rate, e.g. 0.001
    taker_fee: Decimal = ZERO
    fee_places: int = 8
    settle: str = ""  # a linear contract settled in this asset (margin, PnL, fees); "" = spot
    max_leverage: Decimal = Decimal(100)


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The state of one order after a change. ``exec_type``: NEW, TRADE, CANCELED,
    EXPIRED, REJECTED or AMENDED; the ``last_*``/``fee``/``trade_id`` describe this
    event's fill (TRADE only)."""

    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: Decimal
    qty: Decimal
    filled_qty: Decimal
    cum_quote: Decimal
    status: OrderStatus
    exec_type: str
    ts: int
    last_qty: Decimal = ZERO
    last_price: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    trade_id: int = -1
    is_maker: bool = False
    reject_code: str = ""
    reject_reason: str = ""
    on_book: bool = False
    reduce_only: bool = False
    realized_pnl: Decimal = ZERO  # linear contracts: PnL this fill realized
    closed_qty: Decimal = ZERO  # linear contracts: how much of this fill closed a position


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    taker_side: Side
    taker_order_id: int
    maker_order_id: int
    taker_account: str
    maker_account: str
    taker_fee: Decimal
    taker_fee_asset: str
    maker_fee: Decimal
    maker_fee_asset: str
    ts: int


class Result(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool
    order_id: int = 0
    code: str = ""
    reason: str = ""
    events: tuple[OrderEvent, ...] = ()
    fills: tuple[Fill, ...] = ()
    accounts: tuple[str, ...] = ()  # accounts whose balances changed


@dataclass(slots=True, eq=False)
class _Order:
    order_id: int
    account: str
    client_order_id: str
    spec: SymbolSpec
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: Decimal
    qty: Decimal
    seq: int
    filled: Decimal = ZERO
    cum_quote: Decimal = ZERO
    lock: Decimal = ZERO  # funds still locked for this order
    status: OrderStatus = OrderStatus.NEW
    reduce_only: bool = False
    lock_rate: Decimal = ZERO  # linear contracts: margin locked per unit of quantity

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled


class _Book:
    __slots__ = ("spec", "levels", "prices")

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        # side -> price -> FIFO of orders; prices sorted ascending per side
        self.levels: dict[Side, dict[Decimal, deque[_Order]]] = {Side.BUY: {}, Side.SELL: {}}
        self.prices: dict[Side, list[Decimal]] = {Side.BUY: [], Side.SELL: []}

    def best(self, side: Side) -> Decimal | None:
        p = self.prices[side]
        if not p:
            return None
        return p[-1] if side == Side.BUY else p[0]

    def add(self, o: _Order) -> None:
        lv = self.levels[o.side]
        q = lv.get(o.price)
        if q is None:
            q = lv[o.price] = deque()
            bisect.insort(self.prices[o.side], o.price)
        q.append(o)

    def remove(self, o: _Order) -> None:
        lv = self.levels[o.side]
        q = lv[o.price]
        q.remove(o)
        if not q:
            del lv[o.price]
            p = self.prices[o.side]
            del p[bisect.bisect_left(p, o.price)]

    def crossing(self, side: Side, limit: Decimal | None):
        """Resting orders an incoming ``side`` order may trade with, best first."""
        opp = Side.SELL if side == Side.BUY else Side.BUY
        prices = self.prices[opp]
        ordered = list(prices) if opp == Side.SELL else list(reversed(prices))
        for p in ordered:
            if limit is not None and (p > limit if side == Side.BUY else p < limit):
                return
            yield from list(self.levels[opp][p])


class MatchingEngine:
    """See the module docstring. Not thread-safe: the simulator calls it from one loop."""

    def __init__(
        self, specs: Iterable[SymbolSpec] = (), clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.clock = clock
        self.books: dict[str, _Book] = {}
        self.balances: dict[str, dict[str, list[Decimal]]] = {}
        self.fees: dict[str, Decimal] = {}
        self.orders: dict[int, _Order] = {}  # open orders
        self._by_client: dict[tuple[str, str], _Order] = {}
        self._next_order_id = 1
        self._next_trade_id: dict[str, int] = {}
        self._seq = 0
        self.contracts = Contracts()
        for s in specs:
            self.add_symbol(s)

    # -- setup and queries

    def add_symbol(self, spec: SymbolSpec) -> None:
        if spec.tick_size <= 0 or spec.step_size <= 0:
            raise ValueError(f"{spec.symbol}: tick and step sizes must be > 0")
        self.books[spec.symbol] = _Book(spec)
        self._next_trade_id.setdefault(spec.symbol, 1)

    def deposit(self, account: str, asset: str, amount: Decimal | str | int) -> None:
        """Credit (or, negative, debit) free funds: the only way money enters or leaves."""
        amount = Decimal(amount)
        bal = self._bal(account, asset)
        if bal[0] + amount < 0:
            raise ValueError(f"{account}: withdrawing {-amount} {asset} exceeds free {bal[0]}")
        bal[0] += amount

    def balance(self, account: str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked)."""
        b = self.balances.get(account, {}).get(asset)
        return (b[0], b[1]) if b else (ZERO, ZERO)

    def wallet(self, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (b[0], b[1]) for a, b in self.balances.get(account, {}).items()}

    def best_bid(self, symbol: str) -> Decimal | None:
        return self.books[symbol].best(Side.BUY)

    def best_ask(self, symbol: str) -> Decimal | None:
        return self.books[symbol].best(Side.SELL)

    def depth(self, symbol: str, limit: int = 0) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        """(bids best first, asks best first) aggregated per price; ``limit`` 0 = all."""
        book = self.books[symbol]
        out = []
        for side in (Side.BUY, Side.SELL):
            prices = book.prices[side]
            ordered = reversed(prices) if side == Side.BUY else iter(prices)
            levels = []
            for p in ordered:
                levels.append((p, sum((o.remaining for o in book.levels[side][p]), ZERO)))
                if limit and len(levels) >= limit:
                    break
            out.append(levels)
        return out[0], out[1]

    def open_orders(self, account: str, symbol: str | None = None) -> list[OrderEvent]:
        ts = self.clock()
        return [
            self._event(o, "NEW", ts) for o in self.orders.values()
            if o.account == account and (symbol is None or o.spec.symbol == symbol)
        ]  # fmt: skip

    def find(self, account: str, order_id: int = 0, client_order_id: str = "") -> _Order | None:
        if order_id:
            o = self.orders.get(order_id)
            return o if o is not None and o.account == account else None
        return self._by_client.get((account, client_order_id))

    # -- commands

    def place(
        self,
        account: str,
        symbol: str,
        side: Side,
        qty: Decimal | str,
        price: Decimal | str | None = None,
        *,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        client_order_id: str = "",
        reduce_only: bool = False,
    ) -> Result:
        with localcontext(_CTX):
            return self._place(account, symbol, side, Decimal(qty),
                               None if price is None else Decimal(price), order_type, tif,
                               client_order_id, reduce_only)  # fmt: skip

    def cancel(self, account: str, *, order_id: int = 0, client_order_id: str = "") -> Result:
        with localcontext(_CTX):
            o = self.find(account, order_id, client_order_id)
            if o is None:
                return self._reject(Reject.UNKNOWN_ORDER, "unknown order (not open)")
            ts = self.clock()
            self._close(o, OrderStatus.CANCELED)
            return Result(
                accepted=True, order_id=o.order_id, events=(self._event(o, "CANCELED", ts),),
                accounts=(account,),
            )  # fmt: skip

    def cancel_all(self, account: str, symbol: str) -> Result:
        with localcontext(_CTX):
            ts = self.clock()
            events = []
            for o in [o for o in self.orders.values() if o.account == account and o.spec.symbol == symbol]:
                self._close(o, OrderStatus.CANCELED)
                events.append(self._event(o, "CANCELED", ts))
            return Result(accepted=True, events=tuple(events), accounts=(account,) if events else ())

    def amend(
        self,
        account: str,
        *,
        order_id: int = 0,
        client_order_id: str = "",
        new_price: Decimal | str | None = None,
        new_qty: Decimal | str | None = None,
    ) -> Result:
        """Change price and/or total quantity. Priority is kept only when the price is
        unchanged and the quantity does not grow; otherwise the order re-enters the book
        as a new arrival (and may trade)."""
        with localcontext(_CTX):
            o = self.find(account, order_id, client_order_id)
            if o is None:
                return self._reject(Reject.UNKNOWN_ORDER, "unknown order (not open)")
            price = o.price if new_price is None else Decimal(new_price)
            qty = o.qty if new_qty is None else Decimal(new_qty)
            spec = o.spec
            if price <= 0 or price % spec.tick_size:
                return self._reject(Reject.INVALID_PRICE, f"price {price} not on tick {spec.tick_size}")
            if qty <= o.filled or qty % spec.step_size:
                return self._reject(
                    Reject.INVALID_AMEND, f"qty {qty} must be on step and above filled {o.filled}"
                )
            ts = self.clock()
            remaining = qty - o.filled
            if price == o.price and qty <= o.qty:  # keeps priority
                new_lock = self._amend_lock(o, price, remaining)
                self._unlock(o, o.lock - new_lock)
                o.qty = qty
                return Result(
                    accepted=True, order_id=o.order_id, events=(self._event(o, "AMENDED", ts),),
                    accounts=(account,),
                )  # fmt: skip
            book = self.books[spec.symbol]
            if o.tif == TimeInForce.POST_ONLY and self._crosses(book, o.side, price):
                return self._reject(Reject.WOULD_TAKE, "post-only order would trade at the new price")
            new_lock = self._amend_lock(o, price, remaining)
            asset = self._lock_asset(o)
            if self._bal(account, asset)[0] + o.lock < new_lock:
                return self._reject(Reject.INSUFFICIENT_BALANCE, f"insufficient {asset} balance")
            book.remove(o)
            self._unlock(o, o.lock)
            o.price, o.qty = price, qty
            self._lock(o, new_lock)
            self._seq += 1
            o.seq = self._seq
            return self._execute(book, o, price, ts, account, self._event(o, "AMENDED", ts))

    # -- contracts (symbols with a settle asset)

    def _contract(self, symbol: str) -> SymbolSpec | Result:
        book = self.books.get(symbol)
        if book is None:
            return self._reject(Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        if not book.spec.settle:
            return self._reject(Reject.NOT_CONTRACT, f"{symbol} is not a contract")
        return book.spec

    def set_leverage(self, account: str, symbol: str, leverage: Decimal | str | int) -> Result:
        """Leverage of the account's position (and future orders) on ``symbol``: 1 to the
        symbol's ``max_leverage``; a lower one needs free funds for the larger margin."""
        with localcontext(_CTX):
            spec = self._contract(symbol)
            if isinstance(spec, Result):
                return spec
            lev = Decimal(leverage)
            if not lev.is_finite() or not 1 <= lev <= spec.max_leverage:
                return self._reject(Reject.INVALID_LEVERAGE,
                                    f"leverage {lev} is not in 1..{spec.max_leverage}")  # fmt: skip
            delta = self.contracts.margin_after(account, symbol, lev)
            b = self._bal(account, spec.settle)
            if delta > b[0]:
                return self._reject(Reject.INSUFFICIENT_BALANCE,
                                    f"insufficient {spec.settle} margin for leverage {lev}")  # fmt: skip
            self.contracts.set_leverage(account, symbol, lev)
            b[0] -= delta
            b[1] += delta
            return Result(accepted=True, accounts=(account,))

    def set_margin_mode(self, account: str, symbol: str, isolated: bool) -> Result:
        """Cross or isolated margin on ``symbol``: only without a position or open orders."""
        spec = self._contract(symbol)
        if isinstance(spec, Result):
            return spec
        p = self.contracts.position(account, symbol)
        if p.size:
            return self._reject(Reject.MARGIN_MODE, "margin mode cannot change with a position")
        if any(o.account == account and o.spec.symbol == symbol for o in self.orders.values()):
            return self._reject(Reject.MARGIN_MODE, "margin mode cannot change with open orders")
        p.margin_mode = ISOLATED if isolated else CROSS
        return Result(accepted=True, accounts=(account,))

    def fund(self, symbol: str, mark: Decimal, rate: Decimal) -> list[tuple[str, Decimal]]:
        """Pay funding on every open position of ``symbol`` (longs pay shorts when
        ``rate`` > 0): (account, amount received) per position, in the settle asset."""
        with localcontext(_CTX):
            spec = self.books[symbol].spec
            out = []
            for p, amount in self.contracts.funding(symbol, mark, rate, spec.fee_places,
                                                    self.clock()):  # fmt: skip
                self._bal(p.account, spec.settle)[0] += amount
                out.append((p.account, amount))
            return out

    # -- internals

    def _bal(self, account: str, asset: str) -> list[Decimal]:
        acct = self.balances.setdefault(account, {})
        b = acct.get(asset)
        if b is None:
            b = acct[asset] = [ZERO, ZERO]
        return b

    @staticmethod
    def _lock_asset(o: _Order) -> str:
        return o.spec.settle or (o.spec.quote if o.side == Side.BUY else o.spec.base)

    def _amend_lock(self, o: _Order, price: Decimal, remaining: Decimal) -> Decimal:
        """What an amended order locks: spot its funds, a contract its margin."""
        if o.spec.settle:
            o.lock_rate = self.contracts.order_margin(
                o.account, o.spec.symbol, o.side == Side.BUY, remaining, price, o.reduce_only
            ) / remaining
            return o.lock_rate * remaining
        return price * remaining if o.side == Side.BUY else remaining

    def _lock(self, o: _Order, amount: Decimal) -> None:
        b = self._bal(o.account, self._lock_asset(o))
        b[0] -= amount
        b[1] += amount
        o.lock += amount

    def _unlock(self, o: _Order, amount: Decimal) -> None:
        if amount <= 0:
            return
        b = self._bal(o.account, self._lock_asset(o))
        b[0] += amount
        b[1] -= amount
        o.lock -= amount

    @staticmethod
    def _reject(code: str, reason: str) -> Result:
        return Result(accepted=False, code=code, reason=reason)

    @staticmethod
    def _crosses(book: _Book, side: Side, price: Decimal) -> bool:
        best = book.best(Side.SELL if side == Side.BUY else Side.BUY)
        return best is not None and (best <= price if side == Side.BUY else best >= price)

    def _event(self, o: _Order, exec_type: str, ts: int, **kw) -> OrderEvent:
        return OrderEvent(
            order_id=o.order_id, client_order_id=o.client_order_id, account=o.account,
            symbol=o.spec.symbol, side=o.side, order_type=o.order_type, tif=o.tif,
            price=o.price, qty=o.qty, filled_qty=o.filled, cum_quote=o.cum_quote,
            status=o.status, exec_type=exec_type, ts=ts, on_book=o.order_id in self.orders,
            reduce_only=o.reduce_only, **kw,
        )  # fmt: skip

    def _place(self, account, symbol, side, qty, price, order_type, tif, cid, reduce_only) -> Result:
        book = self.books.get(symbol)
        if book is None:
            return self._reject(Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        spec = book.spec
        if not qty.is_finite() or qty <= 0 or qty % spec.step_size:
            return self._reject(Reject.INVALID_QTY, f"qty {qty} is not a positive multiple of {spec.step_size}")
        if qty < spec.min_qty:
            return self._reject(Reject.MIN_QTY, f"qty {qty} is below the minimum {spec.min_qty}")
        if cid and (account, cid) in self._by_client:
            return self._reject(Reject.DUPLICATE_CLIENT_ID, f"client order id {cid!r} is in use")
        if order_type == OrderType.MARKET:
            if price is not None or tif in (TimeInForce.POST_ONLY, TimeInForce.FOK):
                return self._reject(Reject.INVALID_PRICE, "market orders take no price and no FOK/post-only")
            tif = TimeInForce.IOC
            limit = None
        else:
            if price is None or not price.is_finite() or price <= 0 or price % spec.tick_size:
                return self._reject(Reject.INVALID_PRICE, f"price {price} is not on the tick {spec.tick_size}")
            if price * qty < spec.min_notional:
                return self._reject(Reject.MIN_NOTIONAL, f"notional {price * qty} is below {spec.min_notional}")
            limit = price
        if tif == TimeInForce.POST_ONLY and self._crosses(book, side, price):
            return self._reject(Reject.WOULD_TAKE, "post-only order would immediately match and take")
        # funds
        if spec.settle:  # a contract: margin for what the order opens
            buy = side == Side.BUY
            if reduce_only and not self.contracts.closable(account, symbol, buy):
                return self._reject(Reject.REDUCE_ONLY, "reduce-only order: no opposite position")
            ref = limit if limit is not None else self._market_cost(book, side, qty)[1]
            need = self.contracts.order_margin(account, symbol, buy, qty, ref, reduce_only)
            asset = spec.settle
        elif side == Side.SELL:
            need, asset = qty, spec.base
        elif limit is not None:
            need, asset = limit * qty, spec.quote
        else:  # market buy: the cost of what the book can fill now
            need, asset = self._market_cost(book, side, qty)[0], spec.quote
        if self._bal(account, asset)[0] < need:
            return self._reject(Reject.INSUFFICIENT_BALANCE, f"insufficient {asset} balance")
        ts = self.clock()
        self._seq += 1
        o = _Order(self._next_order_id, account, cid, spec, side, order_type, tif,
                   price if price is not None else ZERO, qty, self._seq,
                   reduce_only=reduce_only, lock_rate=need / qty)  # fmt: skip
        self._next_order_id += 1
        self._lock(o, need)
        if tif == TimeInForce.FOK:
            fillable = sum((m.remaining for m in book.crossing(side, limit)), ZERO)
            if fillable < qty:
                new = self._event(o, "NEW", ts)
                o.status = OrderStatus.EXPIRED
                self._unlock(o, o.lock)
                return Result(
                    accepted=True, order_id=o.order_id,
                    events=(new, self._event(o, "EXPIRED", ts)), accounts=(account,),
                )  # fmt: skip
        return self._execute(book, o, limit, ts, account, self._event(o, "NEW", ts))

    @staticmethod
    def _market_cost(book: _Book, side: Side, qty: Decimal) -> tuple[Decimal, Decimal]:
        """(cost, average price) of what the book can fill of ``qty`` now (0s if none)."""
        cost, left = ZERO, qty
        for m in book.crossing(side, None):
            q = min(left, m.remaining)
            cost += q * m.price
            left -= q
            if not left:
                break
        filled = qty - left
        return cost, cost / filled if filled else ZERO

    def _execute(self, book, o: _Order, limit, ts: int, account: str, first) -> Result:
        """Match ``o`` (after its ``first`` event: NEW or AMENDED), rest or finish it, and
        report every event, fill and touched account."""
        events = [first]
        fills: list[Fill] = []
        touched = {account}
        self._match(book, o, limit, ts, events, fills, touched)
        self._finish(book, o, ts, events)
        return Result(
            accepted=True, order_id=o.order_id, events=tuple(events), fills=tuple(fills),
            accounts=tuple(sorted(touched)),
        )  # fmt: skip

    def _match(self, book, o: _Order, limit, ts, events, fills, touched) -> None:
        spec = o.spec
        for m in book.crossing(o.side, limit):
            if not o.remaining:
                break
            if m is o:
                continue
            q = min(o.remaining, m.remaining)
            if spec.settle:  # reduce-only orders never trade beyond the position
                if o.reduce_only:
                    q = min(q, self._closable(o))
                    if not q:
                        break
                if m.reduce_only:
                    cap = self._closable(m)
                    if not cap:
                        self._close(m, OrderStatus.EXPIRED)
                        events.append(self._event(m, "EXPIRED", ts))
                        touched.add(m.account)
                        continue
                    q = min(q, cap)
            p = m.price
            notional = p * q
            trade_id = self._next_trade_id[spec.symbol]
            self._next_trade_id[spec.symbol] = trade_id + 1
            buyer, seller = (o, m) if o.side == Side.BUY else (m, o)
            buyer_rate = spec.taker_fee if buyer is o else spec.maker_fee
            seller_rate = spec.taker_fee if seller is o else spec.maker_fee
            places = Decimal(1).scaleb(-spec.fee_places)
            pnl: dict[int, tuple[Decimal, Decimal]] = {}
            none = (ZERO, ZERO)
            if spec.settle:  # both pay their fee on the notional, in the settle asset
                buyer_fee = (notional * buyer_rate).quantize(places, ROUND_HALF_UP)
                seller_fee = (notional * seller_rate).quantize(places, ROUND_HALF_UP)
                pnl[buyer.order_id] = self._settle_contract(buyer, q, p, buyer_fee, ts)
                pnl[seller.order_id] = self._settle_contract(seller, -q, p, seller_fee, ts)
            else:
                buyer_fee = (q * buyer_rate).quantize(places, ROUND_HALF_UP)
                seller_fee = (notional * seller_rate).quantize(places, ROUND_HALF_UP)
                # buyer pays quote from its lock, receives base minus fee
                qb = self._bal(buyer.account, spec.quote)
                qb[1] -= notional
                buyer.lock -= notional
                self._bal(buyer.account, spec.base)[0] += q - buyer_fee
                # seller delivers base from its lock, receives quote minus fee
                self._bal(seller.account, spec.base)[1] -= q
                seller.lock -= q
                self._bal(seller.account, spec.quote)[0] += notional - seller_fee
                self.fees[spec.base] = self.fees.get(spec.base, ZERO) + buyer_fee
                self.fees[spec.quote] = self.fees.get(spec.quote, ZERO) + seller_fee
            for x in (o, m):
                x.filled += q
                x.cum_quote += notional
                x.status = OrderStatus.FILLED if not x.remaining else OrderStatus.PARTIALLY_FILLED
            if not m.remaining:
                book.remove(m)
                self._forget(m)
                self._unlock(m, m.lock)  # a buy maker's lock is exact; nothing is left
            touched.add(m.account)
            taker_fee, maker_fee = (buyer_fee, seller_fee) if buyer is o else (seller_fee, buyer_fee)
            taker_asset = spec.settle or (spec.base if buyer is o else spec.quote)
            maker_asset = spec.settle or (spec.quote if buyer is o else spec.base)
            fills.append(Fill(
                trade_id=trade_id, symbol=spec.symbol, price=p, qty=q, taker_side=o.side,
                taker_order_id=o.order_id, maker_order_id=m.order_id, taker_account=o.account,
                maker_account=m.account, taker_fee=taker_fee, taker_fee_asset=taker_asset,
                maker_fee=maker_fee, maker_fee_asset=maker_asset, ts=ts,
            ))  # fmt: skip
            m_pnl, o_pnl = pnl.get(m.order_id, none), pnl.get(o.order_id, none)
            events.append(self._event(m, "TRADE", ts, last_qty=q, last_price=p, fee=maker_fee,
                                      fee_asset=maker_asset, trade_id=trade_id, is_maker=True,
                                      realized_pnl=m_pnl[0], closed_qty=m_pnl[1]))
            events.append(self._event(o, "TRADE", ts, last_qty=q, last_price=p, fee=taker_fee,
                                      fee_asset=taker_asset, trade_id=trade_id,
                                      realized_pnl=o_pnl[0], closed_qty=o_pnl[1]))

    def _closable(self, o: _Order) -> Decimal:
        return self.contracts.closable(o.account, o.spec.symbol, o.side == Side.BUY)

    def _settle_contract(self, x: _Order, signed_qty: Decimal, price: Decimal, fee: Decimal,
                         ts: int) -> tuple[Decimal, Decimal]:  # fmt: skip
        """One side of a contract fill: release the order margin of the filled part, book
        the position (its margin moves to ``locked``), realized PnL and the fee; returns
        (realized PnL, closed quantity)."""
        settle = x.spec.settle
        b = self._bal(x.account, settle)
        release = min(x.lock, (abs(signed_qty) * x.lock_rate).quantize(MARGIN_PLACES))
        x.lock -= release
        realized, dm, closed = self.contracts.fill(x.account, x.spec.symbol, signed_qty, price, ts)
        b[0] += release + realized - fee - dm
        b[1] += dm - release
        self.fees[settle] = self.fees.get(settle, ZERO) + fee
        return realized, closed

    def _finish(self, book: _Book, o: _Order, ts: int, events: list) -> None:
        """Rest a GTC/post-only remainder; expire an IOC/FOK/market one; release funds."""
        if not o.remaining:
            self._forget(o)
            self._unlock(o, o.lock)
            return
        rests = o.tif in (TimeInForce.GTC, TimeInForce.POST_ONLY) and o.order_type == OrderType.LIMIT
        if o.reduce_only and o.spec.settle and not self._closable(o):
            rests = False  # nothing left to reduce: the rest expires
        if rests:
            if o.side == Side.BUY and not o.spec.settle:  # fills at better prices leave surplus lock
                self._unlock(o, o.lock - o.price * o.remaining)
            if o.order_id not in self.orders:
                self.orders[o.order_id] = o
                if o.client_order_id:
                    self._by_client[(o.account, o.client_order_id)] = o
            book.add(o)
            return
        o.status = OrderStatus.EXPIRED
        self._forget(o)
        self._unlock(o, o.lock)
        events.append(self._event(o, "EXPIRED", ts))

    def _forget(self, o: _Order) -> None:
        self.orders.pop(o.order_id, None)
        if o.client_order_id and self._by_client.get((o.account, o.client_order_id)) is o:
            del self._by_client[(o.account, o.client_order_id)]

    def _close(self, o: _Order, status: OrderStatus) -> None:
        self.books[o.spec.symbol].remove(o)
        self._forget(o)
        o.status = status
        self._unlock(o, o.lock)
