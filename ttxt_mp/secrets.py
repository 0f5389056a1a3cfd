"""API credentials that cannot leak by accident.

ttxt2 logged keys and secrets in clear text. Here a credential is a :class:`Secret`: its
``repr``/``str``/``format`` print ``***``, it refuses to be pickled or JSON-encoded, and
the only way to the value is :meth:`Secret.reveal` (called by the signers, nowhere else).
Every secret is also registered with :class:`SecretRedactingFilter`, which replaces any
revealed copy that still reaches a log record (message, arguments, traceback) by ``***``.

Credentials come from environment variables named in the config, or from a TOML file
(``api_key = "..."``, ``api_secret = "..."``, and ``passphrase = "..."`` for venues whose
keys have one) that only its owner can read. Errors name the variable or the
file and its mode, never a value.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
import threading
import tomllib
from collections.abc import Mapping
from pathlib import Path

import msgspec

__all__ = [
    "MASK",
    "Credentials",
    "CredentialsError",
    "Secret",
    "SecretRedactingFilter",
    "install_redaction",
    "load_credentials",
    "redact",
    "register_secret",
    "uninstall_redaction",
]

MASK = "***"


class CredentialsError(ValueError):
    """Credentials are missing or unsafe. The message never contains a secret value."""


class Secret:
    """A string that prints as ``***``; ``reveal()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, got {type(value).__name__}")
        if not value:
            raise ValueError("a Secret cannot be empty")
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self):  # pickling would copy the value into queues, files, rings
        raise TypeError(
            "a Secret cannot be pickled; load credentials in each process from the "
            "environment or the credentials file"
        )


class Credentials(msgspec.Struct, frozen=True):
    """An API key pair, plus the key's passphrase where the venue has one. Encoding
    it with msgspec fails (Secret is not serializable)."""

    api_key: Secret
    api_secret: Secret
    passphrase: Secret | None = None

    @classmethod
    def from_env(
        cls, key_var: str, secret_var: str, environ: Mapping[str, str] | None = None,
        passphrase_var: str | None = None,
    ) -> Credentials:
        env = os.environ if environ is None else environ
        names = [key_var, secret_var] + ([passphrase_var] if passphrase_var else [])
        missing = [v for v in names if not env.get(v)]
        if missing:
            raise CredentialsError(
                "credentials environment variable(s) not set or empty: " + ", ".join(missing)
            )
        phrase = Secret(env[passphrase_var]) if passphrase_var else None
        return cls(Secret(env[key_var]), Secret(env[secret_var]), phrase)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read ``api_key``/``api_secret`` (and an optional ``passphrase``) from a TOML file
        readable only by its owner."""
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            raise CredentialsError(f"cannot open credentials file {p}: {e.strerror}") from None
        try:
            st = os.fstat(fd)  # checked on the opened file: no swap between check and read
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                raise CredentialsError(f"credentials file {p} is not a regular file")
            if mode & 0o077:
                raise CredentialsError(
                    f"credentials file {p} has mode {mode:#o}: group/other may access it; "
                    f"it must be readable only by its owner (chmod 600 {p})"
                )
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                raise CredentialsError(
                    f"credentials file {p} is owned by uid {st.st_uid}, not by this user "
                    f"(uid {os.getuid()})"
                )
            with os.fdopen(fd, "rb", closefd=True) as f:
                fd = -1
                raw = f.read()
        finally:
            if fd >= 0:
                os.close(fd)
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise CredentialsError(f"credentials file {p} is not valid UTF-8 TOML") from None
        missing = [k for k in ("api_key", "api_secret") if not isinstance(doc.get(k), str)]
        if missing:
            raise CredentialsError(
                f"credentials file {p} lacks string key(s): {', '.join(missing)}"
            )
        phrase = doc.get("passphrase")
        if phrase is not None and (not isinstance(phrase, str) or not phrase):
            raise CredentialsError(f"credentials file {p}: passphrase must be a non-empty string")
        return cls(Secret(doc["api_key"]), Secret(doc["api_secret"]),
                   Secret(phrase) if phrase else None)  # fmt: skip


def load_credentials(
    *,
    api_key_env: str | None = None,
    api_secret_env: str | None = None,
    file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    passphrase_env: str | None = None,
) -> Credentials | None:
    """Credentials as configured, or None when none are configured (private features off)."""
    if file is not None and (api_key_env or api_secret_env or passphrase_env):
        raise CredentialsError("configure credentials from a file or from env vars, not both")
    if file is not None:
        return Credentials.from_file(file)
    if api_key_env or api_secret_env or passphrase_env:
        if not (api_key_env and api_secret_env):
            raise CredentialsError("both api_key_env and api_secret_env must be named")
        return Credentials.from_env(api_key_env, api_secret_env, environ, passphrase_env)
    return None


# --------------------------------------------------------------------------- redaction

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_MIN_REDACT_LEN = 4  # shorter values would mask ordinary text and protect nothing


def register_secret(value: str | Secret) -> None:
    """Mask ``value`` wherever it appears in log records from now on."""
    global _secrets
    raw = value.reveal() if isinstance(value, Secret) else value
    if len(raw) < _MIN_REDACT_LEN or raw in _secrets:
        return
    with _lock:
        # longest first, so a secret containing another is masked whole
        _secrets = tuple(sorted({*_secrets, raw}, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def _contains_secret(text: str) -> bool:
    return any(s in text for s in _secrets)


class SecretRedactingFilter(logging.Filter):
    """Rewrites a record whose message, arguments or traceback contain a registered secret.

    Works as a logger filter and as a handler filter; never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the raw parts, but masked
        message = f"{record.msg} {record.args}"
    if _contains_secret(message):
        record.msg = redact(message)
        record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text and _contains_secret(record.exc_text):
        record.exc_text = redact(record.exc_text)
    if record.stack_info and _contains_secret(record.stack_info):
        record.stack_info = redact(record.stack_info)


_FILTER = SecretRedactingFilter()
_installed_factory: list = []


def install_redaction(logger: logging.Logger | None = None) -> SecretRedactingFilter:
    """Redact secrets on ``logger`` (default: root) and its handlers, and in every record.

    A logger filter does not see records propagated from child loggers, so the record
    factory is wrapped as well: every record created anywhere is redacted at birth.
    """
    target = logger if logger is not None else logging.getLogger()
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
    for h in target.handlers:
        if _FILTER not in h.filters:
            h.addFilter(_FILTER)
    with _lock:
        if not _installed_factory:
            previous = logging.getLogRecordFactory()

            def factory(*args, **kwargs):
                record = previous(*args, **kwargs)
                _redact_record(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed_factory.append((previous, factory))
    return _FILTER


def uninstall_redaction(logger: logging.Logger | None = None) -> None:
    target = logger if logger is not None else logging.getLogger()
    target.removeFilter(_FILTER)
    for h in target.handlers:
        h.removeFilter(_FILTER)
    with _lock:
        if _installed_factory:
            previous, factory = _installed_factory.pop()
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)


def registered_count() -> int:
    """How many distinct secrets are masked (for status output; never the values)."""
    return len(_secrets)
