"""The grpc.aio server every service runs in: health, reflection, limits, metrics, graceful drain.

    host = ServerHost(settings, [NluService(settings)])
    await host.start()          # binds, serves; health NOT_SERVING until dependencies are ready
    await host.wait_for_termination()   # until SIGTERM/SIGINT or host.stop()

Health follows each service's dependencies: a readiness loop re-checks them every
`readiness_interval_s` and flips that service (and the overall "" status) between SERVING and
NOT_SERVING, so a Triton restart shows up in health checks and recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rivulet.core.auth import Authenticator
from rivulet.core.interceptor import ObservabilityInterceptor
from rivulet.core.metrics import start_metrics_server
from rivulet.core.reflection import enable_reflection
from rivulet.core.service import Service
from rivulet.core.settings import ServiceSettings
from rivulet.core.tls import server_credentials

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _transport(tls: bool, mutual: bool) -> str:
    return "mutual TLS" if mutual else "TLS" if tls else "plain text"


class ServerHost:
    """Hosts one or more `Service`s on one gRPC port."""

    def __init__(self, settings: ServiceSettings, services: Sequence[Service]) -> None:
        self.settings = settings
        self.services = list(services)
        self.health = health.aio.HealthServicer()
        self.credentials = server_credentials(settings)  # None = plain text
        self.auth = Authenticator.from_settings(settings)  # None = no API keys required
        self.server = grpc.aio.server(
            interceptors=[ObservabilityInterceptor(self.auth)], options=server_options(settings)
        )
        self.port = 0
        self.metrics_port = 0
        self.health_port = 0
        self._health_server: grpc.aio.Server | None = None
        self._stopping = asyncio.Event()
        self._readiness_task: asyncio.Task | None = None
        self._status: dict[str, int] = {}

    async def start(self) -> int:
        """Start dependencies, bind and serve. Returns the bound gRPC port."""
        for service in self.services:
            await service.start()
            service.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [n for s in self.services for n in s.service_names]
        enable_reflection([*names, health.SERVICE_NAME], self.server)  # v1 and v1alpha
        for name in ["", *names]:
            await self._set(name, NOT_SERVING)
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        if self.credentials is not None:
            self.port = self.server.add_secure_port(address, self.credentials)
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(
                f"could not bind gRPC port {self.settings.grpc_host}:{self.settings.grpc_port}"
            )
        await self.server.start()
        if self.settings.health_port:
            await self._start_health_listener()
        if self.settings.metrics_port:
            self.metrics_port = start_metrics_server(self.settings.metrics_port)
        await self.refresh_health()
        self._readiness_task = asyncio.create_task(self._readiness_loop(), name="readiness")
        log.info(
            "serving %s on port %d (%s, %s; metrics on %s)",
            ", ".join(names),
            self.port,
            _transport(self.credentials is not None, self.settings.tls_client_ca_file is not None),
            "API keys required" if self.auth else "no API keys",
            self.metrics_port or "-",
        )
        return self.port

    async def _start_health_listener(self) -> None:
        """A plain-text listener with only the health service, for probes that cannot do TLS."""
        self._health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._health_server)
        address = f"{self.settings.grpc_host}:{self.settings.health_port}"
        self.health_port = self._health_server.add_insecure_port(address)
        if self.health_port == 0:
            raise RuntimeError(f"could not bind the health port {address}")
        await self._health_server.start()

    async def _set(self, name: str, status: int) -> None:
        if self._status.get(name) != status:
            self._status[name] = status
            await self.health.set(name, status)
            if name:
                log.info("health %s -> %s", name, health_pb2.HealthCheckResponse.ServingStatus.Name(status))

    async def refresh_health(self) -> bool:
        """Ask every service whether its dependencies are ready and publish the result."""
        all_ready = True
        for service in self.services:
            try:
                ready = await service.ready()
            except Exception:
                log.exception("readiness check failed")
                ready = False
            all_ready &= ready
            for name in service.service_names:
                await self._set(name, SERVING if ready else NOT_SERVING)
        await self._set("", SERVING if all_ready else NOT_SERVING)
        return all_ready

    async def _readiness_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.readiness_interval_s)
            if not self._stopping.is_set():
                await self.refresh_health()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: asyncio.ensure_future(self.stop(f"signal {s.name}")))

    async def stop(self, reason: str = "stop requested") -> None:
        """Graceful shutdown: report NOT_SERVING, refuse new RPCs, let in-flight ones finish
        within `shutdown_grace_s`, then stop the services."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("shutting down (%s); draining for up to %.0fs", reason, self.settings.shutdown_grace_s)
        await self.health.enter_graceful_shutdown()
        if self._readiness_task:
            self._readiness_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness_task
        await self.server.stop(self.settings.shutdown_grace_s)
        if self._health_server is not None:
            await self._health_server.stop(0)
        for service in self.services:
            await service.stop()
        log.info("stopped")

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def serve(settings: ServiceSettings, services: Sequence[Service]) -> None:
    """Run `services` until SIGTERM/SIGINT: the body of every service's `__main__`."""
    host = ServerHost(settings, services)
    await host.start()
    host.install_signal_handlers()
    await host.wait_for_termination()
