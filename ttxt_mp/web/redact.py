"""Redaction of credentials in URLs and headers before they reach a log or an error.

ttxt2 logged API keys and secrets in clear text; here every URL and header set that
is logged or put into an exception goes through these functions first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "<redacted>"

# Query parameter names (lower case) whose values are credentials or signatures.
SENSITIVE_QUERY_KEYS = frozenset(
    {
        "signature",
        "sign",
        "apikey",
        "api_key",
        "api-key",
        "secret",
        "passphrase",
        "token",
        "access_token",
        "listenkey",
        "x-mbx-apikey",
    }
)

# Header names (lower case) and name prefixes whose values must never be logged.
SENSITIVE_HEADERS = frozenset(
    {"x-mbx-apikey", "authorization", "proxy-authorization", "cookie", "set-cookie", "api-key"}
)
SENSITIVE_HEADER_PREFIXES = ("x-bapi-", "ok-access-", "cb-access-", "x-api-", "x-mbx-sig")


def is_sensitive_header(name: str) -> bool:
    low = name.lower()
    return low in SENSITIVE_HEADERS or low.startswith(SENSITIVE_HEADER_PREFIXES)


def redact_query(query: str) -> str:
    """Replace the value of every sensitive `key=value` pair; keeps order and encoding."""
    if not query:
        return query
    parts = query.split("&")
    for i, part in enumerate(parts):
        key, sep, _ = part.partition("=")
        if sep and key.lower() in SENSITIVE_QUERY_KEYS:
            parts[i] = f"{key}={REDACTED}"
    return "&".join(parts)


# A credential carried in the path: Binance's user data stream is ``<ws>/ws/<listenKey>``
# (a 60-character token granting read access to the account's private stream). Public
# streams there look like ``/ws/btcusdt@depth``: an ``@`` or a short name is not a key.
_PATH_TOKEN = re.compile(r"(/ws/)([A-Za-z0-9]{20,})(?=$|[/?#])")


def redact_path(path: str) -> str:
    """``path`` with credential path segments (a Binance listenKey) replaced."""
    return _PATH_TOKEN.sub(lambda m: m.group(1) + REDACTED, path)


def redact_url(url: str) -> str:
    """The URL with sensitive query values, path tokens and any user:password@ removed."""
    base, sep, query = url.partition("?")
    base = redact_path(base)
    scheme, ssep, rest = base.partition("://")
    if ssep and "@" in rest.split("/", 1)[0]:
        host_and_path = rest.split("@", 1)[1]
        base = f"{scheme}://{REDACTED}@{host_and_path}"
    if not sep:
        return base
    query, hsep, fragment = query.partition("#")
    return f"{base}?{redact_query(query)}" + (f"#{fragment}" if hsep else "")


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of the headers with credential values replaced."""
    if not headers:
        return {}
    return {k: (REDACTED if is_sensitive_header(k) else v) for k, v in headers.items()}


def scrub(text: str, *raw_urls: str) -> str:
    """`text` (e.g. an exception message) with every raw URL and query replaced by its
    redacted form: aiohttp/yarl errors quote the URL they failed on."""
    for raw in raw_urls:
        text = text.replace(raw, redact_url(raw))
        query = raw.partition("?")[2].partition("#")[0]
        if query:
            text = text.replace(query, redact_query(query))
        for m in _PATH_TOKEN.finditer(raw.partition("?")[0]):  # quoted without the URL
            text = text.replace(m.group(2), REDACTED)
    return text
