"""Server interceptor: per-RPC metrics, request ids in logs and responses, and error mapping.

The request id is Riva's `RequestId id = 100` field: taken from the request (or the first message
of a client stream), else from `x-request-id` metadata, else generated; it tags every log line of
the RPC and is echoed in every response message that has an `id` field.
`RivuletError` becomes its gRPC status; any other exception becomes INTERNAL and is logged.
With an `Authenticator` (API keys configured), every RPC is admitted by it first: health and
reflection too, unless they are configured open (rivulet.core.auth).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from rivulet.core.auth import OPEN, Admission, Authenticator
from rivulet.core.errors import RivuletError
from rivulet.core.logs import request_id_var, rpc_method_var
from rivulet.core.metrics import GRPC_ERRORS, GRPC_IN_FLIGHT, GRPC_LATENCY, GRPC_REQUESTS

log = logging.getLogger(__name__)

# Infrastructure services are served but not counted in the RPC metrics.
UNMETERED_PREFIXES = ("grpc.health.", "grpc.reflection.")


def _message_request_id(message: Any) -> str:
    try:
        if message.HasField("id"):
            return message.id.value
    except (ValueError, AttributeError):
        pass
    return ""


def _echo_request_id(message: Any, request_id: str) -> None:
    try:
        if request_id and not message.HasField("id"):
            message.id.value = request_id
    except (ValueError, AttributeError):
        pass


def _metadata_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return value
    return ""


class _Call:
    """Bookkeeping for one RPC: timing, in-flight gauge, final code, log context."""

    def __init__(
        self, service: str, method: str, context: grpc.aio.ServicerContext, metered: bool = True
    ) -> None:
        self.service, self.method, self.context = service, method, context
        self.metered = metered
        self.code = grpc.StatusCode.OK
        self.request_id = _metadata_request_id(context)
        self.admission: Admission = OPEN

    def admit(self, auth: Authenticator | None, streaming: bool) -> None:
        """Check the call's API key and quotas (raises the RivuletError to answer with)."""
        if auth is not None:
            self.admission = auth.admit(self.service, self.context.invocation_metadata() or (), streaming)

    def __enter__(self) -> _Call:
        self.start = time.perf_counter()
        self.tokens = (
            request_id_var.set(self.request_id),
            rpc_method_var.set(f"{self.service}/{self.method}"),
        )
        if self.metered:
            GRPC_IN_FLIGHT.labels(self.service, self.method).inc()
        return self

    def adopt_request_id(self, message: Any) -> None:
        found = _message_request_id(message)
        if found:
            self.request_id = found
        elif not self.request_id:
            self.request_id = uuid.uuid4().hex
        request_id_var.set(self.request_id)

    async def fail(self, exc: BaseException) -> None:
        """Record the status for `exc` and turn it into the RPC's gRPC status."""
        if isinstance(exc, RivuletError):
            self.code = exc.code
            log.info("rpc failed: %s %s", exc.code.name, exc.message)
            await self.context.abort(exc.code, exc.message)
        if isinstance(exc, grpc.aio.AbortError):
            self.code = _status_of(self.context, grpc.StatusCode.UNKNOWN)
            raise exc
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        self.code = grpc.StatusCode.INTERNAL
        log.exception("unhandled error in %s/%s", self.service, self.method)
        await self.context.abort(
            grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see server logs"
        )

    def __exit__(self, *exc_info: Any) -> None:
        self.admission.release()
        if self.code == grpc.StatusCode.OK:
            self.code = _status_of(self.context, grpc.StatusCode.OK)
        labels = (self.service, self.method)
        if self.metered:
            GRPC_IN_FLIGHT.labels(*labels).dec()
            GRPC_LATENCY.labels(*labels).observe(time.perf_counter() - self.start)
            GRPC_REQUESTS.labels(*labels, self.code.name).inc()
            if self.code != grpc.StatusCode.OK:
                GRPC_ERRORS.labels(*labels, self.code.name).inc()
        try:
            request_id_var.reset(self.tokens[0])
            rpc_method_var.reset(self.tokens[1])
        except ValueError:  # a stream closed from another context: nothing to restore there
            pass


def _status_of(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), default)
    return default


async def _tap_first(requests: AsyncIterator[Any], call: _Call) -> AsyncIterator[Any]:
    first = True
    async for message in requests:
        if first:
            call.adopt_request_id(message)
            first = False
        yield message


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler of the server (all four RPC shapes) with `_Call` bookkeeping, and with
    the API key check when `auth` is given."""

    def __init__(self, auth: Authenticator | None = None) -> None:
        self.auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full = handler_call_details.method.lstrip("/")
        if handler is None:
            return handler
        service, _, method = full.rpartition("/")
        metered = not full.startswith(UNMETERED_PREFIXES)
        auth = self.auth if self.auth is not None and not self.auth.is_open(service) else None
        if not metered and auth is None:
            return handler
        streaming = bool(handler.request_streaming or handler.response_streaming)
        spec = _Spec(service, method, metered, auth, streaming)
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, spec), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, spec), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_stream(handler.unary_stream, spec), **kwargs)
        return grpc.stream_stream_rpc_method_handler(_stream(handler.stream_stream, spec), **kwargs)


@dataclass(frozen=True)
class _Spec:
    """What the wrapper of one method needs to know about it."""

    service: str
    method: str
    metered: bool
    auth: Authenticator | None
    streaming: bool

    def call(self, context: grpc.aio.ServicerContext) -> _Call:
        return _Call(self.service, self.method, context, self.metered)


def _prepare(request: Any, call: _Call) -> Any:
    if inspect.isasyncgen(request) or hasattr(request, "__aiter__"):
        return _tap_first(request, call)
    call.adopt_request_id(request)
    return request


def _unary(behavior: Callable, spec: _Spec) -> Callable:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with spec.call(context) as call:
            try:
                call.admit(spec.auth, spec.streaming)
                response = await behavior(_prepare(request, call), context)
            except BaseException as exc:
                await call.fail(exc)
                raise
            _echo_request_id(response, call.request_id)
            return response

    return handle


def _stream(behavior: Callable, spec: _Spec) -> Callable:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        with spec.call(context) as call:
            try:
                call.admit(spec.auth, spec.streaming)
                async for response in behavior(_prepare(request, call), context):
                    _echo_request_id(response, call.request_id)
                    yield response
            except BaseException as exc:
                if isinstance(exc, GeneratorExit):
                    call.code = grpc.StatusCode.CANCELLED
                    raise
                await call.fail(exc)
                raise

    return handle
