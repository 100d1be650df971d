"""The cluster check and the Helm chart agree: what clustercheck looks for is what the chart renders.

The chart is rendered with the real helm binary; its objects are deserialised into kubernetes-client
models exactly as the API would return them, and the check's API layer (`Cluster`) lists them from a
local HTTP endpoint speaking the Kubernetes list API, so the real client code, label selectors and
deserialisation run. Only `exec` into pods (a websocket to a real API server) is not covered here.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from rivulet.clustercheck import health, smoke
from rivulet.clustercheck.cluster import Cluster, Options
from rivulet.clustercheck.report import Status
from rivulet.core.healthcheck import plain_health_address
from tests.helm.charts import NAMESPACE, RELEASE, render, selector_matches

API = client.ApiClient()


def as_model(obj: dict[str, Any], model: str) -> Any:
    return API.deserialize(json.dumps(obj), model, "application/json")


def with_status(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API returns it once rolled out (generation observed, replicas available)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["generation"] = 1
    replicas = obj["spec"].get("replicas", 2)
    obj["spec"]["replicas"] = replicas
    if obj["kind"] == "Deployment":
        obj["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                         "availableReplicas": replicas, "readyReplicas": replicas}  # fmt: skip
    elif obj["kind"] == "StatefulSet":
        obj["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "currentRevision": "a",
                         "updateRevision": "a", "updatedReplicas": 1}  # fmt: skip
    elif obj["kind"] == "Job":
        obj["spec"].pop("replicas")
        obj["status"] = {"succeeded": 1}
    return obj


def pods_of(workload: dict[str, Any], waiting: str | None = None) -> dict[str, Any]:
    template = workload["spec"]["template"]
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{workload['metadata']['name']}-0",
            "namespace": NAMESPACE,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False" if waiting else "True"}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": not waiting,
                    "restartCount": 0,
                    "state": state,
                }
                for c in template["spec"]["containers"]
            ],
        },
    }


RESOURCES = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "jobs": "Job",
    "pods": "Pod",
    "ingresses": "Ingress",
}


class FakeApi:
    """A local endpoint answering the Kubernetes list/read calls the cluster check makes."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.selectors: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                api.selectors.append(selector)
                status, body = api.answer(url.path, selector)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, selector: str) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        resource = parts[5] if parts[0] == "apis" else parts[4]
        kind = RESOURCES[resource]
        wanted = {"matchLabels": dict(kv.split("=", 1) for kv in selector.split(",") if kv)}
        of_kind = [o for o in self.objects if o["kind"] == kind]
        items = [o for o in of_kind if selector_matches(wanted, o["metadata"].get("labels", {}))]
        name = parts[6] if parts[0] == "apis" and len(parts) > 6 else None
        if name is not None:
            found = [o for o in items if o["metadata"]["name"] == name]
            if not found:
                return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            return 200, found[0]
        return 200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {}, "items": items}

    def cluster(self) -> Cluster:
        cfg = client.Configuration(host=f"http://127.0.0.1:{self.server.server_address[1]}")
        return Cluster(client.ApiClient(cfg))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    objs = [
        with_status(o) for o in render("all-services") if o["kind"] in ("Deployment", "StatefulSet", "Job")
    ]
    pods = [pods_of(o) for o in objs]
    grpc_ingress = f"{RELEASE}-grpc"  # the one clustercheck reads (the gateway's is for browsers)
    ingresses = [o for o in render("all-services") if o["kind"] == "Ingress"]
    ingress = copy.deepcopy(next(o for o in ingresses if o["metadata"]["name"] == grpc_ingress))
    ingress["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    api = FakeApi([*objs, *pods, ingress])
    yield api
    api.close()


def test_every_workload_is_found_by_the_release_selector() -> None:
    for case in ("default", "all-services"):
        for obj in render(case):
            if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
                assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, obj["metadata"][
                    "name"
                ]
                labels = obj["spec"]["template"]["metadata"]["labels"]
                assert labels["app.kubernetes.io/instance"] == RELEASE, "pods are listed by the same selector"


def test_grpc_targets_match_the_rendered_services() -> None:
    deployments = [as_model(o, "V1Deployment") for o in render("all-services") if o["kind"] == "Deployment"]
    targets = health.grpc_targets(deployments)
    assert [t.grpc_service for t in targets] == [
        "nvidia.riva.asr.RivaSpeechRecognition", "rivulet.dialog.v1.Dialog",
        "nvidia.riva.nlp.RivaLanguageUnderstanding", "nvidia.riva.tts.RivaSpeechSynthesis",
    ]  # fmt: skip
    for d in deployments:
        target = next((t for t in targets if t.deployment == d.metadata.name), None)
        if target is None:  # Triton (HTTP health) and the web app's gateway (HTTP probes) serve no gRPC API
            assert d.metadata.name in (f"{RELEASE}-triton", f"{RELEASE}-gateway")
            continue
        container = d.spec.template.spec.containers[0]
        assert container.name == target.container
        env = {e.name: e.value for e in container.env or []}
        if "RIVULET_HEALTH_PORT" in env:  # TLS on: the in-pod healthcheck of target.port asks that port
            assert (
                plain_health_address(f"localhost:{target.port}", env)
                == f"localhost:{env['RIVULET_HEALTH_PORT']}"
            )
            assert container.readiness_probe.grpc.port == int(env["RIVULET_HEALTH_PORT"])
        else:
            assert container.readiness_probe.grpc.port == target.port
        assert container.readiness_probe.grpc.service == target.grpc_service
        assert selector_matches({"matchLabels": target.selector}, d.spec.template.metadata.labels)


def test_snapshot_of_a_rolled_out_release(fake_api: FakeApi) -> None:
    snap = fake_api.cluster().snapshot(NAMESPACE, RELEASE)
    names = [f"{w.kind}/{w.name}" for w in snap.workloads]
    assert "Deployment/rivulet-triton" in names and "StatefulSet/rivulet-redis" in names
    assert any(n.startswith("Job/rivulet-triton-model-builder-") for n in names)
    assert len(names) == 8 and snap.done and snap.pod_problems == [], snap
    assert f"app.kubernetes.io/instance={RELEASE}" in fake_api.selectors


def test_snapshot_sees_a_crash_looping_pod(fake_api: FakeApi) -> None:
    nlu = next(
        o for o in fake_api.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "rivulet-nlu"
    )
    fake_api.objects.append(pods_of(nlu, waiting="CrashLoopBackOff") | {"metadata": {
        "name": "rivulet-nlu-crash", "labels": nlu["spec"]["template"]["metadata"]["labels"]}})  # fmt: skip
    problems = fake_api.cluster().snapshot(NAMESPACE, RELEASE).pod_problems
    assert problems == ["pod rivulet-nlu-crash container nlu: CrashLoopBackOff"]


def test_triton_pods_are_found_by_the_checks_selector(fake_api: FakeApi) -> None:
    cluster = fake_api.cluster()
    pods = cluster.ready_pods(
        NAMESPACE, {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": "triton"}
    )
    assert pods == ["rivulet-triton-0"]
    triton = next(
        o for o in fake_api.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "rivulet-triton"
    )
    assert "triton" in [c["name"] for c in triton["spec"]["template"]["spec"]["containers"]], (
        "exec container name"
    )


def test_endpoint_is_discovered_from_the_ingress(fake_api: FakeApi) -> None:
    opts = Options(NAMESPACE, RELEASE)
    endpoint = fake_api.cluster().endpoint(opts)
    assert endpoint is not None and endpoint.address == "203.0.113.7:443" and endpoint.tls
    assert fake_api.cluster().endpoint(Options(NAMESPACE, "other-release")) is None


def test_rendered_deployment_without_status_is_waiting() -> None:
    from rivulet.clustercheck.rollout import deployment_status

    d = as_model(next(o for o in render("default") if o["kind"] == "Deployment"), "V1Deployment")
    assert deployment_status(d).status is Status.WAIT


def test_smoke_turns_follow_the_services_the_release_deploys(fake_api: FakeApi) -> None:
    """Every default-enabled API gets its smoke turn; a release without some gets none for them."""
    turns = fake_api.cluster().smoke_turns(Options(NAMESPACE, RELEASE))
    assert [t.name for t in turns] == ["nlu-intent", "asr-config", "tts-synthesize", "dialog-text-turn"]
    nlu_only = [with_status(o) for o in render("nlu-only") if o["kind"] == "Deployment"]
    api = FakeApi(nlu_only)
    try:
        assert [t.name for t in api.cluster().smoke_turns(Options(NAMESPACE, RELEASE))] == ["nlu-intent"]
    finally:
        api.close()
    explicit = [smoke.NluIntentTurn(text="hello")]
    assert fake_api.cluster().smoke_turns(Options(NAMESPACE, RELEASE, turns=explicit)) is explicit


def test_expected_models_come_from_the_chart_unless_named(fake_api: FakeApi) -> None:
    cluster = fake_api.cluster()
    assert cluster.expected_models(Options(NAMESPACE, RELEASE)) == {
        "intent_assistant", "intent_atis", "punct_capit_en", "asr_streaming", "asr_whisper", "tts_embedded"
    }  # fmt: skip
    named = Options(NAMESPACE, RELEASE, expected_models=frozenset({"intent_assistant"}))
    assert cluster.expected_models(named) == {"intent_assistant"}
    assert cluster.expected_models(Options(NAMESPACE, "other-release")) == frozenset()
