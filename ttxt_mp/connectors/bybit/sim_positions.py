"""Bybit v5 linear (USDT perpetual) positions on the simulated ``bybit_linear`` venue: the
position endpoints and the ``position`` topic over the simulator's contract accounts
(:mod:`ttxt_mp.sim.contracts`).

Written from the Bybit v5 documentation (bybit-exchange.github.io/docs/v5): "Get Position
Info" (``GET /v5/position/list``: ``category`` linear, ``symbol`` or ``settleCoin``
required; a symbol returns its position even when empty, ``side`` ``""``), "Set Leverage"
(``POST /v5/position/set-leverage``: ``buyLeverage``/``sellLeverage`` in (0, max]; one-way
mode needs them equal), "Set Margin Mode" (``POST /v5/account/set-margin-mode``:
``ISOLATED_MARGIN``, ``REGULAR_MARGIN`` i.e. cross, ``PORTFOLIO_MARGIN``; account-wide on
a unified account; failure ``3400045`` "Set margin mode failed" with ``reasons``),
WebSocket "Position" (``position`` / ``position.linear``), "Error Codes" (110007
"Insufficient available balance", 110012 "Available balance not enough", 110013 "Due to
risk limit, cannot set leverage", 110017 "Reduce-only rule not satisfied", 110043 "Set
leverage not modified"). One-way mode only: ``positionIdx`` 0.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ttxt_mp.sim.contracts import Position

if TYPE_CHECKING:
    from ttxt_mp.connectors.bybit.sim_trading import BybitTrading

__all__ = ["BybitPositions", "MAX_LEVERAGE"]

MAX_LEVERAGE = 100  # the simulated symbols' risk-limit maximum
DEFAULT_LEVERAGE = 10
E_MARGIN = (110007, "Insufficient available balance")
E_LEV_BALANCE = (110012, "Available balance not enough")
E_LEV_RISK = (110013, "Due to risk limit, cannot set leverage")
E_REDUCE_ONLY = (110017, "Reduce-only rule not satisfied")
E_LEV_SAME = (110043, "Set leverage not modified")
E_MODE = (3400045, "Set margin mode failed")
MARGIN_MODES = ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN")


class BybitPositions:
    """The linear category's position side of :class:`BybitTrading` (see module doc)."""

    def __init__(self, api: BybitTrading) -> None:
        self.api = api
        self.core = core = api.core
        venue = api.venue
        knob = getattr(venue, "knob", None)
        interval = 8 * 3600.0
        if knob is not None:
            try:
                interval = float(knob("funding_interval"))
            except (KeyError, AttributeError, ValueError):
                pass
        core.use_contracts(max_leverage=MAX_LEVERAGE, default_leverage=DEFAULT_LEVERAGE,
                           funding_interval_s=interval)  # fmt: skip
        tickers = getattr(venue, "tickers", None)
        if tickers:  # the public ticker's mark price and funding rate
            core.mark_source = lambda s: Decimal(venue.px[s].fmt(tickers[s].mark_ticks()))
            core.rate_source = lambda s: Decimal(tickers[s].fields()["fundingRate"])
        self.account_mode: dict[str, str] = {}  # api key -> setMarginMode
        core.contract_listeners.append(self._on_contract)
        r = venue.app.router
        r.add_get("/v5/position/list", self.list)
        r.add_post("/v5/position/set-leverage", self.set_leverage)
        r.add_post("/v5/account/set-margin-mode", self.set_margin_mode)

    # ---------------------------------------------------------------- REST

    async def list(self, request: Any) -> Any:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            sym = self.api._symbol(p, required=False)
            if sym is None and not p.get("settleCoin"):
                raise self.api.params_error("symbol or settleCoin is required")
            if sym is not None:
                items = [self.core.position(key, sym)]
            else:
                items = [x for x in self.core.positions(key)
                         if x.size and self.core.specs[x.symbol].settle == p["settleCoin"]]  # fmt: skip
            return {"list": [self.shape(x) for x in items], "nextPageCursor": "",
                    "category": "linear"}  # fmt: skip
        return await self.api._handle(request, run)

    async def set_leverage(self, request: Any) -> Any:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            sym = self.api._symbol(p)
            assert sym is not None
            levs = []
            for name in ("buyLeverage", "sellLeverage"):
                try:
                    levs.append(Decimal(str(p[name])))
                except (KeyError, InvalidOperation):
                    raise self.api.params_error(f"{name} is required") from None
            buy, sell = levs
            if not buy.is_finite() or buy <= 0 or buy % Decimal("0.01"):
                raise self.api.params_error("buyLeverage invalid")
            if buy != sell:
                raise self.api.params_error("buy leverage must equal sell leverage in one-way mode")
            if buy > MAX_LEVERAGE:
                raise self.api.error(E_LEV_RISK)
            if self.core.position(key, sym).leverage == buy:
                raise self.api.error(E_LEV_SAME)
            r = self.core.set_leverage(key, sym, buy)
            if not r.accepted:
                raise self.api.error(E_LEV_BALANCE)
            return {}
        return await self.api._handle(request, run)

    async def set_margin_mode(self, request: Any) -> Any:
        def run(key: str, p: dict[str, Any]) -> dict[str, Any]:
            mode = p.get("setMarginMode")
            if mode not in MARGIN_MODES:
                raise self.api.params_error("setMarginMode invalid")
            if mode == "PORTFOLIO_MARGIN":
                raise self.api.error(E_MODE, {"reasons": [{"reasonCode": "3400045",
                    "reasonMsg": "portfolio margin is not simulated"}]})  # fmt: skip
            if self.account_mode.get(key, "REGULAR_MARGIN") == mode:
                return {"reasons": []}
            blocked = [s for s in self.core.specs
                       if self.core.position(key, s).size or self.core.open_orders(key, s)]
            if blocked:
                raise self.api.error(E_MODE, {"reasons": [{"reasonCode": "3400045",
                    "reasonMsg": f"positions or open orders on {', '.join(blocked)}"}]})  # fmt: skip
            for s in self.core.specs:
                self.core.set_margin_mode(key, s, mode == "ISOLATED_MARGIN")
            self.account_mode[key] = mode
            return {"reasons": []}
        return await self.api._handle(request, run)

    # ---------------------------------------------------------------- shapes and pushes

    def shape(self, x: Position) -> dict[str, Any]:
        """One position as in "Get Position Info" and the "Position" topic (linear)."""
        from ttxt_mp.connectors.bybit.sim_trading import dstr

        mark = self.core.mark(x.symbol)
        side = "Buy" if x.size > 0 else "Sell" if x.size < 0 else ""
        value = abs(x.size) * x.entry
        return {
            "positionIdx": 0, "riskId": 1, "riskLimitValue": "2000000", "symbol": x.symbol,
            "side": side, "size": dstr(abs(x.size)), "avgPrice": dstr(x.entry),
            "entryPrice": dstr(x.entry), "positionValue": dstr(value), "tradeMode": 0,
            "autoAddMargin": 0, "positionStatus": "Normal", "leverage": dstr(x.leverage),
            "markPrice": dstr(mark), "liqPrice": "", "bustPrice": "",
            "positionIM": dstr(x.margin), "positionMM": dstr(x.margin / 2),
            "positionBalance": dstr(x.margin), "tpslMode": "Full", "takeProfit": "0",
            "stopLoss": "0", "trailingStop": "0", "unrealisedPnl": dstr(x.upnl(mark)),
            "curRealisedPnl": dstr(x.realized), "cumRealisedPnl": dstr(x.realized),
            "sessionAvgPrice": "", "adlRankIndicator": 0, "isReduceOnly": False,
            "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "",
            "createdTime": str(x.updated_ns // 1_000_000), "updatedTime": str(x.updated_ns // 1_000_000),
            "seq": -1, "category": "linear",
        }  # fmt: skip

    def push(self, key: str, symbols: set[str]) -> None:
        self.api._push(key, ("position", "position.linear"),
                       [self.shape(self.core.position(key, s)) for s in sorted(symbols)])

    def _on_contract(self, key: str, symbol: str, what: str, amount: Decimal, ts: int) -> None:
        self.push(key, {symbol})
        if what == "FUNDING":
            self.api.push_wallet(key, {self.core.specs[symbol].settle})
