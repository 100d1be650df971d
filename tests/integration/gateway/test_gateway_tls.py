"""HTTPS: the gateway makes a self-signed certificate for localhost and this host, and serves the
app and the WebSocket over TLS (what a phone on the network needs to open its microphone)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench.gateway_support import GatewayProcess
from rivulet.core.processes import free_port
from rivulet.gateway.protocol import Close

pytestmark = pytest.mark.integration


def subject_alt_names(certificate: Path) -> str:
    command = ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certificate)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


async def test_self_signed_https_serves_the_app_and_the_websocket(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    settings = {"gateway_tls_self_signed": "true", "gateway_tls_dir": str(tmp_path / "tls")}
    with GatewayProcess(dead, tmp_path / "gateway.log", **settings) as gateway:
        assert gateway.url.startswith("https://")
        status, body = gateway.get("/")
        assert status == 200 and 'id="log"' in body
        certificate = subject_alt_names(tmp_path / "tls" / "cert.pem")
        assert "DNS:localhost" in certificate and f"DNS:{socket.gethostname()}" in certificate
        # a client that trusts that certificate connects to wss:// (here the dialog is down: 4503)
        trusted = ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem"))
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"wss://localhost:{gateway.gateway_port}/ws", ssl=trusted)
            await ws.send_json({"type": "start", "session_id": "tls-test"})
            message = await ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == Close.DIALOG_UNAVAILABLE


def container_healthcheck(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m rivulet.gateway.healthcheck` as docker/gateway.Dockerfile runs it: the gateway's
    own settings from the environment."""
    command = [sys.executable, "-m", "rivulet.gateway.healthcheck", *args]
    return subprocess.run(command, env=gateway.env, capture_output=True, text=True, timeout=30)


def test_the_container_health_check_asks_the_https_gateway(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    settings = {"gateway_tls_self_signed": "true", "gateway_tls_dir": str(tmp_path / "tls")}
    with GatewayProcess(dead, tmp_path / "gateway.log", **settings) as gateway:
        alive = container_healthcheck(gateway)
        assert alive.returncode == 0 and alive.stdout.startswith("https://127.0.0.1:"), alive.stdout
        ready = container_healthcheck(gateway, "--path", "/readyz")  # the dialog is down: 503
        assert ready.returncode == 1 and ": 503" in ready.stdout, ready.stdout
    gone = container_healthcheck(gateway)  # stopped: nothing answers
    assert gone.returncode == 1 and "no answer" in gone.stdout
