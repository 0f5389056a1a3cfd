"""``rediss://``: the bridge publishes to a TLS-only Redis port whose certificate it
verifies against ``tls_ca_file``; without that CA it refuses the server (DOWN, retrying)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
from bridge_helpers import BridgeProcess, accounted, bridge_config, producing, read_entries
from redis_server import RedisServer, free_port

from ttxt_mp.bus import format as bf

pytestmark = pytest.mark.timeout(120)


def _certs(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, 0600 keys)."""
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
         ca, "-days", "2", "-subj", "/CN=ttxt-test-ca"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
         "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=60)
    return ca, crt, key


class TlsRedis(RedisServer):
    """The fixture's server plus a TLS port (arguments after the config file)."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.tls_port = free_port()
        self.ca, crt, key = _certs(tmp)
        wrapper = tmp / "redis-tls.sh"
        wrapper.write_text(f'#!/bin/sh\nexec {self.binary} "$@" --tls-port {self.tls_port} '
                           f"--tls-cert-file {crt} --tls-key-file {key} --tls-ca-cert-file "
                           f"{self.ca} --tls-auth-clients no\n")  # fmt: skip
        os.chmod(wrapper, 0o700)
        self.binary = str(wrapper)


@pytest.fixture
def tls_redis(tmp_path):
    srv = TlsRedis(tmp_path)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def test_bridge_over_tls(tls_redis, tmp_path):
    engine = f"tls{os.getpid()}"
    url = f"rediss://127.0.0.1:{tls_redis.tls_port}/0"
    key = bf.ring_stream_key(engine, "binance-market")
    with producing(engine) as prod:
        # no CA: the server's certificate is not trusted, the bridge stays DOWN
        untrusted = BridgeProcess(engine, bridge_config(tmp_path, engine, url, "connect_timeout = 2.0"))
        try:
            r = untrusted.wait(lambda x: x["state"] == "DOWN", 30, "DOWN on an untrusted cert")
            assert "certificate" in r["message"].lower() or "ssl" in r["message"].lower(), r
        finally:
            untrusted.stop()
        br = BridgeProcess(engine, bridge_config(tmp_path, engine, url,
                                                 f'tls_ca_file = "{tls_redis.ca}"'))
        try:
            br.wait(lambda x: x["state"] == "UP" and x.get("detail", {}).get("rings"), 30, "up over TLS")
            prod.start(rate=5_000, limit=5_000)
            br.wait(lambda x: x["events"] >= 5_000, 30, "published over TLS")
            plain = redis.Redis.from_url(tls_redis.url)  # the same server, plain port
            first, end, lost = accounted(read_entries(plain, key))
            assert (end, lost) == (5_000, 0)
            plain.close()
        finally:
            br.stop()
