"""TLS for gRPC servers and for the channels services open to each other.

Server side: `server_credentials(settings)` reads the certificate and key named by
`RIVULET_TLS_CERT_FILE` / `RIVULET_TLS_KEY_FILE` (and `RIVULET_TLS_CLIENT_CA_FILE` for mutual TLS).
The files are re-read when they change (checked at each new TLS handshake, at most once a second), so
a certificate renewed by cert-manager in a mounted Secret is served without a restart.

Client side: `open_channel(address, security)` makes a `grpc.aio` channel, TLS or not, that sends
an API key (`authorization: Bearer ...`) with every call when one is configured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from rivulet.core.settings import ServiceSettings


class TlsConfigError(ValueError):
    """A TLS setting points at something unusable; the message says which setting and why."""


def _read(path: Path, setting: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{setting}={path}: cannot read it ({exc.strerror})") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{setting}={path}: not a PEM file (no '-----BEGIN' line)")
    return data


def tls_enabled(settings: ServiceSettings) -> bool:
    """TLS is on when both a certificate and a key are given; one without the other is an error."""
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise TlsConfigError(
            "set both RIVULET_TLS_CERT_FILE and RIVULET_TLS_KEY_FILE (or neither, for plain text)"
        )
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        raise TlsConfigError(
            "RIVULET_TLS_CLIENT_CA_FILE (mutual TLS) needs RIVULET_TLS_CERT_FILE and _KEY_FILE"
        )
    return settings.tls_cert_file is not None


class _CertificateFiles:
    """The server's certificate files, re-read when their modification times change."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self.paths = [p for p in (cert, key, client_ca) if p is not None]
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self._stamp = self._stamps()
        self._checked = time.monotonic()

    def _stamps(self) -> tuple[int, ...]:
        stamps = []
        for path in self.paths:
            try:
                stamps.append(os.stat(path).st_mtime_ns)
            except OSError:
                stamps.append(-1)
        return tuple(stamps)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        key = _read(self.key, "RIVULET_TLS_KEY_FILE")
        chain = _read(self.cert, "RIVULET_TLS_CERT_FILE")
        ca = _read(self.client_ca, "RIVULET_TLS_CLIENT_CA_FILE") if self.client_ca else None
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=ca)

    def fetch_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's certificate_configuration_fetcher: a new configuration, or None to keep the current."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return None
        self._checked = now
        stamp = self._stamps()
        if stamp == self._stamp:
            return None
        try:
            config = self.configuration()
        except TlsConfigError:
            return None  # half-written during a rotation: keep serving the old one, retry later
        self._stamp = stamp
        return config


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """Credentials for `add_secure_port`, or None when TLS is off. Raises `TlsConfigError`."""
    if not tls_enabled(settings):
        return None
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    files = _CertificateFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    return grpc.dynamic_ssl_server_credentials(
        files.configuration(),
        files.fetch_if_changed,
        require_client_authentication=settings.tls_client_ca_file is not None,
    )


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client reaches a service: TLS roots / client certificate, and the metadata it sends."""

    credentials: grpc.ChannelCredentials | None = None
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ChannelSecurity:
        credentials = None
        if settings.client_tls:
            roots = (
                _read(settings.client_tls_ca_file, "RIVULET_CLIENT_TLS_CA_FILE")
                if (settings.client_tls_ca_file)
                else None
            )
            if (settings.client_tls_cert_file is None) != (settings.client_tls_key_file is None):
                raise TlsConfigError("set both RIVULET_CLIENT_TLS_CERT_FILE and RIVULET_CLIENT_TLS_KEY_FILE")
            key = chain = None
            if settings.client_tls_cert_file and settings.client_tls_key_file:
                key = _read(settings.client_tls_key_file, "RIVULET_CLIENT_TLS_KEY_FILE")
                chain = _read(settings.client_tls_cert_file, "RIVULET_CLIENT_TLS_CERT_FILE")
            credentials = grpc.ssl_channel_credentials(roots, key, chain)
        key_value = settings.client_api_key.get_secret_value()
        metadata = (("authorization", f"Bearer {key_value}"),) if key_value else ()
        return cls(credentials, metadata)


class _MetadataInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds fixed metadata (the API key) to every call of a channel, TLS or not."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.metadata = tuple(metadata)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self.metadata)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def triton_tls_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments of tritonclient's InferenceServerClient for TLS to Triton ({} = plain text)."""
    if not settings.triton_tls:
        return {}
    if (settings.triton_tls_cert_file is None) != (settings.triton_tls_key_file is None):
        raise TlsConfigError("set both RIVULET_TRITON_TLS_CERT_FILE and RIVULET_TRITON_TLS_KEY_FILE")
    options: dict[str, Any] = {"ssl": True}
    for key, path, setting in (
        ("root_certificates", settings.triton_tls_ca_file, "RIVULET_TRITON_TLS_CA_FILE"),
        ("certificate_chain", settings.triton_tls_cert_file, "RIVULET_TRITON_TLS_CERT_FILE"),
        ("private_key", settings.triton_tls_key_file, "RIVULET_TRITON_TLS_KEY_FILE"),
    ):
        if path is not None:
            _read(path, setting)  # fail at start, naming the setting, rather than at the first call
            options[key] = str(Path(path).expanduser())
    return options


def open_channel(
    address: str, security: ChannelSecurity | None = None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """A `grpc.aio` channel to `address` with `security`'s TLS and metadata (plain text without)."""
    security = security or ChannelSecurity()
    interceptors = [_MetadataInterceptor(security.metadata)] if security.metadata else None
    if security.credentials is not None:
        return grpc.aio.secure_channel(
            address, security.credentials, options=list(options), interceptors=interceptors
        )
    return grpc.aio.insecure_channel(address, options=list(options), interceptors=interceptors)


def sync_channel(address: str, ca_file: Path | None = None, use_tls: bool = False) -> grpc.Channel:
    """A blocking channel for health checks and command-line tools: TLS when `use_tls` or `ca_file`."""
    if use_tls or ca_file:
        roots = _read(ca_file, "--ca-cert") if ca_file else None
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(roots))
    return grpc.insecure_channel(address)
