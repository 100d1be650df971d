"""HTTPS for the gateway: a given certificate, or a self-signed one generated once with `openssl`
(browsers open the microphone only on localhost or over HTTPS)."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def self_signed(directory: Path, days: int = 825) -> tuple[Path, Path]:
    """cert.pem + key.pem in `directory` (made on first use, for localhost, this host's name and
    127.0.0.1); returns their paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed: install it, or give gateway_tls_cert/_key")
    directory.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    names = f"subjectAltName=DNS:localhost,DNS:{host},IP:127.0.0.1"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days)]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}", "-addext", names]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl could not make a certificate: {result.stderr.strip()}")
    key.chmod(0o600)
    log.info("generated a self-signed certificate for %s in %s", host, directory)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
