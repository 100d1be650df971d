"""The cluster check's in-pod and smoke commands against the real Rivulet services (integration).

The session's real tritonserver (tests/conftest.py: the NLU, ASR and TTS test models) and Redis,
and the four services as real processes wired as the chart wires them (Dialog dials the ASR, NLU
and TTS addresses). Each smoke turn `turns_for` picks runs with the real clients against its
service; the gRPC health command and the Triton probe run as they do inside the pods.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rivulet.clustercheck import health, smoke
from rivulet.clustercheck import triton as triton_probe
from rivulet.clustercheck.report import Status
from rivulet.dialog.v1 import dialog_pb2, dialog_pb2_grpc
from tests.support import ROOT, ServiceProcess, wait_for_health

pytestmark = pytest.mark.integration

TURN_OF = {
    smoke.NLU_API: "nlu-intent",
    smoke.ASR_API: "asr-config",
    smoke.TTS_API: "tts-synthesize",
    smoke.DIALOG_API: "dialog-text-turn",
}
MODULES = {
    smoke.NLU_API: "rivulet.nlu",
    smoke.ASR_API: "rivulet.asr",
    smoke.TTS_API: "rivulet.tts",
    smoke.DIALOG_API: "rivulet.dialog",
}


@pytest.fixture(scope="module")
def services(triton, redis_url, tmp_path_factory) -> Iterator[dict[str, ServiceProcess]]:
    """API name -> its running service process."""
    logs: Path = tmp_path_factory.mktemp("clustercheck-services")
    common = {"readiness_interval_s": 0.2, "log_format": "text"}
    started: dict[str, ServiceProcess] = {}
    try:
        for api in (smoke.NLU_API, smoke.ASR_API, smoke.TTS_API):
            env = {**common, "triton_url": triton.grpc_url}
            started[api] = ServiceProcess(MODULES[api], logs / f"{api}.log", env).start()
        dialog_env = {
            **common,
            "redis_url": redis_url,
            "dialog_asr_url": started[smoke.ASR_API].address,
            "dialog_nlu_url": started[smoke.NLU_API].address,
            "dialog_tts_url": started[smoke.TTS_API].address,
        }
        started[smoke.DIALOG_API] = ServiceProcess("rivulet.dialog", logs / "dialog.log", dialog_env).start()
        for api, service in started.items():
            try:
                wait_for_health(service.address, service=api, timeout_s=120)
            except TimeoutError:
                raise AssertionError(f"{api} did not become healthy:\n{service.logs()[-3000:]}") from None
        yield started
    finally:
        for service in started.values():
            service.stop()


def test_every_smoke_turn_passes_against_the_real_services(services: dict[str, ServiceProcess]) -> None:
    turns = {t.name: t for t in smoke.turns_for(services)}
    checks = [turns[TURN_OF[api]].run(smoke.Endpoint(s.address, tls=False)) for api, s in services.items()]
    assert [c.status for c in checks] == [Status.OK] * 4, "\n".join(map(str, checks))
    nlu, asr, tts, dialog = checks
    assert nlu.detail.startswith("-> GetTime"), nlu
    assert "asr_streaming (language_code=en-US, type=online)" in asr.detail, asr
    assert " s of audio at 16000 Hz" in tts.detail, tts
    assert dialog.detail.startswith("-> GetTime: ") and " s audio in " in dialog.detail, dialog


def test_dialog_smoke_session_is_reset_afterwards(services: dict[str, ServiceProcess]) -> None:
    address = services[smoke.DIALOG_API].address
    turn = smoke.DialogTextTurn(text="turn on the kitchen lights", synthesize_audio=False)
    check = turn.run(smoke.Endpoint(address, tls=False))
    assert check.status is Status.OK, check
    with grpc.insecure_channel(address) as channel:
        stub = dialog_pb2_grpc.DialogStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetSession(dialog_pb2.GetSessionRequest(session_id=turn.session_id), timeout=10)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND, "the smoke turn leaves no session behind"


def test_smoke_turns_report_what_is_wrong(services: dict[str, ServiceProcess]) -> None:
    asr = smoke.AsrConfigTurn(expect_model="asr_offline").run(
        smoke.Endpoint(services[smoke.ASR_API].address, tls=False)
    )
    assert asr.status is Status.FAIL and asr.detail.endswith("expected asr_offline"), asr
    tts = smoke.TtsSynthesizeTurn(voice="English-US.Nobody").run(
        smoke.Endpoint(services[smoke.TTS_API].address, tls=False)
    )
    assert tts.status is Status.FAIL and tts.detail.startswith("NOT_FOUND: unknown voice"), tts


def test_in_pod_health_command_and_triton_probe(
    services: dict[str, ServiceProcess], triton, test_models
) -> None:
    # `python` is the service's interpreter, first on PATH as in the images (/opt/venv/bin).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    for api, service in services.items():
        target = health.GrpcTarget(api, api, service.port, {}, "c")
        proc = subprocess.run(health.healthcheck_command(target), cwd=ROOT, capture_output=True, text=True,
                              env={**service.env, "PATH": path}, timeout=60)  # fmt: skip
        assert health.health_check(target, "p", proc.returncode, proc.stdout, proc.stderr).status is Status.OK
    probe = subprocess.run(
        triton_probe.probe_command(triton.http_port), capture_output=True, text=True, timeout=60
    )
    checks = triton_probe.triton_checks(
        "triton-0", probe.returncode, probe.stdout, probe.stderr, frozenset(test_models)
    )
    assert [c.status for c in checks] == [Status.OK], checks
