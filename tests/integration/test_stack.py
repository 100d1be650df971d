"""`python -m rivulet.stack` (what `make run` starts): Triton + ASR, NLU, TTS and Dialog on one address."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request

import grpc
import pytest
import riva.client
import riva.client.proto.riva_asr_pb2

from rivulet.dialog.v1 import dialog_pb2, dialog_pb2_grpc
from tests.support import free_port, health_status, service_env, wait_for_health

pytestmark = pytest.mark.integration


def test_stack_serves_every_service_on_one_address_and_stops_cleanly(
    nlu_repository, test_models, redis_url, tmp_path
):
    port, triton_http, gateway_port = free_port(), free_port(), free_port()
    env = service_env(
        grpc_port=port,
        gateway_port=gateway_port,
        metrics_port=free_port(),
        triton_grpc_port=free_port(),
        triton_http_port=triton_http,
        triton_metrics_port=free_port(),
        redis_url=redis_url,
    )
    command = [sys.executable, "-m", "rivulet.stack", "--model-repository", str(nlu_repository)]
    command += ["--log-dir", str(tmp_path)]
    with open(tmp_path / "stack.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_health(f"127.0.0.1:{port}", timeout_s=180)
            nlp = riva.client.NLPService(riva.client.Auth(uri=f"127.0.0.1:{port}"))
            response = nlp.analyze_intent("play the latest album by adele")
            assert response.intent.class_name == "PlayMusic"
            assert any(s.token == "adele" for s in response.slots)
            auth = riva.client.Auth(uri=f"127.0.0.1:{port}")
            asr_config = riva.client.ASRService(auth).stub.GetRivaSpeechRecognitionConfig(
                riva.client.proto.riva_asr_pb2.RivaSpeechRecognitionConfigRequest()
            )
            assert "asr_streaming" in {m.model_name for m in asr_config.model_config}
            speech = riva.client.SpeechSynthesisService(auth).synthesize(
                "Rivulet is ready.", language_code="en-US", sample_rate_hz=16000
            )
            assert len(speech.audio) > 16000  # over half a second of 16-bit audio
            # the dialog manager answers a typed turn through the NLU and TTS on the same address
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                turn = dialog_pb2_grpc.DialogStub(channel).TextTurn(
                    dialog_pb2.TextTurnRequest(session_id="stack-test", text="what time is it")
                )
            assert turn.understanding.intent == "GetTime"
            assert turn.reply.text
            # the gateway serves the voice-assistant app in front of the dialog manager
            with urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/readyz", timeout=10) as reply:
                assert reply.status == 200
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(60)
    output = (tmp_path / "stack.log").read_text()
    assert code == 0, output
    assert f"localhost:{port}" in output  # it printed where it listens
    assert f"http://localhost:{gateway_port}" in output  # and where the app is
    assert health_status(f"127.0.0.1:{port}") == "UNAVAILABLE"  # gRPC server gone
    assert "successfully unloaded" in (tmp_path / "tritonserver.log").read_text()  # Triton stopped cleanly
