"""OKX v5 public market data, instType SWAP (USDT-margined perpetuals: the market
``linear``), written from the OKX v5 documentation (www.okx.com/docs-v5/en: "Get
instruments" (SWAP), "Mark price channel", "Funding rate channel", "Index tickers channel",
"Open interest channel", "Liquidation orders channel"). The spot adapter
(:class:`~ttxt_mp.connectors.okx.sim.OkxVenue`) with:

- instIds ``BTC-USDT-SWAP``; sizes are contracts (here ``ctVal`` 1: one contract is one
  base unit of the simulated market, so the book's quantities read the same);
- ``mark-price`` pushed when it changed (every ``mark_push`` s at most: 200 ms) and every
  ``mark_idle`` s (10 s) when not, ``index-tickers`` (instId the index ``BTC-USDT``)
  likewise every ``index_push`` s (100 ms) when changed and ``index_idle`` s (a minute) when not,
  ``funding-rate`` every ``funding_push`` s (the docs: 30 to 90 s), ``open-interest`` every
  ``oi_push`` s (3 s), each also once to a new subscriber; ``fundingTime`` is the next
  multiple of ``funding_interval``, the rate follows the mark/index premium;
- ``liquidation-orders`` (subscribed by instType SWAP, every instrument) at
  ``liquidations_per_sec`` of market time per symbol, pushed every ``liquidation_push`` s.
The mark and index drift a few ticks around the book's mid when the market steps, so all of
it stands still while the simulator is paused.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ttxt_mp.connectors.okx.sim import OkxVenue
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import BookEvent, Market, Trade
from ttxt_mp.sim.perp import LiquidationFeed, LiquidationPrint, PerpState
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob

__all__ = ["OkxLinearVenue"]

FUNDING_CAP = 0.00375  # "Funding rate channel" example maxFundingRate / minFundingRate


class SwapModel:
    """One swap's public state (:class:`~ttxt_mp.sim.perp.PerpState`) as OKX prints it, and
    what each channel last sent."""

    def __init__(self, venue: OkxLinearVenue, sym: str, market: Market) -> None:
        self.venue, self.sym = venue, sym
        self.perp = PerpState(market, f"okx:{sym}")
        self.liqs = LiquidationFeed(self.perp, f"okx:{sym}")
        self.sent: dict[str, dict[str, str]] = {}  # channel -> the data last sent
        self.sent_at: dict[str, float] = {}  # channel -> when (monotonic)

    def data(self, channel: str) -> dict[str, str]:
        v, perp = self.venue, self.perp
        px, qx = v.px[self.sym], v.qx[self.sym]
        inst = v.inst[self.sym]
        ts = str(perp.ts_ms)
        if channel == "mark-price":
            return {"instType": "SWAP", "instId": inst, "markPx": px.fmt(perp.mark_ticks()),
                    "ts": ts}  # fmt: skip
        if channel == "index-tickers":
            idx = px.fmt(perp.index_ticks())
            return {"instId": inst[:-5], "idxPx": idx, "high24h": idx, "low24h": idx,
                    "open24h": idx, "sodUtc0": idx, "sodUtc8": idx, "ts": ts}  # fmt: skip
        if channel == "funding-rate":
            rate = perp.funding_rate(FUNDING_CAP)
            interval = v.knob("funding_interval")
            nxt = perp.next_funding_ms(interval)
            text = f"{rate:.6f}".rstrip("0").rstrip(".") if rate else "0"
            return {"formulaType": "withRate", "fundingRate": text, "fundingTime": str(nxt),
                    "impactValue": "20000", "instId": inst, "instType": "SWAP",
                    "interestRate": "0.0001", "maxFundingRate": f"{FUNDING_CAP:g}",
                    "method": "current_period", "minFundingRate": f"{-FUNDING_CAP:g}",
                    "nextFundingRate": "", "nextFundingTime": str(nxt + int(interval * 1000)),
                    "premium": text, "settFundingRate": text, "settState": "settled",
                    "ts": ts}  # fmt: skip
        # open-interest: oi contracts, oiCcy base (ctVal 1), oiUsd at the mark
        oi = qx.fmt(perp.open_interest)
        usd = qx.to_float(perp.open_interest) * px.to_float(perp.mark_ticks())
        return {"instId": inst, "instType": "SWAP", "oi": oi, "oiCcy": oi, "oiUsd": f"{usd:.2f}",
                "ts": ts}


CHANNELS = ("mark-price", "index-tickers", "funding-rate", "open-interest")
_ON_CHANGE = ("mark-price", "index-tickers")  # pushed only when changed


class OkxLinearVenue(OkxVenue):
    """See the module docstring."""

    name = "okx_linear"
    inst_type = "SWAP"
    inst_suffix = "-SWAP"
    knobs = OkxVenue.knobs + (
        Knob("mark_push", 0.2, "mark-price push period in seconds when changed (200 ms)"),
        Knob("index_push", 0.1, "index-tickers push period in seconds when changed (100 ms)"),
        Knob("mark_idle", 10.0, "mark-price push period in seconds when unchanged (10 s)"),
        Knob("index_idle", 60.0, "index-tickers push period in seconds when unchanged (1 min)"),
        Knob("funding_push", 30.0, "funding-rate push period in seconds (30 to 90 s)"),
        Knob("oi_push", 3.0, "open-interest push period in seconds (3 s)"),
        Knob("funding_interval", 8 * 3600.0, "funding interval in seconds; fundingTime is "
             "its next multiple"),
        Knob("liquidations_per_sec", 0.5, "liquidations per second of market time per "
             "symbol (0: none)"),
        Knob("liquidation_push", 1.0, "liquidation-orders push period in seconds"),
    )  # fmt: skip

    def __init__(self, markets: dict[str, Market], timings: VenueTimings) -> None:
        super().__init__(markets, timings)
        self.models = {s: SwapModel(self, s, m) for s, m in markets.items()}
        self.index_inst = {i[:-5]: s for i, s in self.by_inst.items()}
        self.swap_fans = {(ch, s): Fanout(f"{ch}:{s}", s) for ch in CHANNELS for s in markets}
        self.liq_fan = Fanout("liquidation-orders:SWAP", "")
        self.liq_pending: list[dict[str, Any]] = []
        self.liquidations: deque[dict[str, Any]] = deque(maxlen=1000)  # as sent, for tests

    # ---------------------------------------------------------------- market events

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        super()._on_book(sym, ev)
        model = self.models[sym]
        model.perp.step(ev.ts_ms)
        for liq in model.liqs.due(ev.ts_ms, self.knob("liquidations_per_sec")):
            self.liq_pending.append(self._liquidation(sym, liq))

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        super()._on_trades(sym, trades)
        for t in trades:
            self.models[sym].perp.trade(t.lots)

    def _liquidation(self, sym: str, liq: LiquidationPrint) -> dict[str, Any]:
        """One "Liquidation orders channel" entry: a long is closed by a sell order."""
        inst = self.inst[sym]
        return {"details": [{"bkLoss": "0", "bkPx": self.px[sym].fmt(liq.ticks), "ccy": "",
                             "posSide": "long" if liq.long else "short",
                             "side": "sell" if liq.long else "buy",
                             "sz": self.qx[sym].fmt(liq.lots), "ts": str(liq.ts_ms)}],
                "instFamily": inst[:-5], "instId": inst, "instType": "SWAP",
                "uly": inst[:-5]}  # fmt: skip

    # ---------------------------------------------------------------- publishers

    def _period(self, ch: str) -> float:
        return self.knob({"mark-price": "mark_push", "index-tickers": "index_push",
                          "funding-rate": "funding_push", "open-interest": "oi_push"}[ch])  # fmt: skip

    def on_tick(self, mono: float, now: int) -> None:
        super().on_tick(mono, now)
        for (ch, sym), f in self.swap_fans.items():
            if f and mono >= f.next_due:
                f.next_due = mono + self._period(ch)
                self._push(ch, sym, f)
        if mono >= self.liq_fan.next_due:
            self.liq_fan.next_due = mono + self.knob("liquidation_push")
            batch, self.liq_pending = self.liq_pending, []
            if batch and self.liq_fan:
                self.liquidations.extend(batch)
                raw = ENC.encode({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                                  "data": batch})  # fmt: skip
                for c in self.liq_fan.subs.values():
                    c.send(raw)

    def _message(self, ch: str, sym: str, data: dict[str, str]) -> bytes:
        inst = data["instId"]
        return ENC.encode({"arg": {"channel": ch, "instId": inst}, "data": [data]})

    def _push(self, ch: str, sym: str, f: Fanout, conn: SimConnection | None = None) -> None:
        model = self.models[sym]
        data = model.data(ch)
        last = model.sent.get(ch)
        mono = time.monotonic()
        idle = self.knob("mark_idle" if ch == "mark-price" else "index_idle")
        if conn is None and ch in _ON_CHANGE and last is not None and \
                {**last, "ts": ""} == {**data, "ts": ""} and \
                mono - model.sent_at.get(ch, 0.0) < idle:  # fmt: skip
            return
        model.sent[ch] = data
        model.sent_at[ch] = mono
        raw = self._message(ch, sym, data)
        for c in [conn] if conn is not None else f.subs.values():
            c.send(raw)

    def swap_truth(self, symbol: str) -> dict[str, dict[str, str]]:
        """The data last sent on each swap channel of ``symbol``."""
        return {ch: dict(d) for ch, d in self.models[symbol].sent.items()}

    # ---------------------------------------------------------------- websocket

    def _extra_channel(self, arg: dict[str, Any]) -> Fanout | None:
        ch, inst = arg.get("channel"), arg.get("instId")
        if ch == "liquidation-orders":
            return self.liq_fan if arg.get("instType") == "SWAP" else None
        if ch == "index-tickers":
            sym = self.index_inst.get(inst) if isinstance(inst, str) else None
        else:
            sym = self.by_inst.get(inst) if isinstance(inst, str) else None
        return self.swap_fans.get((ch, sym)) if sym is not None else None  # type: ignore[arg-type]

    def _after_subscribe(self, conn: SimConnection, f: Fanout, mono: float) -> None:
        ch = f.name.partition(":")[0]
        if ch in CHANNELS:
            self._push(ch, f.symbol, f, conn)

    def _vol_ccy(self, sym: str, c: Any, quote: str) -> str:
        """Swap ``volCcy``: the base currency volume (contracts x ctVal 1)."""
        return self.qx[sym].fmt(c.vol)

    # ---------------------------------------------------------------- REST

    def _instrument(self, sym: str) -> dict[str, Any]:
        spec = self.markets[sym].spec
        inst = self.inst[sym]
        # "Get instruments" (SWAP): coins empty, the underlying and the contract named
        return {"alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear",
                "ctVal": "1", "ctValCcy": spec.base, "expTime": "", "instFamily": inst[:-5],
                "instId": inst, "instType": "SWAP", "lever": "100",
                "listTime": "1606468572000", "lotSz": spec.step, "maxIcebergSz": "100000000",
                "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "",
                "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": "100000000",
                "maxTwapSz": "100000000", "minSz": self.qx[sym].fmt(1), "optType": "",
                "quoteCcy": "", "settleCcy": spec.quote, "state": "live", "stk": "",
                "tickSz": spec.tick, "uly": inst[:-5]}  # fmt: skip
