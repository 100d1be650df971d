"""The gateway chart (the voice-assistant web app): what it sets is what the gateway reads, it dials
this release's dialog and tts services and they admit it, HTTP probes, HTTPS of its own, the cluster's
TLS and API keys towards the services, and an Ingress that routes only the app's paths."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rivulet.gateway.settings import GatewaySettings
from tests.helm.charts import CHART, RELEASE, VALUES_CASES, by_kind, helm, one, pod_labels, render

GATEWAY = f"{RELEASE}-gateway"
APP_PATHS = {"/": "Exact", "/static/": "Prefix", "/ws": "Exact", "/api/": "Prefix"}


def rendered(*sets: str) -> tuple[dict[str, Any], ...]:
    args = [a for s in sets for a in ("--set", s)]
    out = helm("template", RELEASE, str(CHART), "--namespace", "rivulet", *args).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def container(objs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return one(objs, "Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c["env"]}


@pytest.mark.parametrize("case", [c for c in VALUES_CASES if c != "nlu-only"])
def test_every_env_var_is_a_gateway_setting(case: str) -> None:
    known = {f"RIVULET_{name.upper()}" for name in GatewaySettings.model_fields}
    unknown = [name for name in env_of(container(render(case))) if name not in known]
    assert not unknown, f"{unknown} are not fields of GatewaySettings (a typo is silently ignored)"


def test_gateway_dials_dialog_and_tts_of_the_release_and_they_admit_it() -> None:
    objs = render("default")
    env = env_of(container(objs))
    assert env["RIVULET_GATEWAY_DIALOG_URL"]["value"] == f"{RELEASE}-dialog:50051"
    assert env["RIVULET_GATEWAY_TTS_URL"]["value"] == f"{RELEASE}-tts:50051"
    gateway = one(objs, "Deployment", GATEWAY)
    for callee in ("dialog", "tts"):
        policy = one(objs, "NetworkPolicy", f"{RELEASE}-{callee}")
        grpc_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "grpc")
        peers = [p["podSelector"]["matchLabels"] for p in grpc_rule["from"] if "namespaceSelector" not in p]
        assert any(all(pod_labels(gateway).get(k) == v for k, v in peer.items()) for peer in peers), callee


def test_http_probes_and_plain_http_by_default() -> None:
    c = container(render("default"))
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"]["path"] == c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert not [n for n in env_of(c) if "TLS" in n or n == "RIVULET_CLIENT_API_KEY"]
    assert {m["name"] for m in c["volumeMounts"]} == {"tmp"}
    assert not [i for i in by_kind(render("default"), "Ingress") if i["metadata"]["name"] == GATEWAY]


def test_https_of_its_own_from_a_tls_secret() -> None:
    objs = rendered(
        "gateway.tls.enabled=true", "gateway.tls.secretName=web-tls", "gateway.ingress.enabled=true"
    )
    c = container(objs)
    env = env_of(c)
    pod = one(objs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "gateway-tls")
    volume = next(v for v in pod["volumes"] if v["name"] == "gateway-tls")
    assert volume["secret"]["secretName"] == "web-tls" and mount["readOnly"]
    assert env["RIVULET_GATEWAY_TLS_CERT"]["value"] == f"{mount['mountPath']}/tls.crt"
    assert env["RIVULET_GATEWAY_TLS_KEY"]["value"] == f"{mount['mountPath']}/tls.key"
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    assert all(c[p]["httpGet"]["scheme"] == "HTTPS" for p in probes)
    ingress = one(objs, "Ingress", GATEWAY)
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"


def test_gpu_cluster_calls_the_services_over_mutual_tls_with_an_api_key() -> None:
    objs = render("gpu-cluster")
    c = container(objs)
    env = env_of(c)
    assert env["RIVULET_CLIENT_TLS"]["value"] == "true"
    pod = one(objs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    tls_dir = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "tls")
    assert next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]["secretName"] == "rivulet-grpc-tls"
    for var, file in (("CA_FILE", "ca.crt"), ("CERT_FILE", "tls.crt"), ("KEY_FILE", "tls.key")):
        assert env[f"RIVULET_CLIENT_TLS_{var}"]["value"] == f"{tls_dir}/{file}"
    assert env["RIVULET_CLIENT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rivulet-dialog-api-key",
        "key": "api-key",
    }


def test_ingress_routes_only_the_app_and_keeps_websockets_open() -> None:
    ingress = one(render("gpu-cluster"), "Ingress", GATEWAY)
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "assistant.example.com"
    assert {p["path"]: p["pathType"] for p in rule["http"]["paths"]} == APP_PATHS  # no /metrics, probes
    assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {GATEWAY}
    assert ingress["spec"]["tls"] == [{"hosts": ["assistant.example.com"], "secretName": "rivulet-app-tls"}]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTP"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600


def test_network_policy_admits_the_ingress_controller_and_prometheus_only() -> None:
    objs = render("gpu-cluster")
    policy = one(objs, "NetworkPolicy", GATEWAY)
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    namespaces = [p["namespaceSelector"]["matchLabels"] for p in rule["from"]]
    assert namespaces == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]


def test_gateway_can_be_turned_off() -> None:
    objs = rendered("gateway.enabled=false")
    assert not [o for o in objs if o["metadata"]["name"] == GATEWAY]
