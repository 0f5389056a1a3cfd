"""Transport layer of a connector process: pooled aiohttp session, WS and REST assistants."""

from .backoff import Backoff
from .connection_factory import ConnectionFactory, SessionSettings
from .errors import (
    BackoffExhausted,
    RESTConnectionError,
    RESTError,
    RESTTimeoutError,
    WebError,
    WSClosed,
    WSConnectError,
    WSConnectionLost,
    WSError,
    WSNotConnectedError,
    WSProtocolError,
    WSStalledError,
)
from .factory import WebAssistantFactory
from .rate_limit import RateLimit, RateLimiter, shared_limiter
from .redact import redact_headers, redact_url
from .rest_assistant import RequestParts, RESTAssistant, RESTResponse, RetryPolicy, Signer
from .ws_assistant import WSAssistant
from .ws_connection import AppHeartbeat, WSConnection
from .ws_types import (
    FrameKind,
    WSBinaryRequest,
    WSJSONRequest,
    WSPlainTextRequest,
    WSRequest,
    WSResponse,
)

__all__ = [
    "AppHeartbeat",
    "Backoff",
    "BackoffExhausted",
    "ConnectionFactory",
    "FrameKind",
    "RESTAssistant",
    "RESTConnectionError",
    "RESTError",
    "RESTResponse",
    "RESTTimeoutError",
    "RateLimit",
    "RateLimiter",
    "RequestParts",
    "RetryPolicy",
    "SessionSettings",
    "Signer",
    "WSAssistant",
    "WSBinaryRequest",
    "WSClosed",
    "WSConnectError",
    "WSConnection",
    "WSConnectionLost",
    "WSError",
    "WSJSONRequest",
    "WSNotConnectedError",
    "WSPlainTextRequest",
    "WSProtocolError",
    "WSRequest",
    "WSResponse",
    "WSStalledError",
    "WebAssistantFactory",
    "WebError",
    "redact_headers",
    "redact_url",
    "shared_limiter",
]
