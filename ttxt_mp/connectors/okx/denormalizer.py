"""OKX v5 order entry: commands -> ``/api/v5/trade/order|cancel-order|amend-order``,
responses -> acks. Written from the OKX v5 documentation ("Place order", "Cancel order",
"Amend order", "Error Code").

- ``instId`` is the instrument's native id (``BTC-USDT``, ``BTC-USDT-SWAP``).
- ``tdMode``: ``cash`` on spot; ``cross`` or ``isolated`` on swaps (OKX has no account-wide
  margin mode: each order names it; :class:`OkxOrderDenormalizer` takes it per symbol from
  ``margin_modes``, set by ``SetLeverage``, default cross).
- ``ordType``: ``market``; a limit order's time in force is its type: GTC ``limit``, IOC
  ``ioc``, FOK ``fok``, post-only ``post_only``. Spot market orders are sent with
  ``tgtCcy: base_ccy`` so ``sz`` is always in the base currency (a spot market *buy* is
  otherwise sized in the quote currency). Swap sizes are numbers of contracts.
- ``clOrdId``: "a combination of case-sensitive alphanumerics, all numbers, or all letters
  of up to 32 characters". Our client order ids carry ``-`` (``<client>-<session><n>``), so
  they are written reversibly with ``Z`` as escape (``Z`` -> ``ZZ``, ``-`` -> ``Zd``,
  ``_`` -> ``Zu``, see :func:`to_cl_ord_id`/:func:`from_cl_ord_id`); an id that does not
  fit in 32 characters is refused locally.
- ``reduceOnly`` (swaps) and ``posSide``: ``net`` in one-way (net) mode, ``long``/``short``
  in long/short mode.
- Answers: HTTP 200 ``{"code", "msg", "data": [{"ordId", "clOrdId", "sCode", "sMsg"}]}``;
  ``sCode`` "0" is success, anything else (51xxx) becomes a refused ``OrderAck`` with
  ``sCode``/``sMsg``. Amendment is asynchronous on OKX: the ack says the request was
  accepted, the ``orders`` channel carries the amended order.
"""

from __future__ import annotations

import re

import msgspec

from ttxt_mp.connectors.instruments import (
    InstrumentBook,
    VenueRequest,
    format_price,
    format_qty,
    reject_ack,
)
from ttxt_mp.events import (
    AmendOrder,
    CancelOrder,
    CreateOrder,
    MarginMode,
    OrderAck,
    OrderAction,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
)

__all__ = ["OkxOrderDenormalizer", "from_cl_ord_id", "to_cl_ord_id"]

EXCHANGE = "okx"
CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
CREATE_PATH = "/api/v5/trade/order"
CANCEL_PATH = "/api/v5/trade/cancel-order"
AMEND_PATH = "/api/v5/trade/amend-order"
JSON_HEADERS = {"Content-Type": "application/json"}
_ESC = {"Z": "ZZ", "-": "Zd", "_": "Zu"}
_UNESC = {"Z": "Z", "d": "-", "u": "_"}
_ORD_TYPE = {TimeInForce.GTC: "limit", TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok",
             TimeInForce.POST_ONLY: "post_only"}  # fmt: skip
_POS_SIDE = {PositionSide.BOTH: "net", PositionSide.LONG: "long", PositionSide.SHORT: "short"}
TD_MODES = {MarginMode.CROSS: "cross", MarginMode.ISOLATED: "isolated"}
_ENCODE = msgspec.json.Encoder()


def to_cl_ord_id(cid: str) -> str | None:
    """``cid`` as a valid ``clOrdId`` (see module docstring), None if it cannot be one."""
    out = "".join(_ESC.get(c, c) for c in cid)
    return out if CL_ORD_ID_RE.match(out) else None


