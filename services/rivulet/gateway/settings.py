"""Gateway settings (`RIVULET_GATEWAY_*` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from rivulet.core.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    gateway_host: str = Field("0.0.0.0", description="Interface the web server binds.")
    gateway_port: int = Field(8080, ge=0, le=65535, description="Web server port (app, WebSocket, API).")
    gateway_dialog_url: str = Field("localhost:50051", description="Dialog service address host:port.")
    gateway_tts_url: str = Field(
        "", description="Riva TTS address for the voice list (empty: the dialog service's address)."
    )
    gateway_allowed_origins: str = Field(
        "",
        description=(
            "Space-separated origins (scheme://host:port) allowed to open the WebSocket; empty: the "
            "gateway's own origin (the Origin's host:port equals the Host header)."
        ),
    )
    gateway_max_conversations: int = Field(64, gt=0, description="Open WebSocket conversations at most.")
    gateway_max_frame_bytes: int = Field(
        8192, gt=0, description="Largest WebSocket message accepted (a 20 ms audio frame is 640 bytes)."
    )
    gateway_max_frames_per_s: int = Field(
        150, gt=0, description="Messages per second one connection may send (a burst of one second's worth)."
    )
    gateway_start_timeout_s: float = Field(10.0, gt=0, description="Time allowed for the first message.")
    gateway_rpc_timeout_s: float = Field(5.0, gt=0, description="Deadline of session/voice API calls.")
    gateway_tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS/WSS.")
    gateway_tls_key: Path | None = Field(None, description="PEM private key of gateway_tls_cert.")
    gateway_tls_self_signed: bool = Field(
        False, description="Serve HTTPS with a self-signed certificate generated on first start (cached)."
    )
    gateway_tls_dir: Path = Field(
        Path.home() / ".cache" / "rivulet" / "gateway-tls",
        description="Where the generated self-signed certificate is kept.",
    )

    @property
    def tts_url(self) -> str:
        return self.gateway_tts_url or self.gateway_dialog_url

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(o.rstrip("/") for o in self.gateway_allowed_origins.split())
