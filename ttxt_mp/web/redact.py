"""Redaction of credentials in URLs and headers before they reach a log or an error.

ttxt2 logged API keys and secrets in clear text; here every URL and header set that
is logged or put into an exception goes through these functions first.
"""

from __future__ import annotations

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


def redact_url(url: str) -> str:
    """The URL with sensitive query values and any user:password@ removed."""
    base, sep, query = url.partition("?")
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
    return text
