"""Trading core of the simulator, shared by both venues: API keys and balances, the order
records the REST/stream layers answer from, and the wiring of the matching engine to the
synthetic market.

User orders live in a :class:`~ttxt_mp.sim.matching.MatchingEngine` (one per venue). The
synthetic market's book is the other side: before a user order (or a price-changing amend)
is matched, the opposite-side synthetic levels it can reach are mirrored into the engine
as orders of the market account ``MARKET``; after matching, those mirror orders are
withdrawn and what was taken from them is removed from the synthetic book (a book event
plus public trades, so depth and trade streams show the fill). Resting user orders are
invisible in the public book; after every market step :meth:`TradingCore.settle` fills the
ones the synthetic book has moved through (the synthetic level trades as taker against the
user's order, at the user's price). Everything is driven by the simulator's clock and the
order of commands, so a run is deterministic for a seed.

The synthetic flow (market orders, crossing limit orders) meets resting user orders like
a venue's incoming orders do: best price first, then queue order, a user's order behind
the synthetic size that was at its price when it was placed (:mod:`ttxt_mp.sim.resting`).
Those fills are public trades and private fills at the user's price with the maker fee.

A venue of linear contracts (perpetuals) calls :meth:`TradingCore.use_contracts` when it
attaches: every symbol then settles in its quote asset (margin, realized PnL, fees; see
:mod:`ttxt_mp.sim.contracts`), with leverage and margin mode per account and symbol and
funding paid every ``funding_interval_s`` at the mark price (``mark_source``, the mid by
default) and ``funding_rate``. ``contract_listeners`` hear of leverage, margin-mode and
funding changes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec

from ttxt_mp.events import OrderStatus, OrderType, Side, TimeInForce
from ttxt_mp.sim.contracts import Position
from ttxt_mp.sim.market import Market
from ttxt_mp.sim.matching import MatchingEngine, OrderEvent, Reject, Result, SymbolSpec
from ttxt_mp.sim.resting import UserQueue

MARKET = "\x00market"  # account of the synthetic liquidity (never an API key)
_MARKET_FUNDS = Decimal(10) ** 15
MAX_MIRROR_LEVELS = 2000


class AccountSpec(msgspec.Struct, frozen=True):
    """One API key: its secret, its opening balances (asset -> decimal string) and the
    key's passphrase (venues whose keys have one; empty: none set)."""

    api_key: str
    secret: str
    balances: dict[str, str] = {}
    passphrase: str = ""

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return (f"AccountSpec(api_key={self.api_key!r}, secret='***', "
                f"balances={self.balances!r}, passphrase='***')")  # fmt: skip


def parse_account(text: str) -> AccountSpec:
    """``KEY:SECRET:USDT=10000,BTC=1[:PASSPHRASE]`` (the ``--account`` CLI form)."""
    parts = text.split(":", 3)
    phrase = parts.pop() if len(parts) == 4 else ""
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("account must look like KEY:SECRET[:ASSET=AMOUNT,...[:PASSPHRASE]]")
    balances: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            asset, sep, amount = item.partition("=")
            if not sep or not asset.isalnum():
                raise ValueError(f"balance {item!r} must look like ASSET=AMOUNT")
            try:
                value = Decimal(amount)
            except ArithmeticError as e:
                raise ValueError(f"balance {item!r}: amount is not a decimal") from e
            if not value.is_finite() or value < 0:
                raise ValueError(f"balance {item!r}: amount must be a finite decimal >= 0")
            balances[asset.upper()] = amount
    return AccountSpec(parts[0], parts[1], balances, phrase)


class OrderRecord(msgspec.Struct):
    """Everything the venues report about one user order, open or closed."""

    last: OrderEvent
    created_ms: int
    updated_ms: int
    fees: dict[str, Decimal] = {}
    fills: int = 0


def ms(ts_ns: int) -> int:
    return ts_ns // 1_000_000


