"""RESTAssistant: rate-limited, retrying, signable HTTP requests returning msgspec-decoded JSON.

Each attempt: wait for the rate limiter, sign (so timestamps are fresh on every retry),
send with the timeout, then
- 2xx: decode the body with msgspec (or return it raw);
- 429 / 418: the venue rejected the request, so it is safe to retry any method: wait
  Retry-After (refusing waits above `max_retry_after`) and hold the rate limiter meanwhile;
- 5xx (except 501/505), timeouts, connection errors: retry idempotent requests only (a
  POST /order may have executed: "execution status unknown");
- other 4xx: raise RESTError(status, venue code, venue message, redacted URL) at once.
Nothing that can hold a key or a signature is logged: URLs and headers are redacted.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import msgspec
from yarl import URL

from .backoff import Backoff
from .connection_factory import ConnectionFactory
from .errors import RESTConnectionError, RESTError, RESTTimeoutError
from .rate_limit import RateLimiter
from .redact import redact_headers, redact_url, scrub

log = logging.getLogger("ttxt_mp.web.rest")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RATE_LIMITED_STATUSES = frozenset({418, 429})
NOT_RETRYABLE_5XX = frozenset({501, 505})


class RequestParts(msgspec.Struct):
    """What a signer sees and returns. `query` and `body` are exactly the bytes sent."""

    method: str
    url: str  # scheme://host/path, without query
    path: str
    query: str
    body: bytes | None
    headers: dict[str, str]


Signer = Callable[[RequestParts], RequestParts | Awaitable[RequestParts]]


class RESTResponse(msgspec.Struct, frozen=True):
    """A successful response when `raw=True` was asked for."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str  # redacted


class RetryPolicy(msgspec.Struct, frozen=True):
    """Bounded retries: at most `max_attempts` sends per request call."""

    max_attempts: int = 3
    backoff_base: float = 0.25
    backoff_cap: float = 5.0
    max_retry_after: float = 30.0