def from_cl_ord_id(text: str) -> str:
    """The client order id a ``clOrdId`` stands for (an id not written by
    :func:`to_cl_ord_id`, e.g. from the web, is returned as it is unless it has ``Z``)."""
    if "Z" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "Z" and i + 1 < len(text) and text[i + 1] in _UNESC:
            out.append(_UNESC[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Item(msgspec.Struct):
    ordId: str = ""
    clOrdId: str = ""
    sCode: str = "0"
    sMsg: str = ""


class _Response(msgspec.Struct):
    code: str
    msg: str = ""
    data: list[_Item] = []


_RESPONSE = msgspec.json.Decoder(_Response)


class OkxOrderDenormalizer:
    """Pure translation of order commands for OKX v5 (see module docstring).
    ``margin_modes``: symbol -> ``cross``/``isolated`` (swaps; shared with the venue)."""

    exchange = EXCHANGE

    def __init__(self, instruments: InstrumentBook, margin_modes: dict[str, str] | None = None
                 ) -> None:  # fmt: skip
        if instruments.exchange != EXCHANGE:
            raise ValueError(f"instrument book is for {instruments.exchange}, not {EXCHANGE}")
        self.instruments = instruments
        self.margin_modes = margin_modes if margin_modes is not None else {}

    def td_mode(self, symbol: str) -> str:
        inst = self.instruments.get(symbol)
        if inst is None or inst.kind == "spot":
            return "cash"
        return self.margin_modes.get(symbol, "cross")

    def _precheck(self, cmd, action: OrderAction) -> tuple[OrderAck | None, str]:
        reason = self.instruments.validate(cmd)
        cid = cmd.client_order_id
        wire = to_cl_ord_id(cid) if cid else ""
        if reason is None and cid and wire is None:
            reason = (f"client_order_id {cid!r} cannot be an OKX clOrdId (letters and digits, "
                      "up to 32 once '-', '_' and 'Z' are written as 2 characters)")  # fmt: skip
        if reason is None and action == OrderAction.CREATE and not cid:
            reason = "client_order_id is required to correlate the ack"
        if reason:
            return reject_ack(cmd, action, reason, local_ts=cmd.local_ts), ""
        return None, wire or ""

    def _request(self, path: str, action: OrderAction, cmd, body: dict) -> VenueRequest:
        return VenueRequest(
            method="POST", path=path, body=_ENCODE.encode(body), headers=dict(JSON_HEADERS),
            action=action, client_order_id=cmd.client_order_id, symbol=cmd.symbol,
            exchange=EXCHANGE,
        )  # fmt: skip

    @staticmethod
    def _ids(body: dict, cmd: CancelOrder | AmendOrder, wire: str) -> None:
        if cmd.order_id:
            body["ordId"] = cmd.order_id
        else:
            body["clOrdId"] = wire

    def create(self, cmd: CreateOrder) -> VenueRequest | OrderAck:
        ack, wire = self._precheck(cmd, OrderAction.CREATE)
        if ack is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {
            "instId": inst.native_symbol,
            "tdMode": self.td_mode(cmd.symbol),
            "clOrdId": wire,
            "side": "buy" if cmd.side == Side.BUY else "sell",
        }
        if cmd.order_type == OrderType.MARKET:
            body["ordType"] = "market"
            if inst.kind == "spot":
                body["tgtCcy"] = "base_ccy"
        else:
            body["ordType"] = _ORD_TYPE[cmd.tif]
            body["px"] = format_price(inst, cmd.price)
        body["sz"] = format_qty(inst, cmd.qty)
        if inst.kind != "spot":
            body["posSide"] = _POS_SIDE[cmd.position_side]
            if cmd.reduce_only:
                body["reduceOnly"] = True
        return self._request(CREATE_PATH, OrderAction.CREATE, cmd, body)

    def cancel(self, cmd: CancelOrder) -> VenueRequest | OrderAck:
        ack, wire = self._precheck(cmd, OrderAction.CANCEL)
        if ack is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {"instId": inst.native_symbol}
        self._ids(body, cmd, wire)
        return self._request(CANCEL_PATH, OrderAction.CANCEL, cmd, body)

    def amend(self, cmd: AmendOrder, current: object = None) -> VenueRequest | OrderAck:
        """OKX amends in place (``newSz``/``newPx``); ``current`` is not needed."""
        ack, wire = self._precheck(cmd, OrderAction.AMEND)
        if ack is not None:
            return ack
        inst = self.instruments.get(cmd.symbol)
        assert inst is not None
        body: dict = {"instId": inst.native_symbol}
        self._ids(body, cmd, wire)
        if cmd.new_qty:
            body["newSz"] = format_qty(inst, cmd.new_qty)
        if cmd.new_price:
            body["newPx"] = format_price(inst, cmd.new_price)
        return self._request(AMEND_PATH, OrderAction.AMEND, cmd, body)

    def parse_ack(self, req: VenueRequest, status: int, body: bytes, local_ts: int = 0) -> OrderAck:
        try:
            resp = _RESPONSE.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise msgspec.DecodeError(
                f"okx: unexpected response to {req.method} {req.path} (HTTP {status}): {e}"
            ) from None
        item = resp.data[0] if resp.data else _Item(sCode=resp.code, sMsg=resp.msg)
        ok = resp.code == "0" and item.sCode == "0" and 200 <= status < 300
        if ok and req.action == OrderAction.CREATE and from_cl_ord_id(item.clOrdId) != req.client_order_id:
            raise ValueError(f"okx: response clOrdId {item.clOrdId!r} does not match the "
                             f"request's {req.client_order_id!r}")  # fmt: skip
        code = item.sCode if item.sCode != "0" else (resp.code if resp.code != "0" else str(status))
        return OrderAck(
            exchange=EXCHANGE, symbol=req.symbol, client_order_id=req.client_order_id,
            action=req.action, accepted=ok, order_id=item.ordId,
            code="" if ok else code, message="" if ok else (item.sMsg or resp.msg or f"HTTP {status}"),
            local_ts=local_ts,
        )  # fmt: skip
