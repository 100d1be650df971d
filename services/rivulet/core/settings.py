"""Typed settings shared by every service, read from `RIVULET_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
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
