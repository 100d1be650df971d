"""The commands the cluster check runs inside pods, run here against real servers.

- Triton: `triton.PROBE_SCRIPT` against the real `tritonserver` (from the nvidia-pytriton wheel) on
  a repository with one loadable and one broken python-backend model.
- Services: `health.healthcheck_command` (the image's `rivulet.core.healthcheck` CLI) against a real
  gRPC server running the standard grpc.health.v1 servicer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rivulet.clustercheck import health as cc_health
from rivulet.clustercheck import triton
from rivulet.clustercheck.report import Status
from rivulet.core.processes import ROOT, free_port

CONFIG = """
name: "{name}"
backend: "python"
max_batch_size: 0
input [ {{ name: "IN" data_type: TYPE_FP32 dims: [ 1 ] }} ]
output [ {{ name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

ECHO = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            value = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", value)]))
        return out
"""

BROKEN = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights missing: run the model builder")

    def execute(self, requests):
        return []
"""


def write_model(repository: Path, name: str, source: str) -> None:
    (repository / name / "1").mkdir(parents=True)
    (repository / name / "config.pbtxt").write_text(CONFIG.format(name=name))
    (repository / name / "1" / "model.py").write_text(source)


def run_probe(http_port: int) -> subprocess.CompletedProcess[str]:
    command = triton.probe_command(http_port)
    command[0] = sys.executable  # the Triton image's python3; here the venv's interpreter
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.mark.integration
def test_triton_probe_against_real_tritonserver(tmp_path: Path) -> None:
    from rivulet.core.tritonserver import TritonServer

    repository = tmp_path / "models"
    write_model(repository, "echo", ECHO)
    write_model(repository, "broken", BROKEN)
    (repository / ".rivulet-build-abc").write_text("2026-01-01T00:00:00Z\n")  # the builder's marker file
    server = TritonServer(
        repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(),
        log_file=tmp_path / "tritonserver.log",
    )  # fmt: skip
    server.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.process is not None and server.process.poll() is None, "tritonserver exited"
            proc = run_probe(server.http_port)
            if proc.returncode == 0:
                _, models = triton.parse_probe_output(proc.stdout)
                if {m.name for m in models} == {"echo", "broken"} and all(
                    m.state in ("READY", "UNAVAILABLE") for m in models
                ):
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"models never settled; last probe: {proc.stdout} {proc.stderr}")
        ready, models = triton.parse_probe_output(proc.stdout)
        states = {m.name: m for m in models}
        assert not ready, "--strict-readiness: one failed model makes the server not ready"
        assert states["echo"].ready and states["echo"].version == "1"
        assert states["broken"].state == "UNAVAILABLE" and "weights missing" in states["broken"].reason

        checks = triton.triton_checks(
            "triton-0", proc.returncode, proc.stdout, proc.stderr, frozenset({"echo"})
        )
        assert [(c.subject, c.status) for c in checks] == [("pod/triton-0 model broken", Status.FAIL)]
        assert "weights missing: run the model builder" in checks[0].detail
    finally:
        server.stop()
    # With the server gone, the probe fails and the check says so.
    proc = run_probe(server.http_port)
    checks = triton.triton_checks("triton-0", proc.returncode, proc.stdout, proc.stderr)
    assert checks[0].status is Status.FAIL and checks[0].detail.startswith("readiness probe exited 1")


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


def test_healthcheck_command_in_a_service_pod(health_server: tuple[int, health.HealthServicer]) -> None:
    port, servicer = health_server
    target = cc_health.GrpcTarget("rivulet-nlu", "nvidia.riva.nlp.RivaLanguageUnderstanding", port, {}, "nlu")
    command = cc_health.healthcheck_command(target)
    command[0] = sys.executable
    env = {"PYTHONPATH": f"{ROOT / 'services'}:{ROOT}"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)

    servicer.set(target.grpc_service, health_pb2.HealthCheckResponse.NOT_SERVING)
    proc = run()
    check = cc_health.health_check(target, "nlu-0", proc.returncode, proc.stdout, proc.stderr)
    assert check.status is Status.FAIL and "NOT_SERVING" in check.detail, check

    servicer.set(target.grpc_service, health_pb2.HealthCheckResponse.SERVING)
    proc = run()
    assert (
        cc_health.health_check(target, "nlu-0", proc.returncode, proc.stdout, proc.stderr).status is Status.OK
    )
