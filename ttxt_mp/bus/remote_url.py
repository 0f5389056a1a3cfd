"""The URL a remote reader attaches to: a Redis URL plus the engine's name.

``redis://[[user]:password@]host[:port][/db[/ENGINE]]`` (``rediss://`` for TLS). The
password comes from the URL or, when the URL has none, from an environment variable
(named by the caller; :data:`PASSWORD_ENV` by default): either way it is registered with
:mod:`ttxt_mp.secrets`, so a log line that would carry it shows ``***``, and every message
we build names the URL through :func:`redact_url`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ttxt_mp.bus.url import redact_url
from ttxt_mp.secrets import MASK, register_secret

__all__ = ["PASSWORD_ENV", "BusUrl", "is_bus_url", "parse_bus_url", "refuse_password_in_argv"]

PASSWORD_ENV = "TTXT_MP_REDIS_PASSWORD"


def is_bus_url(text: object) -> bool:
    return isinstance(text, str) and text.lower().startswith(("redis://", "rediss://"))


def refuse_password_in_argv(url: str) -> str:
    """``url`` for a command line: one carrying a password is refused (every user of the
    host reads command lines in ``ps``); the password belongs in :data:`PASSWORD_ENV`."""
    if is_bus_url(url) and _USERINFO_PW.match(url):
        raise ValueError(f"{_shown(url)}: a password on the command line is visible to every "
                         f"user of this host (ps): put it in ${PASSWORD_ENV} instead")  # fmt: skip
    return url


_USERINFO_PW = re.compile(r"^\w+://[^/@]*:[^/@]*@")


def _shown(url: str) -> str:
    """The URL for a message, password masked even when the URL does not parse."""
    try:
        return redact_url(url)
    except ValueError:  # e.g. a port that is not a number
        return re.sub(r"^(\w+://[^:/@]*:)[^@/]*@", r"\1***@", url)


@dataclass(frozen=True)
class BusUrl:
    scheme: str
    host: str
    port: int
    db: int
    engine: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def redacted(self) -> str:
        """What every message shows: no password, ever."""
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':' + MASK if self.password else ''}@"
        tail = f"/{self.engine}" if self.engine else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.db}{tail}"

    def __str__(self) -> str:
        return self.redacted


def parse_bus_url(url: str, *, need_engine: bool = True,
                  password_env: str | None = PASSWORD_ENV) -> BusUrl:  # fmt: skip
    """A :class:`BusUrl`; ValueError naming the (redacted) URL when it is not one."""
    shown = _shown(url) if isinstance(url, str) else repr(url)
    if not is_bus_url(url):
        raise ValueError(f"not a Redis URL: {shown} (expected redis://host:6379/0/ENGINE)")
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as e:
        raise ValueError(f"bad Redis URL {shown}: {e}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"bad Redis URL {shown}: no query or fragment expected")
    segs = [s for s in parts.path.split("/") if s]
    db, engine = 0, ""
    if segs and segs[0].isdigit():
        db = int(segs.pop(0))
    if segs:
        engine = segs.pop(0)
    if segs:
        raise ValueError(f"bad Redis URL {shown}: expected /DB/ENGINE after the host")
    if need_engine and not engine:
        raise ValueError(f"Redis URL {shown} names no engine: expected "
                         "redis://host:6379/0/ENGINE")  # fmt: skip
    if engine:
        from ttxt_mp.engine.naming import check_engine_name

        check_engine_name(engine)
    password = unquote(parts.password) if parts.password else None
    if password is None and password_env:
        password = os.environ.get(password_env) or None
    if password:
        register_secret(password)
    user = unquote(parts.username) if parts.username else None
    return BusUrl(parts.scheme.lower(), parts.hostname or "127.0.0.1", port, db, engine,
                  user, password)  # fmt: skip
