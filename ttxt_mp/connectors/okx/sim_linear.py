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

import random
import time
import zlib
from collections import deque
from typing import Any

from ttxt_mp.connectors.okx.sim import OkxVenue
from ttxt_mp.sim.conn import SimConnection
from ttxt_mp.sim.market import BookEvent, Market, Trade, now_ms
from ttxt_mp.sim.specs import VenueTimings
from ttxt_mp.sim.venue import ENC, Fanout, Knob

__all__ = ["OkxLinearVenue"]

FUNDING_CAP = 0.00375  # "Funding rate channel" example maxFundingRate / minFundingRate


class SwapModel:
    """Mark, index, funding and open interest of one swap, and what was last sent."""

    def __init__(self, venue: OkxLinearVenue, sym: str, market: Market) -> None:
        self.venue, self.sym, self.market = venue, sym, market
        self.rng = random.Random(zlib.crc32(b"swap" + sym.encode()))
        self.mark_off = 0.0
        self.index_off = 0.0
        self.oi = max(1, int(market.mid)) * 10  # lots
        self.ts = now_ms()
        self.sent: dict[str, dict[str, str]] = {}  # channel -> the data last sent
        self.sent_at: dict[str, float] = {}  # channel -> when (monotonic)

    def on_book(self, ev: BookEvent) -> None:
        g = self.rng.gauss
        self.mark_off = max(-3.0, min(3.0, self.mark_off + 0.3 * g(0.0, 1.0)))
        self.index_off = max(-4.0, min(4.0, self.index_off + 0.3 * g(0.0, 1.0)))
        self.ts = ev.ts_ms

    def on_trades(self, trades: list[Trade]) -> None:
        for t in trades:
            self.oi = max(1, self.oi + (t.lots if self.rng.random() < 0.5 else -t.lots))

    def mark_ticks(self) -> int:
        return max(1, round(self.market.mid + self.mark_off))

    def data(self, channel: str) -> dict[str, str]:
        v = self.venue
        px, qx = v.px[self.sym], v.qx[self.sym]
        inst = v.inst[self.sym]
        mark = self.mark_ticks()
        index = max(1, round(self.market.mid + self.index_off))
        ts = str(self.ts)
        if channel == "mark-price":
            return {"instType": "SWAP", "instId": inst, "markPx": px.fmt(mark), "ts": ts}
        if channel == "index-tickers":
            idx = px.fmt(index)
            return {"instId": inst[:-5], "idxPx": idx, "high24h": idx, "low24h": idx,
                    "open24h": idx, "sodUtc0": idx, "sodUtc8": idx, "ts": ts}  # fmt: skip
        if channel == "funding-rate":
            rate = max(-FUNDING_CAP, min(FUNDING_CAP, round((mark - index) / index, 6)))
            period = max(1, int(v.knob("funding_interval") * 1000))
            nxt = (self.ts // period + 1) * period
            text = f"{rate:.6f}".rstrip("0").rstrip(".") if rate else "0"
            return {"formulaType": "withRate", "fundingRate": text, "fundingTime": str(nxt),
                    "impactValue": "20000", "instId": inst, "instType": "SWAP",
                    "interestRate": "0.0001", "maxFundingRate": f"{FUNDING_CAP:g}",
                    "method": "current_period", "minFundingRate": f"{-FUNDING_CAP:g}",
                    "nextFundingRate": "", "nextFundingTime": str(nxt + period),
                    "premium": text, "settFundingRate": text, "settState": "settled",
                    "ts": ts}  # fmt: skip
        # open-interest: oi contracts, oiCcy base (ctVal 1), oiUsd at the mark
        oi = qx.fmt(self.oi)
        return {"instId": inst, "instType": "SWAP", "oi": oi, "oiCcy": oi,
                "oiUsd": f"{qx.to_float(self.oi) * px.to_float(mark):.2f}", "ts": ts}  # fmt: skip


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
        self.liq_rng = {s: random.Random(zlib.crc32(b"liq" + s.encode())) for s in markets}
        self.liq_next: dict[str, int] = {}
        self.liq_pending: list[dict[str, Any]] = []
        self.liquidations: deque[dict[str, Any]] = deque(maxlen=1000)  # as sent, for tests

    # ---------------------------------------------------------------- market events

    def _on_book(self, sym: str, ev: BookEvent) -> None:
        super()._on_book(sym, ev)
        self.models[sym].on_book(ev)
        self._liquidate(sym, ev.ts_ms)

    def _on_trades(self, sym: str, trades: list[Trade]) -> None:
        super()._on_trades(sym, trades)
        self.models[sym].on_trades(trades)

    def _liquidate(self, sym: str, ts_ms: int) -> None:
        rate = self.knob("liquidations_per_sec")
        if rate <= 0:
            return
        rng = self.liq_rng[sym]
        nxt = self.liq_next.get(sym)
        if nxt is None:
            nxt = ts_ms + int(rng.expovariate(rate) * 1000)
        while ts_ms >= nxt:
            short = rng.random() < 0.5  # a short position is closed by a buy order
            mark = self.models[sym].mark_ticks()
            away = max(1, int(mark * rng.uniform(0.002, 0.02)))
            px = mark + away if short else max(1, mark - away)
            self.liq_pending.append({
                "details": [{"bkLoss": "0", "bkPx": self.px[sym].fmt(px), "ccy": "",
                             "posSide": "short" if short else "long",
                             "side": "buy" if short else "sell",
                             "sz": self.qx[sym].fmt(max(1, int(rng.expovariate(1 / 20)))),
                             "ts": str(nxt)}],
                "instFamily": self.inst[sym][:-5], "instId": self.inst[sym],
                "instType": "SWAP", "uly": self.inst[sym][:-5]})  # fmt: skip
            nxt += max(1, int(rng.expovariate(rate) * 1000))
        self.liq_next[sym] = nxt

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
