"""WebSocket request and response types.

Requests say how a payload goes on the wire (JSON text, plain text, binary). Responses
keep the frame's raw bytes: decoding belongs to the normalizer (msgspec), so the
receive path does no parsing and no UTF-8 decoding.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class FrameKind(enum.IntEnum):
    """Data frame opcode (same values as RFC 6455 / aiohttp.WSMsgType)."""

    TEXT = 1
    BINARY = 2


class WSJSONRequest(msgspec.Struct, frozen=True):
    """A JSON payload, encoded with msgspec and sent as a TEXT frame."""

    payload: Any


class WSPlainTextRequest(msgspec.Struct, frozen=True):
    """A text payload sent as is in a TEXT frame (e.g. OKX's "ping")."""

    text: str


class WSBinaryRequest(msgspec.Struct, frozen=True):
    """A binary payload sent in a BINARY frame."""

    data: bytes


WSRequest = WSJSONRequest | WSPlainTextRequest | WSBinaryRequest


class WSResponse(msgspec.Struct, frozen=True, gc=False):
    """One received data frame.

    `data` is the frame payload as received (bytes for TEXT and BINARY frames unless the
    connection was opened with decode_text=True), `recv_ts_ns` is `time.time_ns()` taken
    when the frame was handed to us. gc=False: no cycles possible, cheaper allocation.
    """

    data: bytes | str
    kind: FrameKind
    recv_ts_ns: int


_json_encode = msgspec.json.Encoder().encode


def encode_request(request: WSRequest) -> tuple[bytes, FrameKind]:
    """Wire bytes and frame kind for a request; refuses anything else by name."""
    if isinstance(request, WSJSONRequest):
        return _json_encode(request.payload), FrameKind.TEXT
    if isinstance(request, WSPlainTextRequest):
        return request.text.encode(), FrameKind.TEXT
    if isinstance(request, WSBinaryRequest):
        return bytes(request.data), FrameKind.BINARY
    raise TypeError(
        "expected WSJSONRequest, WSPlainTextRequest or WSBinaryRequest, "
        f"got {type(request).__name__}"
    )
