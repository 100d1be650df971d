"""The web gateway as the cluster runs it: HTTPS with the cluster's certificate (not a self-signed one),
and its calls to a dialog service that requires mutual TLS and an API key made with the shared client
settings (RIVULET_CLIENT_TLS*, RIVULET_CLIENT_API_KEY), as the dialog's own calls to ASR/NLU/TTS are."""

from __future__ import annotations

import ssl
import urllib.request

import pytest

from bench.gateway_support import GatewayProcess
from tests.integration.dialog.conftest import DIALOG, dialog_env
from tests.support import ServiceProcess, free_port, wait_for_health

pytestmark = pytest.mark.integration


@pytest.fixture
def mutual_tls_dialog(redis_url, certs, api_keys, tmp_path):
    health_port = free_port()
    env = {
        **dialog_env(redis_url, f"127.0.0.1:{free_port()}"),
        "tls_cert_file": str(certs.server_cert),
        "tls_key_file": str(certs.server_key),
        "tls_client_ca_file": str(certs.ca),
        "auth_keys_file": str(api_keys[0]),
        "health_port": health_port,  # the kubelet's plain-text probe port (mutual TLS on the main one)
    }
    service = ServiceProcess("rivulet.dialog", tmp_path / "dialog.log", env, tls_ca_file=certs.ca).start()
    try:
        wait_for_health(f"127.0.0.1:{health_port}", service=DIALOG, timeout_s=60)
        yield service
    finally:
        service.stop()


def test_gateway_serves_the_cluster_certificate_and_calls_dialog_over_mutual_tls_with_a_key(
    mutual_tls_dialog, certs, api_keys, tmp_path
):
    client = {
        "gateway_tls_cert": str(certs.server_cert),
        "gateway_tls_key": str(certs.server_key),
        "client_tls": "true",
        "client_tls_ca_file": str(certs.ca),
        "client_tls_cert_file": str(certs.client_cert),
        "client_tls_key_file": str(certs.client_key),
    }
    address = f"localhost:{mutual_tls_dialog.port}"
    key = api_keys[1]["client"]
    with GatewayProcess(address, tmp_path / "gateway.log", client_api_key=key, **client) as gateway:
        trusted = ssl.create_default_context(cafile=str(certs.ca))  # verified: the CA's certificate
        url = f"https://localhost:{gateway.gateway_port}/healthz"
        with urllib.request.urlopen(url, context=trusted) as reply:
            assert reply.status == 200
        assert gateway.get("/readyz")[0] == 200  # health over mutual TLS
        status, body = gateway.get("/api/session/nobody-yet")  # GetSession: the key was accepted
        assert status == 404 and "NOT_FOUND" in body, (status, body)
    with GatewayProcess(address, tmp_path / "keyless.log", **client) as keyless:
        status, body = keyless.get("/api/session/nobody-yet")
        assert "UNAUTHENTICATED" in body, (status, body)
