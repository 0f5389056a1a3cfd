"""Redis URLs: validated, password redacted for every message, password from the environment.

A bridge's config names the URL (``redis://host:port/db`` or ``rediss://`` for TLS) and
the *environment variable* holding the password (``password_env``), like exchange keys:
the config (passed to every child, shown by tools) never holds a secret. A URL given to the
API directly may carry ``redis://:pw@host``; every message shows it as :func:`redact_url`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ttxt_mp.secrets import MASK, Secret

__all__ = ["SCHEMES", "BusConnectionError", "BusUrlError", "check_url", "password_from_env", "redact_url", "split_url"]

SCHEMES = ("redis", "rediss")


class BusConnectionError(ConnectionError):
    """Redis unreachable, refusing the password, or timing out; the URL in the message has
    its password redacted (one class for the bridge, the queue and the remote reader)."""


class BusUrlError(ValueError):
    """A Redis URL or password reference that cannot work; the message names no secret."""


def _port_suffix(parts: SplitResult) -> str:
    """``":<port>"`` as written (a bad port stays visible, for the error naming it)."""
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.endswith("]") or ":" not in hostport:
        return ""
    return ":" + hostport.rpartition(":")[2]


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user name kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + _port_suffix(parts)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def split_url(url: str) -> tuple[str, str | None]:
    """``(url without password, password or None)``; the password is registered for log
    redaction at once."""
    parts = urlsplit(url)
    pw = parts.password
    if pw is None:
        return url, None
    Secret(pw)  # registers it: masked in every log record from now on
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{user}@" if user else "") + host + _port_suffix(parts)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), pw


def check_url(url: str, *, allow_password: bool = True) -> str:
    """Why ``url`` is not a usable Redis URL ("" if it is)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.scheme not in SCHEMES:
        return f"expected a URL starting with redis:// or rediss:// (TLS), got {redact_url(url)!r}"
    if not parts.hostname:
        return f"expected a host in {redact_url(url)!r}"
    if port == 0:
        return f"expected a port 1-65535 in {redact_url(url)!r}"
    path = parts.path.strip("/")
    if path and not path.isdigit():
        return f"expected a database number as the path (like /0), got {redact_url(url)!r}"
    if parts.password is not None and not allow_password:
        return (f"{redact_url(url)!r} carries a password: name the environment variable that "
                "holds it with password_env instead (the config must hold no secret)")
    return ""


def password_from_env(name: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The password in environment variable ``name`` (None: no password), registered for
    log redaction; a missing or empty variable is a :class:`BusUrlError`."""
    if name is None:
        return None
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        raise BusUrlError(f"environment variable {name} (password_env) is not set or empty")
    Secret(value)
    return value
