"""The shared server bootstrap, exercised through a real grpc.aio server and client."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY
from riva.proto import riva_nlp_pb2 as nlp
from riva.proto import riva_nlp_pb2_grpc

from rivulet.core.errors import invalid_argument
from rivulet.core.logs import JsonFormatter, _ContextFilter
from rivulet.core.server import ServerHost
from rivulet.core.settings import MIB, ServiceSettings
from tests.support import free_port

NLP = "nvidia.riva.nlp.RivaLanguageUnderstanding"


class ProbeServicer(riva_nlp_pb2_grpc.RivaLanguageUnderstandingServicer):
    """Answers with the query as the intent; 'slow', 'bad' and 'boom' exercise the host's paths."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def AnalyzeIntent(self, request, context):
        self.started.set()
        if request.query == "slow":
            await asyncio.sleep(1.0)
        if request.query == "bad":
            raise invalid_argument("query 'bad' is not allowed: send another one")
        if request.query == "boom":
            raise ValueError("a bug")
        return nlp.AnalyzeIntentResponse(intent=nlp.Classification(class_name=request.query[:20]))


class ProbeService:
    service_names = (NLP,)

    def __init__(self) -> None:
        self.servicer = ProbeServicer()
        self.is_ready = True
        self.stopped = False

    async def start(self) -> None:
        pass

    def register(self, server) -> None:
        riva_nlp_pb2_grpc.add_RivaLanguageUnderstandingServicer_to_server(self.servicer, server)

    async def ready(self) -> bool:
        return self.is_ready

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
async def hosted():
    settings = ServiceSettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=free_port(),
        readiness_interval_s=0.05,
        shutdown_grace_s=5,
    )
    service = ProbeService()
    host = ServerHost(settings, [service])
    await host.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{host.port}", options=[("grpc.max_send_message_length", -1)]
    )
    yield host, service, channel
    await channel.close()
    await host.stop()


async def _health(channel, service: str = "") -> str:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def _eventually(predicate, timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_health_follows_dependency_readiness(hosted):
    _, service, channel = hosted
    assert await _health(channel, NLP) == "SERVING"
    assert await _health(channel) == "SERVING"
    service.is_ready = False
    await _eventually(lambda: _is(channel, NLP, "NOT_SERVING"))
    assert await _health(channel) == "NOT_SERVING"
    service.is_ready = True
    await _eventually(lambda: _is(channel, NLP, "SERVING"))


async def _is(channel, service, want) -> bool:
    return await _health(channel, service) == want


async def test_health_not_serving_before_dependencies_ready():
    service = ProbeService()
    service.is_ready = False
    host = ServerHost(ServiceSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0), [service])
    await host.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        assert await _health(channel, NLP) == "NOT_SERVING"
        assert await _health(channel) == "NOT_SERVING"
    await host.stop()


async def test_errors_map_to_precise_status_codes(hosted):
    _, _, channel = hosted
    stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="bad"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "send another one" in bad.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as boom:
        await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="boom"))
    assert boom.value.code() == grpc.StatusCode.INTERNAL
    assert "ValueError" in boom.value.details()
    ok = await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="fine"))
    assert ok.intent.class_name == "fine"


async def test_request_id_is_echoed_and_logged(hosted):
    _, _, channel = hosted
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rivulet.core.interceptor")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
        reply = await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="hello", id={"value": "req-42"}))
        assert reply.id.value == "req-42"
        generated = await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="hello"))
        assert len(generated.id.value) == 32
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="bad", id={"value": "req-43"}))
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in lines if "rpc failed" in e["msg"]]
    assert failed and failed[0]["request_id"] == "req-43"
    assert failed[0]["rpc"] == f"{NLP}/AnalyzeIntent"


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _settled(condition, seconds: float = 5.0) -> None:
    """Wait (at most `seconds`) until the server's side has caught up with what the client saw."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_metrics_count_requests_errors_latency_and_in_flight(hosted):
    host, service, channel = hosted
    stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
    base = {"service": NLP, "method": "AnalyzeIntent"}
    ok0 = _sample("rivulet_grpc_requests_total", **base, code="OK")
    err0 = _sample("rivulet_grpc_errors_total", **base, code="INVALID_ARGUMENT")
    hist0 = _sample("rivulet_grpc_request_duration_seconds_count", **base)
    await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="a"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="bad"))
    # the client sees an error status before the server's interceptor has finished counting it
    await _settled(lambda: _sample("rivulet_grpc_request_duration_seconds_count", **base) == hist0 + 2)
    assert _sample("rivulet_grpc_requests_total", **base, code="OK") == ok0 + 1
    assert _sample("rivulet_grpc_errors_total", **base, code="INVALID_ARGUMENT") == err0 + 1
    assert _sample("rivulet_grpc_request_duration_seconds_count", **base) == hist0 + 2

    service.servicer.started.clear()
    slow = asyncio.ensure_future(stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="slow")))
    await service.servicer.started.wait()
    assert _sample("rivulet_grpc_in_flight", **base) == 1
    await slow
    assert _sample("rivulet_grpc_in_flight", **base) == 0

    url = f"http://127.0.0.1:{host.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'rivulet_grpc_requests_total{code="OK",method="AnalyzeIntent"' in body


async def test_graceful_shutdown_drains_in_flight_rpcs(hosted):
    host, service, channel = hosted
    stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
    service.servicer.started.clear()
    slow = asyncio.ensure_future(stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="slow")))
    await service.servicer.started.wait()
    stopping = asyncio.ensure_future(host.stop("test"))
    reply = await slow
    assert reply.intent.class_name == "slow"
    await stopping
    assert service.stopped
    with pytest.raises(grpc.aio.AioRpcError) as after:
        await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="late"), timeout=2)
    assert after.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_message_size_limit_is_64_mib(hosted):
    _, _, channel = hosted
    stub = riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel)
    big = await stub.AnalyzeIntent(
        nlp.AnalyzeIntentRequest(query="x" * (8 * MIB))
    )  # over gRPC's 4 MiB default
    assert big.intent.class_name == "x" * 20
    with pytest.raises(grpc.aio.AioRpcError) as too_big:
        await stub.AnalyzeIntent(nlp.AnalyzeIntentRequest(query="x" * (65 * MIB)))
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_reflection_lists_services(hosted):
    _, _, channel = hosted
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(requests()):
        names = {s.name for s in reply.list_services_response.service}
        break
    assert {NLP, "grpc.health.v1.Health"} <= names
