"""Real ASR and TTS services behind TLS and API keys, on a tritonserver of their own that loads the
committed `asr_streaming` and `tts_embedded` models of `models/` (no training needed).

Every test here calls them as a Riva user would: TLS trusting a local CA, and an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import riva.client

from rivulet.core.apikeys import entry_yaml, new_key
from rivulet.core.localca import LocalCertificates, create_local_certificates
from rivulet.core.tritonserver import TritonServer
from tests.models_asr import committed_model
from tests.support import ROOT, ServiceProcess, free_port

ASR = "nvidia.riva.asr.RivaSpeechRecognition"
TTS = "nvidia.riva.tts.RivaSpeechSynthesis"
MODELS = ("asr_streaming", "tts_embedded")


@dataclass
class SecureService:
    process: ServiceProcess
    certs: LocalCertificates
    key: str
    _channel: grpc.Channel | None = None

    @property
    def uri(self) -> str:
        return f"localhost:{self.process.port}"

    def auth(self, key: str | None = None) -> riva.client.Auth:
        return riva.client.Auth(
            ssl_root_cert=str(self.certs.ca),
            use_ssl=True,
            uri=self.uri,
            metadata_args=[["authorization", f"Bearer {key or self.key}"]],
        )

    def channel(self) -> grpc.Channel:
        """A blocking TLS channel whose calls carry the API key (call credentials); made once."""
        if self._channel is None:
            self._channel = self._open_channel()
        return self._channel

    def _open_channel(self) -> grpc.Channel:
        key = self.key
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(self.certs.ca.read_bytes()),
            grpc.metadata_call_credentials(lambda _context, callback: callback((("api-key", key),), None)),
        )
        return grpc.secure_channel(self.uri, credentials, options=[("grpc.max_send_message_length", -1)])


@pytest.fixture(scope="package")
def security_triton(tmp_path_factory) -> str:
    if committed_model() is None:
        pytest.skip("models/asr_streaming has no committed weights")
    server = TritonServer(
        ROOT / "models",
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=tmp_path_factory.mktemp("security-triton") / "tritonserver.log",
        extra_args=["--model-control-mode=explicit", *(f"--load-model={m}" for m in MODELS)],
    )
    with server:
        server.wait_ready(list(MODELS), timeout_s=300)
        yield server.grpc_url


@pytest.fixture(scope="package")
def certs(tmp_path_factory) -> LocalCertificates:
    return create_local_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="package")
def api_keys(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A keys file: `client` (no limits) and `tts-only` (TTS, at most 2 streams)."""
    keys = {"client": new_key(), "tts-only": new_key()}
    entries = [entry_yaml("client", keys["client"], [], None, None)]
    entries.append(entry_yaml("tts-only", keys["tts-only"], [TTS], 2, None))
    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    path.write_text("keys:\n" + "".join(f"  {line}\n" for e in entries for line in e.splitlines()))
    return path, keys


def _start(module: str, service: str, log: Path, certs, keys_file: Path, **settings) -> ServiceProcess:
    env = {
        "readiness_interval_s": 0.2,
        "log_format": "text",
        "tls_cert_file": str(certs.server_cert),
        "tls_key_file": str(certs.server_key),
        "auth_keys_file": str(keys_file),
        **settings,
    }
    return ServiceProcess(module, log, env, tls_ca_file=certs.ca).start_serving(service)


@pytest.fixture(scope="package")
def secure_asr(security_triton, certs, api_keys, tmp_path_factory):
    process = _start(
        "rivulet.asr",
        ASR,
        tmp_path_factory.mktemp("asr") / "asr.log",
        certs,
        api_keys[0],
        triton_url=security_triton,
        asr_model_repository=str(ROOT / "models"),
        asr_max_stream_seconds=30,
        asr_max_stream_bytes=1024 * 1024,
    )
    yield SecureService(process, certs, api_keys[1]["client"])
    process.stop()


@pytest.fixture(scope="package")
def secure_tts(security_triton, certs, api_keys, tmp_path_factory):
    process = _start(
        "rivulet.tts",
        TTS,
        tmp_path_factory.mktemp("tts") / "tts.log",
        certs,
        api_keys[0],
        triton_url=security_triton,
    )
    yield SecureService(process, certs, api_keys[1]["client"])
    process.stop()


@pytest.fixture(scope="package", autouse=True)
def fuzz_report():
    """Writes what each fuzzed RPC answered (RIVULET_FUZZ_REPORT) when the package's tests end."""
    from tests.integration.security import outcomes

    yield
    outcomes.write_report()