class TradingCore:
    """Accounts, matching and the synthetic liquidity of one venue. Venues subscribe to
    ``listeners`` (called with every accepted :class:`Result`, user events only) and
    ``balance_listeners`` (deposits)."""

    def __init__(
        self,
        markets: Mapping[str, Market],
        maker_fee: Decimal | str = "0.001",
        taker_fee: Decimal | str = "0.001",
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.markets = dict(markets)
        self.clock_ns = clock_ns
        self.specs: dict[str, SymbolSpec] = {}
        for sym, m in self.markets.items():
            self.specs[sym] = SymbolSpec(
                symbol=sym, base=m.spec.base, quote=m.spec.quote, tick_size=Decimal(m.spec.tick),
                step_size=Decimal(m.spec.step), maker_fee=Decimal(maker_fee),
                taker_fee=Decimal(taker_fee),
            )  # fmt: skip
        self._new_engine()
        self.maker_fee = Decimal(maker_fee)
        self.taker_fee = Decimal(taker_fee)
        self._secrets: dict[str, str] = {}
        self._passphrases: dict[str, str] = {}
        self.orders: dict[int, OrderRecord] = {}
        self._by_client: dict[tuple[str, str, str], int] = {}
        # Closed orders stay queryable, the oldest forgotten beyond CLOSED_ORDERS_KEPT
        # (a long run must not grow without bound, like a venue's order history).
        self._closed: deque[int] = deque()
        self.listeners: list[Callable[[Result], None]] = []
        self.balance_listeners: list[Callable[[str, str, Decimal, int], None]] = []
        self.forget_listeners: list[Callable[[int], None]] = []  # a closed order dropped
        # Contracts (use_contracts): (api key, symbol, what: LEVERAGE | MARGIN_MODE |
        # FUNDING, funding amount received, ms)
        self.contracts = False
        self.contract_listeners: list[Callable[[str, str, str, Decimal, int], None]] = []
        self.funding_interval_ns = 8 * 3600 * 10**9
        self.funding_rate = Decimal("0.0001")
        self.mark_source: Callable[[str], Decimal] | None = None
        self.rate_source: Callable[[str], Decimal] | None = None  # else funding_rate
        self.next_funding_ns = 0

    def _new_engine(self) -> None:
        self.engine = MatchingEngine(self.specs.values(), clock=self.clock_ns)
        for asset in {a for s in self.specs.values() for a in (s.base, s.quote, s.settle) if a}:
            self.engine.deposit(MARKET, asset, _MARKET_FUNDS)
        self.queues = {sym: UserQueue(self, sym, MARKET) for sym in self.specs}
        for sym, q in self.queues.items():
            self.markets[sym].resting = q

    # ------------------------------------------------------------ contracts

    def use_contracts(self, *, max_leverage: Decimal | int = 100,
                      default_leverage: Decimal | int = 10, funding_interval_s: float = 8 * 3600,
                      funding_rate: Decimal | str = "0.0001") -> None:  # fmt: skip
        """Make every symbol a linear contract settled in its quote asset (call before any
        account or order: a venue adapter's ``attach_trading``)."""
        if self._secrets or self.orders:
            raise RuntimeError("use_contracts: the core already has accounts or orders")
        self.specs = {sym: msgspec.structs.replace(s, settle=s.quote,
                                                   max_leverage=Decimal(max_leverage))
                      for sym, s in self.specs.items()}  # fmt: skip
        self._new_engine()
        self.engine.contracts.default_leverage = Decimal(default_leverage)
        self.contracts = True
        self.funding_interval_ns = int(funding_interval_s * 1e9)
        self.funding_rate = Decimal(funding_rate)
        self.next_funding_ns = 0

    def mark(self, symbol: str) -> Decimal:
        return self.mark_source(symbol) if self.mark_source is not None else self.mid(symbol)

    def position(self, api_key: str, symbol: str) -> Position:
        return self.engine.contracts.position(api_key, symbol)

    def positions(self, api_key: str) -> list[Position]:
        return [p for (a, _), p in self.engine.contracts.positions.items() if a == api_key]

    def set_leverage(self, api_key: str, symbol: str, leverage: Decimal) -> Result:
        r = self.engine.set_leverage(api_key, symbol, leverage)
        if r.accepted:
            self._contract_event(api_key, symbol, "LEVERAGE")
        return r

    def set_margin_mode(self, api_key: str, symbol: str, isolated: bool) -> Result:
        r = self.engine.set_margin_mode(api_key, symbol, isolated)
        if r.accepted:
            self._contract_event(api_key, symbol, "MARGIN_MODE")
        return r

    def _contract_event(self, api_key: str, symbol: str, what: str,
                        amount: Decimal = Decimal(0)) -> None:  # fmt: skip
        now = ms(self.clock_ns())
        for fn in self.contract_listeners:
            fn(api_key, symbol, what, amount, now)

    def fund_now(self, rate: Decimal | str | None = None) -> None:
        """Pay funding on every symbol now (``rate``: this once, else ``funding_rate``)."""
        for sym in self.specs:
            r = Decimal(rate) if rate is not None else (
                self.rate_source(sym) if self.rate_source is not None else self.funding_rate)
            for acct, amount in self.engine.fund(sym, self.mark(sym), r):
                if acct != MARKET:
                    self._contract_event(acct, sym, "FUNDING", amount)

    def maybe_fund(self) -> None:
        """Funding when a funding time has passed (every ``funding_interval_ns`` of the
        clock, aligned to multiples of it, like the venues' 00:00/08:00/16:00 UTC)."""
        if not self.contracts or self.funding_interval_ns <= 0:
            return
        now = self.clock_ns()
        step = self.funding_interval_ns
        if not self.next_funding_ns:
            self.next_funding_ns = (now // step + 1) * step
        if now >= self.next_funding_ns:
            self.next_funding_ns = (now // step + 1) * step
            self.fund_now()

    # ------------------------------------------------------------ accounts

    def add_account(self, spec: AccountSpec) -> None:
        if not spec.api_key or not spec.secret:
            raise ValueError("api key and secret must be non-empty")
        if spec.api_key in self._secrets:
            raise ValueError(f"api key {spec.api_key!r} is already registered")
        self._secrets[spec.api_key] = spec.secret
        self._passphrases[spec.api_key] = spec.passphrase
        for asset, amount in spec.balances.items():
            self.engine.deposit(spec.api_key, asset.upper(), Decimal(amount))
        self.engine.balances.setdefault(spec.api_key, {})

    def has_key(self, api_key: str) -> bool:
        return api_key in self._secrets

    def secret(self, api_key: str) -> str:
        return self._secrets[api_key]

    def passphrase(self, api_key: str) -> str:
        """The key's passphrase ("" when its account set none)."""
        return self._passphrases.get(api_key, "")

    def deposit(self, api_key: str, asset: str, amount: Decimal | str) -> None:
        """Credit (or debit) free funds and tell the venues (Binance ``balanceUpdate``)."""
        if api_key not in self._secrets:
            raise KeyError(f"unknown api key {api_key!r}")
        amount = Decimal(amount)
        self.engine.deposit(api_key, asset, amount)
        now = ms(self.clock_ns())
        for fn in self.balance_listeners:
            fn(api_key, asset, amount, now)

    def wallet(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        return self.engine.wallet(api_key)

    # ------------------------------------------------------------ queries

    def find(self, api_key: str, symbol: str, order_id: int = 0, client_order_id: str = ""
             ) -> OrderRecord | None:
        """Any order of this key (open or closed) by id, or by client id (latest use)."""
        if order_id:
            rec = self.orders.get(order_id)
        else:
            oid = self._by_client.get((api_key, symbol, client_order_id))
            rec = self.orders.get(oid) if oid is not None else None
        if rec is None or rec.last.account != api_key or rec.last.symbol != symbol:
            return None
        return rec

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[OrderRecord]:
        return [self.orders[o.order_id] for o in self.engine.open_orders(api_key, symbol)]

    def qty_for_quote(self, symbol: str, side: Side, quote: Decimal) -> Decimal:
        """Base quantity (on the lot) that ``quote`` buys or sells against the synthetic
        book now: Binance ``quoteOrderQty``, Bybit spot market orders in ``quoteCoin``."""
        spec, book = self.specs[symbol], self.markets[symbol].book
        levels = book.asks if side == Side.BUY else book.bids
        left, qty = quote, Decimal(0)
        for tick, lots in levels.top(MAX_MIRROR_LEVELS):
            p = tick * spec.tick_size
            take = min(lots * spec.step_size, left / p)
            qty += take
            left -= take * p
            if left <= 0:
                break
        return qty - qty % spec.step_size

    def mid(self, symbol: str) -> Decimal:
        book, spec = self.markets[symbol].book, self.specs[symbol]
        ticks = [t for t in (book.bids.best(), book.asks.best()) if t is not None]
        return sum(ticks) * spec.tick_size / len(ticks) if ticks else spec.tick_size

    # ------------------------------------------------------------ commands

    def place(self, api_key: str, symbol: str, side: Side, qty: Decimal, price: Decimal | None,
              order_type: OrderType, tif: TimeInForce, client_order_id: str,
              reduce_only: bool = False) -> Result:  # fmt: skip
        self.settle(symbol)
        limit = price if order_type == OrderType.LIMIT else None
        return self._with_liquidity(symbol, side, limit, qty, lambda: self.engine.place(
            api_key, symbol, side, qty, price, order_type=order_type, tif=tif,
            client_order_id=client_order_id, reduce_only=reduce_only))

    def cancel(self, api_key: str, order_id: int = 0, client_order_id: str = "") -> Result:
        r = self.engine.cancel(api_key, order_id=order_id, client_order_id=client_order_id)
        self._record(r)
        return r

    def amend(self, api_key: str, order_id: int, new_qty: Decimal | None = None,
              new_price: Decimal | None = None, new_client_order_id: str | None = None) -> Result:
        o = self.engine.orders.get(order_id)
        if o is None or o.account != api_key:
            return Result(accepted=False, code=Reject.UNKNOWN_ORDER, reason="unknown order (not open)")
        symbol = o.spec.symbol
        self.settle(symbol)
        price = o.price if new_price is None else new_price
        r = self._with_liquidity(symbol, o.side, price, None, lambda: self.engine.amend(
            api_key, order_id=order_id, new_qty=new_qty, new_price=new_price), record=False)
        if r.accepted and new_client_order_id is not None and new_client_order_id != o.client_order_id:
            r = self._rename(o, new_client_order_id, r)
        self._record(r)
        return r

    def _rename(self, o, cid: str, r: Result) -> Result:  # noqa: ANN001 - engine-internal order
        """Give an amended order a new client order id (Binance ``newClientOrderId``)."""
        eng = self.engine
        key = (o.account, o.client_order_id)
        if eng._by_client.get(key) is o:
            del eng._by_client[key]
        o.client_order_id = cid
        if o.order_id in eng.orders:
            eng._by_client[(o.account, cid)] = o
        events = tuple(msgspec.structs.replace(e, client_order_id=cid) if e.order_id == o.order_id
                       else e for e in r.events)
        return msgspec.structs.replace(r, events=events)

    # ------------------------------------------------------------ liquidity

    def _with_liquidity(self, symbol: str, side: Side, limit: Decimal | None, qty: Decimal | None,
                        fn: Callable[[], Result], record: bool = True) -> Result:
        """Mirror the synthetic levels an order can reach, run it, withdraw the mirror and
        take what it traded out of the synthetic book."""
        spec, m = self.specs[symbol], self.markets[symbol]
        opp_side = Side.SELL if side == Side.BUY else Side.BUY
        levels = m.book.side(opp_side == Side.BUY)
        mirror: dict[int, int] = {}  # engine order id -> synthetic tick
        cum = Decimal(0)
        for tick, lots in levels.top(MAX_MIRROR_LEVELS):
            price = tick * spec.tick_size
            if limit is not None and (price > limit if side == Side.BUY else price < limit):
                break
            if limit is None and qty is not None and cum >= qty:
                break
            q = lots * spec.step_size
            mr = self.engine.place(MARKET, symbol, opp_side, q, price)
            mirror[mr.order_id] = tick
            cum += q
        try:
            r = fn()
        finally:
            self.engine.cancel_all(MARKET, symbol)
        taken: dict[int, int] = {}
        trades: list[tuple[bool, int, int]] = []
        for f in r.fills:
            if f.maker_account == MARKET:
                tick = mirror[f.maker_order_id]
                lots = int(f.qty / spec.step_size)
                taken[tick] = taken.get(tick, 0) + lots
                trades.append((side == Side.BUY, tick, lots))
        if taken:
            changes = []
            for tick, lots in taken.items():
                new = max(0, levels.levels.get(tick, 0) - lots)
                levels.set(tick, new)
                changes.append((levels.is_bid, tick, new))
            m._emit(changes, trades, ms(self.clock_ns()))
        if record:
            self._record(r)
        return r

    def settle(self, symbol: str | None = None) -> None:
        """Fill resting user orders the synthetic book has crossed (the synthetic level is
        the taker, the user's order the maker at its own price); with no ``symbol`` (a
        clock step) also pay funding when it is due."""
        if symbol is None:
            self.maybe_fund()
        for sym in ([symbol] if symbol is not None else list(self.specs)):
            if not self.engine.orders:
                return
            spec, m = self.specs[sym], self.markets[sym]
            changes: list[tuple[bool, int, int]] = []
            trades: list[tuple[bool, int, int]] = []
            for user_side in (Side.BUY, Side.SELL):
                levels = m.book.side(user_side == Side.SELL)  # user bids meet synthetic asks
                while True:
                    best = (self.engine.best_bid(sym) if user_side == Side.BUY
                            else self.engine.best_ask(sym))
                    t = levels.best()
                    if best is None or t is None:
                        break
                    price = t * spec.tick_size
                    if price > best if user_side == Side.BUY else price < best:
                        break
                    lots = levels.levels[t]
                    r = self.engine.place(MARKET, sym, Side.SELL if user_side == Side.BUY else Side.BUY,
                                          lots * spec.step_size, price, tif=TimeInForce.IOC)
                    used = sum((f.qty for f in r.fills), Decimal(0))
                    if not used:
                        break
                    used_lots = int(used / spec.step_size)
                    levels.set(t, lots - used_lots)
                    changes.append((levels.is_bid, t, lots - used_lots))
                    trades.extend((user_side == Side.SELL, int(f.price / spec.tick_size),
                                   int(f.qty / spec.step_size)) for f in r.fills)
                    self._record(r)
            if changes:
                m._emit(changes, trades, ms(self.clock_ns()))

    # ------------------------------------------------------------ records

    def _record(self, r: Result) -> None:
        """Keep the last state of every user order and tell the venues."""
        if not r.accepted:
            return
        user_events = tuple(e for e in r.events if e.account != MARKET)
        for e in user_events:
            self.queues[e.symbol].track(e.order_id)
            rec = self.orders.get(e.order_id)
            t = ms(e.ts)
            if rec is None:
                rec = self.orders[e.order_id] = OrderRecord(e, t, t, {})
                if e.client_order_id:
                    self._by_client[(e.account, e.symbol, e.client_order_id)] = e.order_id
            else:
                rec.last, rec.updated_ms = e, t
                if e.client_order_id:
                    self._by_client[(e.account, e.symbol, e.client_order_id)] = e.order_id
            if e.exec_type == "TRADE" and e.fee_asset:
                rec.fees[e.fee_asset] = rec.fees.get(e.fee_asset, Decimal(0)) + e.fee
                rec.fills += 1
            if e.status in FINAL:
                self._closed.append(e.order_id)
        while len(self._closed) > CLOSED_ORDERS_KEPT:
            self._forget(self._closed.popleft())
        if not user_events:
            return
        user_result = msgspec.structs.replace(
            r, events=user_events, accounts=tuple(a for a in r.accounts if a != MARKET))
        for fn in self.listeners:
            fn(user_result)


    def _forget(self, order_id: int) -> None:
        rec = self.orders.get(order_id)
        if rec is None or rec.last.status not in FINAL:
            return
        del self.orders[order_id]
        key = (rec.last.account, rec.last.symbol, rec.last.client_order_id)
        if self._by_client.get(key) == order_id:
            del self._by_client[key]
        for fn in self.forget_listeners:
            fn(order_id)


FINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
CLOSED_ORDERS_KEPT = 100_000
