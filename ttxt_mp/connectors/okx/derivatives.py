"""One MarkPrice per perpetual from three OKX channels: ``mark-price`` (``markPx``),
``funding-rate`` (``fundingRate``, ``fundingTime``: the coming settlement, our
``next_funding_ts``) and ``index-tickers`` (``idxPx`` of the swap's index, e.g. BTC-USDT
for BTC-USDT-SWAP). Each message updates its fields of the symbol's state and publishes
the whole state; nothing is published before the first mark price (it would say 0)."""

from __future__ import annotations

from ttxt_mp.events import MarkPrice

__all__ = ["MarkState"]

_MARK, _INDEX, _RATE, _NEXT = range(4)


class MarkState:
    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.state: dict[str, list[float]] = {}

    def update(self, symbol: str, exch_ts: int, local_ts: int, **fields: float) -> list[MarkPrice]:
        """Merge ``mark``, ``index``, ``rate`` and/or ``next_ts`` (ns) for ``symbol``."""
        st = self.state.get(symbol)
        if st is None:
            st = self.state[symbol] = [0.0, 0.0, 0.0, 0]
        for name, value in fields.items():
            st[_SLOTS[name]] = value
        if not st[_MARK]:
            return []
        return [MarkPrice(exchange=self.exchange, symbol=symbol, exch_ts=exch_ts,
                          local_ts=local_ts, mark_price=st[_MARK], index_price=st[_INDEX],
                          funding_rate=st[_RATE], next_funding_ts=int(st[_NEXT]))]  # fmt: skip


_SLOTS = {"mark": _MARK, "index": _INDEX, "rate": _RATE, "next_ts": _NEXT}
