"""TLS, mutual TLS, API keys and per-key quotas of the shared server host, called with the official
riva.client (and the dialog's own service-to-service client) over a real grpc.aio server."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import grpc
import pytest
import riva.client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from riva.client.argparse_utils import add_connection_argparse_parameters
from riva.proto import riva_asr_pb2 as asr
from riva.proto import riva_asr_pb2_grpc, riva_nlp_pb2_grpc
from riva.proto import riva_nlp_pb2 as nlp

from rivulet.core.apikeys import KeyFileError, entry_yaml, load_keys, new_key
from rivulet.core.healthcheck import check, plain_health_address
from rivulet.core.localca import create_local_certificates
from rivulet.core.server import ServerHost
from rivulet.core.settings import ServiceSettings
from rivulet.core.tls import ChannelSecurity, TlsConfigError, server_credentials
from rivulet.dialog.clients import NluClient
from tests.support import free_port

NLP = "nvidia.riva.nlp.RivaLanguageUnderstanding"
ASR = "nvidia.riva.asr.RivaSpeechRecognition"


class ProbeNlu(riva_nlp_pb2_grpc.RivaLanguageUnderstandingServicer):
    async def AnalyzeIntent(self, request, context):
        return nlp.AnalyzeIntentResponse(intent=nlp.Classification(class_name=request.query[:20]))


class ProbeAsr(riva_asr_pb2_grpc.RivaSpeechRecognitionServicer):
    """One result per audio message, holding the stream open until the client half-closes."""

    async def StreamingRecognize(self, requests, context):
        async for request in requests:
            if request.audio_content:
                alternative = asr.SpeechRecognitionAlternative(transcript=str(len(request.audio_content)))
                result = asr.StreamingRecognitionResult(alternatives=[alternative], is_final=True)
                yield asr.StreamingRecognizeResponse(results=[result])


class ProbeService:
    service_names = (NLP, ASR)

    async def start(self) -> None:
        pass

    def register(self, server) -> None:
        riva_nlp_pb2_grpc.add_RivaLanguageUnderstandingServicer_to_server(ProbeNlu(), server)
        riva_asr_pb2_grpc.add_RivaSpeechRecognitionServicer_to_server(ProbeAsr(), server)

    async def ready(self) -> bool:
        return True

    async def stop(self) -> None:
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return create_local_certificates(tmp_path_factory.mktemp("tls"))


async def _host(**settings) -> ServerHost:
    host = ServerHost(
        ServiceSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, shutdown_grace_s=1, **settings),
        [ProbeService()],
    )
    await host.start()
    return host


def _analyze(auth: riva.client.Auth, text: str = "hello") -> str:
    return riva.client.NLPService(auth).analyze_intent(text).intent.class_name


async def _code_of(call, *args) -> tuple[grpc.StatusCode, str]:
    try:
        await asyncio.to_thread(call, *args)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


async def test_tls_with_the_official_client_and_plain_text_refused(certs, tmp_path):
    host = await _host(tls_cert_file=certs.server_cert, tls_key_file=certs.server_key)
    try:
        uri = f"localhost:{host.port}"
        auth = riva.client.Auth(ssl_root_cert=str(certs.ca), use_ssl=True, uri=uri)
        assert await asyncio.to_thread(_analyze, auth) == "hello"
        # the same through the python-clients scripts' connection flags
        parser = add_connection_argparse_parameters(argparse.ArgumentParser())
        args = parser.parse_args(["--server", uri, "--use-ssl", "--ssl-root-cert", str(certs.ca)])
        script_auth = riva.client.Auth(args.ssl_root_cert, args.use_ssl, args.server, args.metadata)
        assert await asyncio.to_thread(_analyze, script_auth, "from a script") == "from a script"
        # a plain-text client, or one trusting another CA, never gets an answer
        code, _ = await _code_of(_analyze, riva.client.Auth(uri=uri))
        assert code == grpc.StatusCode.UNAVAILABLE
        other = create_local_certificates(tmp_path / "other")
        code, _ = await _code_of(
            _analyze, riva.client.Auth(ssl_root_cert=str(other.ca), use_ssl=True, uri=uri)
        )
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        await host.stop()


async def test_health_over_tls_and_on_the_plain_text_probe_port(certs):
    host = await _host(
        tls_cert_file=certs.server_cert, tls_key_file=certs.server_key, health_port=free_port()
    )
    try:
        address = f"localhost:{host.port}"
        assert await asyncio.to_thread(check, address, NLP, 3.0, False, certs.ca) == "SERVING"
        assert await asyncio.to_thread(check, address, NLP, 3.0) == "UNAVAILABLE"  # plain text refused
        probe = f"127.0.0.1:{host.health_port}"
        assert await asyncio.to_thread(check, probe, NLP, 3.0) == "SERVING"
        async with grpc.aio.insecure_channel(probe) as channel:  # the probe port serves nothing else
            with pytest.raises(grpc.aio.AioRpcError) as only_health:
                await riva_nlp_pb2_grpc.RivaLanguageUnderstandingStub(channel).AnalyzeIntent(
                    nlp.AnalyzeIntentRequest(query="x")
                )
            assert only_health.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await host.stop()


async def test_mutual_tls_requires_a_client_certificate_signed_by_the_ca(certs):
    host = await _host(
        tls_cert_file=certs.server_cert, tls_key_file=certs.server_key, tls_client_ca_file=certs.ca
    )
    try:
        uri = f"localhost:{host.port}"
        code, _ = await _code_of(
            _analyze, riva.client.Auth(ssl_root_cert=str(certs.ca), use_ssl=True, uri=uri)
        )
        assert code == grpc.StatusCode.UNAVAILABLE
        mutual = riva.client.Auth(
            ssl_root_cert=str(certs.ca),
            ssl_client_cert=str(certs.client_cert),
            ssl_client_key=str(certs.client_key),
            use_ssl=True,
            uri=uri,
        )
        assert await asyncio.to_thread(_analyze, mutual) == "hello"
    finally:
        await host.stop()


async def test_renewed_certificate_files_are_served_without_restart(certs, tmp_path):
    first = create_local_certificates(tmp_path / "first")
    served = tmp_path / "served"
    served.mkdir()
    for name in ("server.pem", "server.key"):
        (served / name).write_bytes((first.directory / name).read_bytes())
    host = await _host(tls_cert_file=served / "server.pem", tls_key_file=served / "server.key")
    try:
        uri = f"localhost:{host.port}"
        assert (
            await asyncio.to_thread(_analyze, riva.client.Auth(ssl_root_cert=str(first.ca), uri=uri))
            == "hello"
        )
        second = create_local_certificates(
            tmp_path / "second"
        )  # a new CA: what cert-manager rotation looks like
        for name in ("server.pem", "server.key"):
            (served / name).write_bytes((second.directory / name).read_bytes())
        later = time.time() + 5
        os.utime(served / "server.pem", (later, later))
        await asyncio.sleep(1.1)
        renewed = riva.client.Auth(ssl_root_cert=str(second.ca), uri=uri)
        assert await asyncio.to_thread(_analyze, renewed) == "hello"
    finally:
        await host.stop()


def test_tls_settings_errors_say_what_to_fix(certs, tmp_path):
    with pytest.raises(TlsConfigError, match="set both RIVULET_TLS_CERT_FILE and RIVULET_TLS_KEY_FILE"):
        server_credentials(ServiceSettings(tls_cert_file=certs.server_cert))
    not_pem = tmp_path / "cert.txt"
    not_pem.write_text("hello")
    with pytest.raises(TlsConfigError, match=r"RIVULET_TLS_CERT_FILE=.*not a PEM file"):
        server_credentials(ServiceSettings(tls_cert_file=not_pem, tls_key_file=certs.server_key))
    with pytest.raises(TlsConfigError, match="cannot read it"):
        server_credentials(
            ServiceSettings(tls_cert_file=tmp_path / "missing.pem", tls_key_file=certs.server_key)
        )


def _keys_file(path: Path, **limits) -> dict[str, str]:
    """Writes a keys file; returns name -> key."""
    keys = {"alice": new_key(), "asr-only": new_key(), "limited": new_key()}
    text = "keys:\n"
    entries = [
        entry_yaml("alice", keys["alice"], [], None, None),
        entry_yaml("asr-only", keys["asr-only"], [ASR], None, None),
        entry_yaml("limited", keys["limited"], [], limits.get("max_streams", 1), limits.get("rate", 4.0)),
    ]
    for entry in entries:
        text += "".join(f"  {line}\n" for line in entry.splitlines())
    path.write_text(text)
    return keys


@pytest.fixture
async def keyed(tmp_path):
    keys = _keys_file(tmp_path / "keys.yaml")
    host = await _host(auth_keys_file=tmp_path / "keys.yaml", auth_open_reflection=False)
    yield host, keys, f"127.0.0.1:{host.port}", tmp_path / "keys.yaml"
    await host.stop()


async def test_api_keys_in_each_form_riva_clients_send(keyed):
    _, keys, uri, _ = keyed
    key = keys["alice"]
    for metadata in (
        [["authorization", f"Bearer {key}"]],
        [["authorization", f"Bearer {key}"], ["function-id", "0d4b2b4c-ad0b-4c3a-bb4b-4f2a9a1d4c7e"]],
        [["api-key", key]],
        [["x-api-key", key]],
    ):
        auth = riva.client.Auth(uri=uri, metadata_args=metadata)
        assert await asyncio.to_thread(_analyze, auth) == "hello", metadata


async def test_missing_wrong_and_malformed_keys_are_unauthenticated(keyed):
    _, keys, uri, _ = keyed
    code, message = await _code_of(_analyze, riva.client.Auth(uri=uri))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "requires an API key" in message and "authorization: Bearer <key>" in message
    code, message = await _code_of(
        _analyze, riva.client.Auth(uri=uri, metadata_args=[["api-key", "rvk_nope"]])
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "not valid" in message and "rvk_nope" not in message
    code, message = await _code_of(
        _analyze, riva.client.Auth(uri=uri, metadata_args=[["authorization", keys["alice"]]])
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "must be 'Bearer <key>'" in message


async def test_a_key_limited_to_a_service_is_denied_elsewhere(keyed):
    _, keys, uri, _ = keyed
    auth = riva.client.Auth(uri=uri, metadata_args=[["authorization", f"Bearer {keys['asr-only']}"]])
    code, message = await _code_of(_analyze, auth)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f"may not call {NLP}" in message and ASR in message
    responses = await asyncio.to_thread(_stream, auth, [b"\0\0" * 10])
    assert responses == ["20"]


def _stream(auth: riva.client.Auth, chunks: list[bytes]) -> list[str]:
    config = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000
        )
    )
    service = riva.client.ASRService(auth)
    return [
        r.results[0].alternatives[0].transcript
        for r in service.streaming_response_generator(iter(chunks), config)
    ]


async def test_health_stays_open_and_reflection_can_be_closed(keyed):
    _, _, uri, _ = keyed
    async with grpc.aio.insecure_channel(uri) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=NLP))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            async for _ in call:
                pass
        assert closed.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_request_rate_limit_per_key(keyed):
    _, keys, uri, _ = keyed
    limited = riva.client.Auth(uri=uri, metadata_args=[["api-key", keys["limited"]]])
    codes = [(await _code_of(_analyze, limited))[0] for _ in range(12)]  # 4/s, bursts of 8
    assert codes[:8] == [grpc.StatusCode.OK] * 8
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[8:]
    _, message = await _code_of(_analyze, limited)
    assert "over its rate of 4 requests/s" in message
    other = riva.client.Auth(uri=uri, metadata_args=[["api-key", keys["alice"]]])
    assert await asyncio.to_thread(_analyze, other) == "hello"  # other keys are not affected
    await asyncio.sleep(0.6)
    assert await asyncio.to_thread(_analyze, limited) == "hello"  # the bucket refills


async def test_concurrent_stream_limit_per_key_and_slots_freed(keyed):
    host, keys, uri, _ = keyed
    metadata = (("api-key", keys["limited"]),)
    async with grpc.aio.insecure_channel(uri) as channel:
        stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        first = stub.StreamingRecognize(metadata=metadata)
        await first.write(asr.StreamingRecognizeRequest(audio_content=b"\0\0"))
        assert (await first.read()).results[0].alternatives[0].transcript == "2"
        assert host.auth.open_streams("limited") == 1
        second = stub.StreamingRecognize(metadata=metadata)
        await second.write(asr.StreamingRecognizeRequest(audio_content=b"\0\0"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await second.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "already has 1 streams open, its limit" in refused.value.details()
        first.cancel()  # a vanished client frees its slot (within 10 s on a busy machine)
        for _ in range(500):
            if host.auth.open_streams("limited") == 0:
                break
            await asyncio.sleep(0.02)
        assert host.auth.open_streams("limited") == 0
        await asyncio.sleep(0.3)  # the rate bucket (4/s) has room again
        third = stub.StreamingRecognize(metadata=metadata)
        await third.write(asr.StreamingRecognizeRequest(audio_content=b"\0\0\0\0"))
        assert (await third.read()).results[0].alternatives[0].transcript == "4"
        await third.done_writing()


async def test_rotated_keys_file_applies_without_restart(keyed):
    _, keys, uri, path = keyed
    fresh = new_key()
    path.write_text(
        "keys:\n" + "".join(f"  {line}\n" for line in entry_yaml("fresh", fresh, [], None, None).splitlines())
    )
    later = time.time() + 5
    os.utime(path, (later, later))
    await asyncio.sleep(1.1)
    revoked = riva.client.Auth(uri=uri, metadata_args=[["api-key", keys["alice"]]])
    assert (await _code_of(_analyze, revoked))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await asyncio.to_thread(_analyze, riva.client.Auth(uri=uri, metadata_args=[["api-key", fresh]]))
        == "hello"
    )


async def test_dialog_client_calls_a_service_over_tls_with_an_api_key(certs, tmp_path):
    keys = _keys_file(tmp_path / "keys.yaml")
    host = await _host(
        tls_cert_file=certs.server_cert, tls_key_file=certs.server_key, auth_keys_file=tmp_path / "keys.yaml"
    )
    try:
        settings = ServiceSettings(client_tls=True, client_tls_ca_file=certs.ca, client_api_key=keys["alice"])
        client = NluClient(
            f"localhost:{host.port}", "assistant", 5.0, ChannelSecurity.from_settings(settings)
        )
        assert (await client.analyze("book a table")).intent == "book a table"
        await client.close()
        keyless = NluClient(
            f"localhost:{host.port}",
            "assistant",
            5.0,
            ChannelSecurity.from_settings(ServiceSettings(client_tls=True, client_tls_ca_file=certs.ca)),
        )
        with pytest.raises(Exception, match="UNAUTHENTICATED"):
            await keyless.analyze("book a table")
        await keyless.close()
    finally:
        await host.stop()


def test_keys_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - name: bob\n    sha256: abc\n")
    with pytest.raises(KeyFileError, match=r"keys\[0\] \(bob\): sha256 must be 64 hex digits"):
        load_keys(path)
    path.write_text("keys:\n  - name: bob\n    sha256: " + "a" * 64 + "\n    max_stream: 3\n")
    with pytest.raises(KeyFileError, match=r"unknown fields \['max_stream'\]"):
        load_keys(path)


def test_in_pod_healthcheck_uses_the_plain_text_health_port_when_tls_is_on():
    env = {"RIVULET_GRPC_PORT": "50051", "RIVULET_HEALTH_PORT": "50052"}
    assert plain_health_address("localhost:50051", env) == "localhost:50052"
    assert plain_health_address("127.0.0.1:50051", env) == "localhost:50052"
    assert plain_health_address("riva.example.com:443", env) == "riva.example.com:443"
    assert plain_health_address("localhost:50051", {"RIVULET_GRPC_PORT": "50051"}) == "localhost:50051"
