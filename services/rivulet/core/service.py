"""What a Rivulet service plugs into the server host."""

from __future__ import annotations

from typing import Protocol

import grpc


class Service(Protocol):
    """One gRPC API (e.g. Riva NLU) with its dependencies.

    The host calls `start` before serving, `register` to add the servicer, `ready` every
    readiness interval to drive its health status, and `stop` once after the server has drained.
    """

    #: fully qualified gRPC service names this object serves (health + reflection use them)
    service_names: tuple[str, ...]

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self) -> None: ...

    async def ready(self) -> bool: ...

    async def stop(self) -> None: ...