def encode_query(params: Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None) -> str:
    """Query string in the given order; bools as true/false, spaces as %20."""
    if params is None:
        return ""
    if isinstance(params, str):
        return params
    items = params.items() if isinstance(params, Mapping) else params
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else v) for k, v in items]
    return urlencode(pairs, quote_via=quote)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_details(body: bytes) -> tuple[int | str | None, str]:
    """(venue error code, message) from an error body: Binance code/msg, Bybit retCode/retMsg."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return None, text or "<empty body>"
    if isinstance(obj, dict):
        code = next((obj[k] for k in ("code", "retCode", "error_code") if k in obj), None)
        msg = next((obj[k] for k in ("msg", "retMsg", "message", "error") if k in obj), None)
        if code is not None or msg is not None:
            if not isinstance(code, int | str):
                code = None if code is None else str(code)
            return code, "" if msg is None else str(msg)
    return None, body[:300].decode("utf-8", "replace")


class RESTAssistant:
    """Shared by all REST calls of a connector; see the module docstring for semantics."""

    def __init__(
        self,
        connection_factory: ConnectionFactory | None = None,
        *,
        base_url: str = "",
        rate_limiter: RateLimiter | None = None,
        signer: Signer | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._factory = connection_factory or ConnectionFactory.default()
        self.base_url = base_url.rstrip("/")
        self.rate_limiter = rate_limiter
        self.signer = signer
        self.retry = retry if retry is not None else RetryPolicy()
        if self.retry.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.retry.max_attempts}")
        self.timeout = timeout
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | str | None = None,
        data: Mapping[str, Any] | bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        weight: int = 1,
        limit_id: str | Sequence[str] | None = None,
        timeout: float | None = None,
        signed: bool = False,
        idempotent: bool | None = None,
        raw: bool = False,
        response_type: Any = Any,
    ) -> Any:
        """Send one logical request (with bounded retries); decoded JSON, or RESTResponse if raw.

        url: absolute, or a path appended to base_url. params: query (dict, pairs or an
        encoded string). data: form dict or body bytes/str; json: encoded with msgspec.
        weight/limit_id: charged to the rate limiter (global limits + the named ones).
        signed: pass through the signer. idempotent: whether 5xx/timeouts may be
        retried (default: by method). response_type: msgspec type to decode into.
        """
        method = method.upper()
        if data is not None and json is not None:
            raise ValueError("pass either data= or json=, not both")
        if signed and self.signer is None:
            raise ValueError(f"signed request to {redact_url(url)} but this RESTAssistant has no signer")
        costs = self.rate_limiter.costs(limit_id, weight) if self.rate_limiter else None
        full = url if "://" in url else f"{self.base_url}/{url.lstrip('/')}"
        if "://" not in full:
            raise ValueError(f"relative URL {redact_url(url)!r} needs a base_url")
        base, _, url_query = full.partition("?")
        try:
            URL(base, encoded=True).port  # noqa: B018 - yarl validates lazily
        except ValueError as exc:
            raise ValueError(f"invalid URL {redact_url(full)}: {exc}") from None
        query = "&".join(q for q in (url_query, encode_query(params)) if q)
        hdrs = dict(headers) if headers else {}
        body = self._encode_body(data, json, hdrs)
        can_retry_failure = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        timeout_s = self.timeout if timeout is None else timeout
        policy = self.retry
        backoff = Backoff(policy.backoff_base, policy.backoff_cap, rng=self._rng)
        session = self._factory.get_session()
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limiter is not None and costs is not None:
                await self.rate_limiter.acquire_costs(costs)
            parts = RequestParts(method, base, urlsplit(base).path, query, body, dict(hdrs))
            if signed:
                signed_parts = self.signer(parts)  # type: ignore[misc]
                if inspect.isawaitable(signed_parts):
                    signed_parts = await signed_parts
                parts = signed_parts
            target = f"{parts.url}?{parts.query}" if parts.query else parts.url
            safe_url = redact_url(target)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s %s headers=%s (attempt %d)",
                    method, safe_url, redact_headers(parts.headers), attempt,
                )
            last = attempt >= policy.max_attempts
            try:
                async with session.request(
                    method,
                    URL(target, encoded=True),
                    data=parts.body,
                    headers=parts.headers,
                    timeout=aiohttp.ClientTimeout(total=timeout_s),
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    payload = await resp.read()
                    resp_headers = resp.headers
            except TimeoutError:
                err: RESTError = RESTTimeoutError(
                    None, None, f"no response within {timeout_s:g} s", method, safe_url
                )
                if last or not can_retry_failure:
                    raise err from None
                await self._wait(backoff.next_delay(), err, attempt)
                continue
            except (aiohttp.ClientError, OSError) as exc:
                reason = scrub(f"{type(exc).__name__}: {exc}", target)
                err = RESTConnectionError(None, None, reason, method, safe_url)
                if last or not can_retry_failure:
                    raise err from None
                await self._wait(backoff.next_delay(), err, attempt)
                continue

            if 200 <= status < 300:
                log.debug("%s %s -> %d (%d bytes)", method, safe_url, status, len(payload))
                return self._decode(status, resp_headers, payload, safe_url, method, raw, response_type)

            code, message = error_details(payload)
            err = RESTError(status, code, message, method, safe_url)
            if status in RATE_LIMITED_STATUSES:
                retry_after = parse_retry_after(resp_headers.get("Retry-After"))
                if retry_after is not None and retry_after > policy.max_retry_after:
                    raise RESTError(
                        status, code,
                        f"{message} (Retry-After {retry_after:g} s exceeds "
                        f"max_retry_after {policy.max_retry_after:g} s)",
                        method, safe_url,
                    )
                delay = retry_after if retry_after is not None else backoff.next_delay()
                if self.rate_limiter is not None:
                    self.rate_limiter.pause(delay)
            elif status >= 500 and status not in NOT_RETRYABLE_5XX and can_retry_failure:
                delay = backoff.next_delay()
            else:
                raise err
            if last:
                raise err
            await self._wait(delay, err, attempt)

    async def _wait(self, delay: float, err: RESTError, attempt: int) -> None:
        log.warning("%s (attempt %d/%d); retrying in %.3f s",
                    err, attempt, self.retry.max_attempts, delay)
        await self._sleep(delay)

    @staticmethod
    def _encode_body(data: Any, json: Any, headers: dict[str, str]) -> bytes | None:
        if json is not None:
            headers.setdefault("Content-Type", "application/json")
            return msgspec.json.encode(json)
        if data is None:
            return None
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        if isinstance(data, Mapping):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return encode_query(data).encode()
        raise TypeError(f"data must be a mapping, bytes or str, got {type(data).__name__}")

    @staticmethod
    def _decode(
        status: int, headers: Mapping[str, str], payload: bytes, safe_url: str, method: str,
        raw: bool, response_type: Any,
    ) -> Any:
        if raw:
            return RESTResponse(status, dict(headers), payload, safe_url)
        if not payload:
            return None
        try:
            return msgspec.json.decode(payload, type=response_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RESTError(status, None, f"invalid JSON response: {exc}", method, safe_url) from exc
