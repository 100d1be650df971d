"""Typed settings shared by every service, read from `RIVULET_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ServiceSettings(BaseSettings):
    """Settings every gRPC service has. Services subclass this and add their own fields."""

    model_config = SettingsConfigDict(env_prefix="RIVULET_", extra="ignore")

    grpc_host: str = Field("0.0.0.0", description="Interface the gRPC server binds.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port; 0 disables.")
    triton_url: str = Field("localhost:8001", description="Triton Inference Server gRPC address host:port.")
    triton_timeout_s: float = Field(10.0, gt=0, description="Deadline for one Triton inference call.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for state.")
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["json", "text"] = Field("json", description="Structured JSON or plain text logs.")
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="Seconds in-flight RPCs get to finish on shutdown."
    )
    max_message_bytes: int = Field(64 * MIB, gt=0, description="Largest gRPC message accepted or sent.")
    keepalive_time_ms: int = Field(30_000, gt=0, description="Server keepalive ping interval.")
    keepalive_timeout_ms: int = Field(10_000, gt=0, description="Keepalive ping ack deadline.")
    readiness_interval_s: float = Field(
        1.0, gt=0, description="How often dependency readiness is re-checked."
    )
    # Transport security (rivulet.core.tls): TLS is on when a certificate and key are given.
    tls_cert_file: Path | None = Field(
        None, description="PEM server certificate chain; with tls_key_file every gRPC listener uses TLS."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    health_port: int = Field(
        0,
        ge=0,
        le=65535,
        description=(
            "Extra plain-text port serving only grpc.health.v1 (kubelet gRPC probes cannot speak TLS); "
            "0 = off."
        ),
    )
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).",
    )
    # How this service calls other Rivulet services (the dialog's ASR/NLU/TTS clients).
    client_tls: bool = Field(False, description="Call other services over TLS.")
    client_tls_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that signed the called services' certificates (default: system roots).",
    )
    client_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate presented to services that require mutual TLS."
    )
    client_tls_key_file: Path | None = Field(None, description="PEM private key of client_tls_cert_file.")
    client_api_key: SecretStr = Field(
        SecretStr(""), description="API key sent (authorization: Bearer) to services that require one."
    )
    # How this service calls Triton (NLU, ASR, TTS): TLS when Triton serves it (--grpc-use-ssl).
    triton_tls: bool = Field(False, description="Call Triton's gRPC endpoint over TLS.")
    triton_tls_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signed Triton's certificate (default: system roots)."
    )
    triton_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate for Triton's mutual TLS (--grpc-use-ssl-mutual)."
    )
    triton_tls_key_file: Path | None = Field(None, description="PEM private key of triton_tls_cert_file.")
    # API keys and quotas (rivulet.core.auth): off unless a keys file is given.
    auth_keys_file: Path | None = Field(
        None,
        description="YAML file of hashed API keys (python -m rivulet.core.apikeys); set = keys required.",
    )
    auth_open_health: bool = Field(True, description="Let grpc.health.v1 be called without an API key.")
    auth_open_reflection: bool = Field(
        True, description="Let server reflection be called without an API key."
    )
    auth_default_max_streams: int = Field(
        0, ge=0, description="Concurrent streaming RPCs per key unless its entry says (0 = unlimited)."
    )
    auth_default_requests_per_s: float = Field(
        0.0, ge=0, description="Sustained RPCs per second per key unless its entry says (0 = unlimited)."
    )
