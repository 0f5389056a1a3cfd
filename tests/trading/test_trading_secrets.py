"""Secrets never show in repr/str/format, logs, exceptions; credential files must be 0600."""

from __future__ import annotations

import logging
import os
import pickle

import msgspec
import pytest

from ttxt_mp.connectors.binance.auth import BinanceSigner
from ttxt_mp.connectors.bybit.auth import BybitSigner
from ttxt_mp.secrets import (
    Credentials,
    CredentialsError,
    Secret,
    SecretRedactingFilter,
    install_redaction,
    load_credentials,
    redact,
    uninstall_redaction,
)

KEY = "tk-9f8e7d6c5b4a3210-key"
SECRET = "ts-0123456789abcdef-secret-value"


def test_secret_never_prints_its_value():
    s = Secret(SECRET)
    formatted = "%s|%r" % (s, s)  # noqa: UP031 - %-formatting is what logging uses
    for text in (repr(s), str(s), f"{s}", f"{s:>40}", formatted, str.format("{}", s), repr([s])):
        assert SECRET not in text
        assert "***" in text
    assert s.reveal() == SECRET


def test_credentials_repr_and_encoding_hide_values():
    c = Credentials(Secret(KEY), Secret(SECRET))
    assert KEY not in repr(c) and SECRET not in repr(c)
    with pytest.raises(TypeError):
        msgspec.json.encode(c)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(c.api_secret)


def test_signer_repr_hides_credentials():
    c = Credentials(Secret(KEY), Secret(SECRET))
    for signer in (BinanceSigner(c), BybitSigner(c)):
        assert KEY not in repr(signer) and SECRET not in repr(signer)


def test_secret_rejects_empty_and_non_str():
    with pytest.raises(ValueError):
        Secret("")
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]


def test_from_env_names_missing_variable_never_value():
    env = {"MY_KEY": KEY}
    with pytest.raises(CredentialsError) as ei:
        Credentials.from_env("MY_KEY", "MY_SECRET", env)
    assert "MY_SECRET" in str(ei.value)
    assert KEY not in str(ei.value)
    c = Credentials.from_env("MY_KEY", "MY_SECRET", {**env, "MY_SECRET": SECRET})
    assert c.api_secret.reveal() == SECRET


def test_load_credentials_none_when_unconfigured_and_refuses_half_config():
    assert load_credentials() is None
    with pytest.raises(CredentialsError, match="both"):
        load_credentials(api_key_env="A")


def _write(tmp_path, mode: int, text: str | None = None):
    p = tmp_path / "creds.toml"
    p.write_text(text if text is not None else f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    os.chmod(p, mode)
    return p


def test_file_0600_is_loaded(tmp_path):
    c = Credentials.from_file(_write(tmp_path, 0o600))
    assert (c.api_key.reveal(), c.api_secret.reveal()) == (KEY, SECRET)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o700 | 0o020])
def test_file_readable_by_others_is_refused_naming_file_and_mode(tmp_path, mode):
    p = _write(tmp_path, mode)
    with pytest.raises(CredentialsError) as ei:
        Credentials.from_file(p)
    msg = str(ei.value)
    assert str(p) in msg and oct(mode) in msg and "chmod 600" in msg
    assert SECRET not in msg and KEY not in msg


def test_file_missing_key_and_bad_toml(tmp_path):
    p = _write(tmp_path, 0o600, f'api_key = "{KEY}"\n')
    with pytest.raises(CredentialsError, match="api_secret"):
        Credentials.from_file(p)
    p = _write(tmp_path, 0o600, f'api_key = "{KEY}\napi_secret = {SECRET}')
    with pytest.raises(CredentialsError) as ei:
        Credentials.from_file(p)
    assert SECRET not in str(ei.value) and KEY not in str(ei.value)
    with pytest.raises(CredentialsError, match="cannot open"):
        Credentials.from_file(tmp_path / "nope.toml")


def test_symlinked_file_is_refused(tmp_path):
    target = _write(tmp_path, 0o600)
    link = tmp_path / "link.toml"
    link.symlink_to(target)
    with pytest.raises(CredentialsError):
        Credentials.from_file(link)


def test_redact_replaces_every_registered_secret():
    Secret(SECRET)
    assert redact(f"url?apiKey=x&secret={SECRET}&z") == "url?apiKey=x&secret=***&z"


@pytest.fixture
def redaction():
    install_redaction()
    try:
        yield
    finally:
        uninstall_redaction()


def test_logs_never_contain_secrets(caplog, redaction):
    creds = Credentials(Secret(KEY), Secret(SECRET))
    log = logging.getLogger("ttxt_mp.test.child")  # propagated record, not the root's own
    with caplog.at_level(logging.DEBUG):
        log.debug("signing with %s and %r", creds.api_secret, creds)
        log.debug("revealed by mistake: %s", creds.api_secret.reveal())
        log.debug(f"f-string mistake: {creds.api_key.reveal()}")
        try:
            raise RuntimeError(f"boom {creds.api_secret.reveal()}")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert SECRET not in text and KEY not in text
    assert "***" in text


def test_filter_alone_redacts_a_record():
    Secret(SECRET)
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "k=%s", (SECRET,), None)
    assert SecretRedactingFilter().filter(rec) is True
    assert SECRET not in rec.getMessage()


def test_without_redaction_the_leak_is_visible(caplog):
    """Control: the assertion above can fail (logging does not hide revealed values)."""
    uninstall_redaction()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("ttxt_mp.test.child").debug("leak %s", SECRET)
    assert SECRET in caplog.text
