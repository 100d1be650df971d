"""Rivulet's .proto sources must be wire-identical to what nvidia-riva-client 2.28.0 ships.

Our sources are compiled here with protoc into a FileDescriptorSet (never imported into the
default pool) and compared with the client's compiled descriptors: packages, services, methods,
streaming flags, messages, enums, field names, numbers, types, labels and options. Comments and
formatting are free; anything a peer could observe on the wire is not.
"""

import ast
import re
from pathlib import Path

import pytest
import riva.client.proto as riva_proto
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
RIVA_FILES = ["riva_audio", "riva_common", "riva_asr", "riva_tts", "riva_nlp"]


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    out = tmp_path_factory.mktemp("fds") / "set.pb"
    sources = [f"riva/proto/{n}.proto" for n in RIVA_FILES] + ["grpc/health/v1/health.proto"]
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--descriptor_set_out={out}", *sources])
    assert rc == 0, "protoc failed to compile protos/"
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for f in fds.file:
        f.ClearField("source_code_info")
        _strip_json_names(f.message_type)
    return {f.name: f for f in fds.file}


def _strip_json_names(messages) -> None:
    """protoc fills json_name in descriptor sets; generated *_pb2 modules omit it."""
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _strip_json_names(message.nested_type)


def _client_descriptor(module: str) -> descriptor_pb2.FileDescriptorProto:
    """Read the serialized descriptor out of the client's *_pb2.py without importing it
    (riva's health_pb2 would clash with grpcio-health-checking's in the default pool)."""
    source = (Path(riva_proto.__file__).parent / f"{module}_pb2.py").read_text()
    blob = re.search(r"AddSerializedFile\((b'.*?')\)\n", source, re.S).group(1)
    return descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(blob))


@pytest.mark.parametrize("name", RIVA_FILES)
def test_riva_file_is_wire_identical(ours, name):
    theirs = _client_descriptor(name)
    mine = ours[f"riva/proto/{name}.proto"]
    assert mine == theirs, f"protos/riva/proto/{name}.proto differs from nvidia-riva-client's"


def test_health_matches_grpc_standard(ours):
    standard = descriptor_pb2.FileDescriptorProto()
    grpc_health_pb2.DESCRIPTOR.CopyToProto(standard)
    mine = ours["grpc/health/v1/health.proto"]
    for field in ("package", "message_type", "service", "enum_type"):
        assert getattr(mine, field) == getattr(standard, field), f"grpc.health.v1 {field} differs"


def test_health_is_superset_of_rivas(ours):
    """Riva's health.proto lacks SERVICE_UNKNOWN; every value and RPC it has, ours has."""
    riva = _client_descriptor("health")
    mine = ours["grpc/health/v1/health.proto"]
    assert riva.package == mine.package
    assert riva.service == mine.service
    theirs_enum = riva.message_type[1].enum_type[0].value
    mine_enum = {(v.name, v.number) for v in mine.message_type[1].enum_type[0].value}
    assert {(v.name, v.number) for v in theirs_enum} <= mine_enum
