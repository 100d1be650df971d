"""Server reflection v1 (what grpcurl, grpcui and Postman ask first) beside v1alpha, through a real
grpc.aio server.

The v1 client here is written from the v1 proto's field numbers alone (grpc/reflection/v1/
reflection.proto, in a descriptor pool of its own), so it shares no code with the server side.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rivulet.core.server import ServerHost
from rivulet.core.settings import ServiceSettings
from tests.support import free_port
from tests.unit.test_core_server import NLP, ProbeService

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
STRING, BYTES, MESSAGE, INT32 = (
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
)
REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
ONEOF_MESSAGE_REQUEST = ("file_containing_symbol", "list_services")

# (message, [(field, number, type, message type or "", repeated)]) as in the v1 proto
V1_MESSAGES = [
    ("ServerReflectionRequest", [("host", 1, STRING, "", False),
                                 ("file_containing_symbol", 4, STRING, "", False),
                                 ("list_services", 7, STRING, "", False)]),
    ("ServiceResponse", [("name", 1, STRING, "", False)]),
    ("ListServiceResponse", [("service", 1, MESSAGE, "ServiceResponse", True)]),
    ("FileDescriptorResponse", [("file_descriptor_proto", 1, BYTES, "", True)]),
    ("ErrorResponse", [("error_code", 1, INT32, "", False), ("error_message", 2, STRING, "", False)]),
    ("ServerReflectionResponse", [("valid_host", 1, STRING, "", False),
                                  ("file_descriptor_response", 4, MESSAGE, "FileDescriptorResponse", False),
                                  ("list_services_response", 6, MESSAGE, "ListServiceResponse", False),
                                  ("error_response", 7, MESSAGE, "ErrorResponse", False)]),
]  # fmt: skip


def v1_classes():
    proto = descriptor_pb2.FileDescriptorProto(name="test_v1_client.proto", package="grpc.reflection.v1")
    proto.syntax = "proto3"
    for name, fields in V1_MESSAGES:
        message = proto.message_type.add(name=name)
        if name == "ServerReflectionRequest":
            message.oneof_decl.add(name="message_request")
        for field, number, kind, type_name, repeated in fields:
            label = REPEATED if repeated else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            added = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                added.type_name = f".grpc.reflection.v1.{type_name}"
            if field in ONEOF_MESSAGE_REQUEST:  # set in the oneof, an empty list_services is still sent
                added.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"grpc.reflection.v1.{n}"))  # noqa: E731
    return get("ServerReflectionRequest"), get("ServerReflectionResponse")


@pytest.fixture
async def channel():
    settings = ServiceSettings(
        grpc_host="127.0.0.1", grpc_port=0, metrics_port=free_port(), shutdown_grace_s=1
    )
    host = ServerHost(settings, [ProbeService()])
    await host.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        yield channel
    await host.stop("test")


async def test_reflection_v1_lists_services_and_describes_them(channel):
    request_class, response_class = v1_classes()
    call = channel.stream_stream(
        V1_METHOD,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    requests = [
        request_class(list_services=""),
        request_class(file_containing_symbol=NLP),
        request_class(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
        request_class(file_containing_symbol="no.such.Service"),
    ]
    listed, riva, reflection_v1, missing = [reply async for reply in call(iter(requests))]
    names = {s.name for s in listed.list_services_response.service}
    expected = {NLP, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"}
    assert expected | {"grpc.reflection.v1alpha.ServerReflection"} <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in riva.file_descriptor_response.file_descriptor_proto
    ]
    assert any(
        f.package == "nvidia.riva.nlp" and f.service[0].name == "RivaLanguageUnderstanding" for f in files
    )
    (v1_file,) = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in reflection_v1.file_descriptor_response.file_descriptor_proto
    ]
    assert (v1_file.name, v1_file.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    method = v1_file.service[0].method[0]
    assert (method.name, method.input_type) == (
        "ServerReflectionInfo",
        ".grpc.reflection.v1.ServerReflectionRequest",
    )
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_reflection_v1alpha_still_answers(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name async for reply in replies for s in reply.list_services_response.service}
    assert {NLP, "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"} <= names
