"""Redis over TLS with a password, as the chart runs it with global.tls on: the services' client
reaches it with a `rediss://` URL trusting the CA, and a plain-text client is refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from rivulet.core.localca import create_local_certificates
from rivulet.core.redis_client import create_redis, redis_ready
from tests.support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    certs = create_local_certificates(tmp_path / "tls")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
         "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "optional",
         "--requirepass", "s3cret", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)
    yield port, certs
    process.terminate()
    process.wait(10)


async def test_services_reach_redis_over_tls_with_the_password(tls_redis):
    port, certs = tls_redis
    secure = create_redis(f"rediss://:s3cret@localhost:{port}/0?ssl_ca_certs={certs.ca}")
    for _ in range(50):
        if await redis_ready(secure):
            break
        await asyncio.sleep(0.05)
    assert await redis_ready(secure)
    await secure.set("k", "v")
    assert await secure.get("k") == b"v"
    await secure.aclose()
    plain = create_redis(f"redis://:s3cret@localhost:{port}/0", timeout_s=0.5)
    assert not await redis_ready(plain)
    await plain.aclose()
    wrong_password = create_redis(f"rediss://:nope@localhost:{port}/0?ssl_ca_certs={certs.ca}")
    assert not await redis_ready(wrong_password)
    await wrong_password.aclose()
