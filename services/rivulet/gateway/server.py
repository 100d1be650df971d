"""Run the gateway's web server: plain HTTP, or HTTPS with a given or a self-signed certificate."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from rivulet.gateway.app import create_app
from rivulet.gateway.settings import GatewaySettings
from rivulet.gateway.tls import self_signed, server_context

log = logging.getLogger(__name__)


class GatewayServer:
    """`await start()` binds and serves; `url` says where; `await stop()` closes every conversation
    (close code 1001: the app reconnects) and the server."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=5.0)
        self.port = 0
        self.scheme = "http"
        self._set_up = False

    async def start(self) -> str:
        s = self.settings
        ssl_context = None
        if s.gateway_tls_cert or s.gateway_tls_key:
            if not (s.gateway_tls_cert and s.gateway_tls_key):
                raise ValueError("set both RIVULET_GATEWAY_TLS_CERT and RIVULET_GATEWAY_TLS_KEY")
            ssl_context = server_context(s.gateway_tls_cert, s.gateway_tls_key)
        elif s.gateway_tls_self_signed:
            ssl_context = server_context(*await asyncio.to_thread(self_signed, s.gateway_tls_dir))
        self.scheme = "https" if ssl_context else "http"
        await self.runner.setup()
        self._set_up = True
        site = web.TCPSite(self.runner, s.gateway_host, s.gateway_port, ssl_context=ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the bound port (0 picks one)
        log.info("gateway serving %s (dialog at %s)", self.url, s.gateway_dialog_url)
        return self.url

    @property
    def url(self) -> str:
        return f"{self.scheme}://localhost:{self.port}"

    async def stop(self) -> None:
        if self._set_up:
            await self.runner.cleanup()
            self._set_up = False


async def serve(settings: GatewaySettings) -> None:
    """Serve until SIGTERM/SIGINT (the body of `python -m rivulet.gateway`)."""
    server = GatewayServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway shutting down")
    await server.stop()
