"""asyncio client for Triton Inference Server: readiness, model discovery, inference with retries.

Failures are mapped to what a Rivulet client should see: Triton unreachable → UNAVAILABLE,
unknown/unready model → UNAVAILABLE (the service advertises only models it found ready),
the model rejecting its input → INVALID_ARGUMENT, a deadline → DEADLINE_EXCEEDED.

A caller that stops waiting for an inference (a client gone mid-stream, a second pass dropped or
late) does not cancel the gRPC call under it: the call ends by its answer or its deadline
(`rivulet.core.grpc_calls`: cancelling a grpc.aio call leaks native memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from rivulet.core.errors import RivuletError, invalid_argument, unavailable
from rivulet.core.grpc_calls import CallsInFlight
from rivulet.core.metrics import DEPENDENCY_READY, TRITON_ERRORS, TRITON_LATENCY
from rivulet.core.settings import ServiceSettings
from rivulet.core.tls import triton_tls_options

log = logging.getLogger(__name__)

# Triton status strings (tritonclient reports them as text such as "StatusCode.UNAVAILABLE").
_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "CANCELLED")


@dataclass(frozen=True)
class ModelInfo:
    """A ready model and the `parameters` map of its config.pbtxt."""

    name: str
    version: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    max_batch_size: int = 0


def language_matches(have: str, want: str) -> bool:
    """A model in language ``have`` serves a request for ``want``: '' matches any; 'en' matches
    'en-US'; comparison ignores case."""
    if not want:
        return True
    want, have = want.lower(), have.lower()
    return have == want or have.split("-")[0] == want


def _status(exc: InferenceServerException) -> str:
    return str(exc.status() or "")


class TritonClient:
    """One gRPC channel to Triton shared by a service's RPCs."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 10.0,
        retries: int = 2,
        retry_backoff_s: float = 0.05,
        tls_options: dict[str, Any] | None = None,
    ):
        self.url = url
        self.tls_options = tls_options or {}  # rivulet.core.tls.triton_tls_options
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self._aio_client: triton_aio.InferenceServerClient | None = None
        self.calls = CallsInFlight()  # inferences in flight, awaited or not

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TritonClient:
        """The client a service's settings describe: address, deadline, TLS (RIVULET_TRITON_*)."""
        return cls(
            settings.triton_url, timeout_s=settings.triton_timeout_s, tls_options=triton_tls_options(settings)
        )

    @property
    def _client(self) -> triton_aio.InferenceServerClient:
        """Made on first use, inside the running event loop (a gRPC aio channel belongs to one loop)."""
        if self._aio_client is None:
            self._aio_client = triton_aio.InferenceServerClient(
                self.url,
                channel_args=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024),
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2000),
                ],
                **self.tls_options,
            )
        return self._aio_client

    async def close(self) -> None:
        await self.calls.wait(self.timeout_s)  # calls whose callers stopped waiting end by their deadlines
        if self._aio_client is not None:
            await self._aio_client.close()
            self._aio_client = None

    async def server_ready(self) -> bool:
        try:
            ready = await self._client.is_server_ready(client_timeout=2.0)
        except InferenceServerException:
            ready = False
        DEPENDENCY_READY.labels("triton").set(1 if ready else 0)
        return bool(ready)

    async def model_ready(self, name: str) -> bool:
        try:
            return bool(await self._client.is_model_ready(name, client_timeout=2.0))
        except InferenceServerException:
            return False

    async def wait_ready(self, models: Iterable[str] = (), timeout_s: float = 120.0) -> None:
        """Wait until the server and every named model are ready; raise UNAVAILABLE after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        pending = list(models)
        while True:
            if await self.server_ready():
                pending = [m for m in pending if not await self.model_ready(m)]
                if not pending:
                    return
            if time.monotonic() > deadline:
                raise unavailable(
                    f"Triton at {self.url} not ready after {timeout_s:.0f}s (waiting for {pending})"
                )
            await asyncio.sleep(0.25)

    async def ready_models(self) -> list[ModelInfo]:
        """Every model Triton reports READY, with its config parameters."""
        try:
            index = await self._client.get_model_repository_index(as_json=True, client_timeout=5.0)
        except InferenceServerException as exc:
            raise unavailable(f"Triton at {self.url} is unreachable: {exc.message()}") from exc
        found = []
        for entry in index.get("models", []):
            if entry.get("state") != "READY":
                continue
            try:
                config = await self._client.get_model_config(entry["name"], as_json=True, client_timeout=5.0)
            except InferenceServerException:
                continue
            config = config.get("config", {})
            parameters = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
            found.append(
                ModelInfo(
                    name=entry["name"],
                    version=str(entry.get("version", "")),
                    parameters=parameters,
                    max_batch_size=int(config.get("max_batch_size", 0)),
                )
            )
        return found

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        sequence_id: int = 0,
        sequence_start: bool = False,
        sequence_end: bool = False,
        request_id: str = "",
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """One inference, with a deadline of `timeout_s` (default: the client's). Transient failures
        are retried (not for sequence requests, whose server-side state must not see a chunk twice).
        Cancelling the caller does not cancel the call (see the module's docstring)."""
        triton_inputs = []
        for name, array in inputs.items():
            tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            triton_inputs.append(tensor)
        requested = [InferRequestedOutput(name) for name in outputs]
        deadline_s = timeout_s or self.timeout_s
        attempts = 1 if sequence_id else self.retries + 1
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                result = await self.calls.uncancelled(
                    self._client.infer(
                        model,
                        triton_inputs,
                        outputs=requested,
                        request_id=request_id,
                        sequence_id=sequence_id,
                        sequence_start=sequence_start,
                        sequence_end=sequence_end,
                        client_timeout=deadline_s,
                    )
                )
            except InferenceServerException as exc:
                status = _status(exc)
                transient = any(t in status for t in _TRANSIENT)
                TRITON_ERRORS.labels(model, status or "error").inc()
                if transient and attempt + 1 < attempts:
                    await asyncio.sleep(self.retry_backoff_s * (2**attempt))
                    continue
                raise self._map_error(model, exc, deadline_s) from exc
            TRITON_LATENCY.labels(model).observe(time.perf_counter() - start)
            return {name: result.as_numpy(name) for name in outputs}
        raise AssertionError("unreachable")

    def _map_error(self, model: str, exc: InferenceServerException, timeout_s: float) -> RivuletError:
        status, message = _status(exc), exc.message() or str(exc)
        if "DEADLINE_EXCEEDED" in status or "Deadline" in message:
            return RivuletError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"model {model} did not answer in {timeout_s:g}s"
            )
        if any(t in status for t in ("UNAVAILABLE", "CANCELLED")) or not status:
            return unavailable(f"Triton at {self.url} is unavailable ({message}); retry when it is back")
        if "NOT_FOUND" in status or "unknown model" in message or "is not ready" in message:
            return unavailable(f"model {model} is not loaded on Triton at {self.url} ({message})")
        if "INVALID_ARG" in status:
            return invalid_argument(f"model {model} rejected the input: {message}")
        return unavailable(f"Triton inference on {model} failed: {status} {message}")


class ModelCatalogLike(Protocol):
    """What a service's model catalog offers to readiness: follow Triton's ready models."""

    def update(self, infos: Iterable[ModelInfo]) -> None: ...

    @property
    def default_ready(self) -> bool: ...


async def refresh_catalog(triton: TritonClient, catalog: ModelCatalogLike) -> bool:
    """A Triton-backed service's readiness: Triton is up, the catalog follows its ready models, and
    the service's default model is among them."""
    if not await triton.server_ready():
        return False
    try:
        catalog.update(await triton.ready_models())
    except RivuletError:
        return False
    return catalog.default_ready
