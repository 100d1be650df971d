"""Services reach Triton over TLS (Triton's --grpc-use-ssl-mutual): the TTS with the CA and a client
certificate serves; one configured for plain text stays NOT_SERVING against the same Triton."""

from __future__ import annotations

import pytest
import riva.client

from rivulet.core.localca import create_local_certificates
from rivulet.core.processes import health_status
from rivulet.core.tritonserver import TritonServer
from tests.integration.security.conftest import TTS
from tests.support import ROOT, ServiceProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_triton(tmp_path_factory):
    directory = tmp_path_factory.mktemp("triton-tls")
    certs = create_local_certificates(directory / "certs")
    server = TritonServer(
        ROOT / "models",
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=directory / "tritonserver.log",
        extra_args=[
            "--model-control-mode=explicit", "--load-model=tts_embedded",
            "--grpc-use-ssl-mutual=true", f"--grpc-server-cert={certs.server_cert}",
            f"--grpc-server-key={certs.server_key}", f"--grpc-root-cert={certs.ca}",
        ],
    )  # fmt: skip
    with server:
        server.wait_ready(["tts_embedded"], timeout_s=300)
        yield f"localhost:{server.grpc_port}", certs, directory


def test_tts_calls_triton_over_mutual_tls(tls_triton):
    url, certs, directory = tls_triton
    env = {"triton_url": url, "readiness_interval_s": 0.2, "log_format": "text", "triton_tls": "true",
           "triton_tls_ca_file": certs.ca, "triton_tls_cert_file": certs.client_cert,
           "triton_tls_key_file": certs.client_key}  # fmt: skip
    secure = ServiceProcess("rivulet.tts", directory / "tts.log", env).start_serving(TTS)
    plain = ServiceProcess("rivulet.tts", directory / "tts-plain.log", {**env, "triton_tls": "false"}).start()
    try:
        audio = riva.client.SpeechSynthesisService(riva.client.Auth(uri=secure.address)).synthesize(
            "Over TLS.", sample_rate_hz=16_000
        )
        assert len(audio.audio) > 3200
        for _ in range(40):  # give the plain-text one time to try; it must never become ready
            assert health_status(plain.address, TTS) in ("NOT_SERVING", "UNAVAILABLE")
        assert "SERVING" == health_status(secure.address, TTS)
    finally:
        secure.stop()
        plain.stop()
