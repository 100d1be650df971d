"""Assertions on the rendered objects: GPUs, probes, security, PDBs, NetworkPolicies, Secrets, routing.

Each runs for the default values, the GPU-cluster values and the test values (all-services,
nlu-only).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.charts import (
    CHART,
    RELEASE,
    ROOT,
    VALUES_CASES,
    by_kind,
    containers,
    helm,
    ident,
    one,
    pod_labels,
    pod_specs,
    render,
    selector_matches,
    workloads,
)

CASES = list(VALUES_CASES)
TRITON = f"{RELEASE}-triton"
REDIS = f"{RELEASE}-redis"
Objs = tuple[dict[str, Any], ...]


def grpc_services(objs: Objs) -> list[dict[str, Any]]:
    return [
        d
        for d in by_kind(objs, "Deployment")
        if "rivulet.ai/grpc-service" in d["metadata"].get("annotations", {})
    ]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(params=CASES)
def objs(request: pytest.FixtureRequest) -> Objs:
    return render(request.param)


SERVICES = ("nlu", "asr", "tts", "dialog")
# chart -> (gRPC service it serves, its settings class: each RIVULET_* variable the chart sets is a field)
SERVICE_API = {
    "nlu": ("nvidia.riva.nlp.RivaLanguageUnderstanding", "rivulet.nlu.settings:NluSettings"),
    "asr": ("nvidia.riva.asr.RivaSpeechRecognition", "rivulet.asr.settings:AsrSettings"),
    "tts": ("nvidia.riva.tts.RivaSpeechSynthesis", "rivulet.tts.settings:TtsSettings"),
    "dialog": ("rivulet.dialog.v1.Dialog", "rivulet.dialog.settings:DialogSettings"),
}


def test_expected_services_render() -> None:
    every = {f"{RELEASE}-{n}" for n in SERVICES}
    assert {d["metadata"]["name"] for d in grpc_services(render("default"))} == every, "all on by default"
    assert {d["metadata"]["name"] for d in grpc_services(render("gpu-cluster"))} == every
    assert {d["metadata"]["name"] for d in grpc_services(render("all-services"))} == every
    assert {d["metadata"]["name"] for d in grpc_services(render("nlu-only"))} == {f"{RELEASE}-nlu"}


def test_services_serve_their_riva_api_with_the_service_module(objs: Objs) -> None:
    """Readiness asks the health service about the API the service registers (its SERVICE_NAME)."""
    import importlib

    for deploy in grpc_services(objs):
        chart = deploy["metadata"]["labels"]["app.kubernetes.io/name"]
        api, _ = SERVICE_API[chart]
        assert deploy["metadata"]["annotations"]["rivulet.ai/grpc-service"] == api
        assert importlib.import_module(f"rivulet.{chart}.service").SERVICE_NAME == api
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["grpc"]["service"] == api
        assert container["image"].rsplit(":", 1)[0].endswith(f"/{chart}") or container["image"].startswith(
            f"rivulet/{chart}:"
        ), container["image"]


def test_every_env_var_is_a_setting_of_the_service(objs: Objs) -> None:
    """A misspelled RIVULET_* variable would be ignored silently (extra="ignore"): each one set must exist."""
    import importlib

    for deploy in grpc_services(objs):
        chart = deploy["metadata"]["labels"]["app.kubernetes.io/name"]
        module, cls = SERVICE_API[chart][1].split(":")
        settings = getattr(importlib.import_module(module), cls)
        known = {f"RIVULET_{name.upper()}" for name in settings.model_fields}
        env = env_of(deploy["spec"]["template"]["spec"]["containers"][0])
        unknown = [
            n for n in env if n.startswith("RIVULET_") and n not in known and n != "RIVULET_REDIS_PASSWORD"
        ]
        assert not unknown, f"{ident(deploy)} sets {unknown}, not fields of {cls}"


def test_every_enabled_service_has_probes_pdb_hpa_and_resources(objs: Objs) -> None:
    for deploy in grpc_services(objs):
        name = deploy["metadata"]["name"]
        c = deploy["spec"]["template"]["spec"]["containers"][0]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(c), name
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"], name
        pdb = one(objs, "PodDisruptionBudget", name)
        assert selector_matches(pdb["spec"]["selector"], pod_labels(deploy))
        assert one(objs, "HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"]["name"] == name
        assert "nvidia.com/gpu" not in str(c["resources"]), f"{name}: services run on CPU nodes"


# ---- Dialog -> ASR, NLU, TTS ------------------------------------------------------------------------

DIALOG_CALLS = {
    "RIVULET_DIALOG_ASR_URL": "asr",
    "RIVULET_DIALOG_NLU_URL": "nlu",
    "RIVULET_DIALOG_TTS_URL": "tts",
}


@pytest.mark.parametrize("case", ["default", "gpu-cluster", "all-services"])
def test_dialog_dials_the_release_services_and_they_admit_it(case: str) -> None:
    objs = render(case)
    dialog = one(objs, "Deployment", f"{RELEASE}-dialog")
    env = env_of(dialog["spec"]["template"]["spec"]["containers"][0])
    assert pod_labels(dialog).get("rivulet.ai/grpc-client") == "true"
    for var, chart in DIALOG_CALLS.items():
        host, port = env[var]["value"].rsplit(":", 1)
        svc = one(objs, "Service", host)  # the address is a rendered Service of this release...
        grpc = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
        assert int(port) == grpc["port"], f"{var}: port {port}, Service {host} serves gRPC on {grpc['port']}"
        target = next(
            w
            for w in workloads(objs)
            if selector_matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(w))
        )
        # ...in front of the pods that serve the API the variable names...
        assert target["metadata"]["annotations"]["rivulet.ai/grpc-service"] == SERVICE_API[chart][0], var
        # ...whose NetworkPolicy admits the dialog pods on that port.
        assert f"Deployment/{RELEASE}-dialog" in _admitted(objs, _policy_for(objs, target), "grpc"), var


def test_dialog_reaches_redis_not_triton() -> None:
    objs = render("default")
    dialog = one(objs, "Deployment", f"{RELEASE}-dialog")
    env = env_of(dialog["spec"]["template"]["spec"]["containers"][0])
    assert "RIVULET_TRITON_URL" not in env and "rivulet.ai/triton-client" not in pod_labels(dialog)
    assert env["RIVULET_REDIS_URL"]["value"].startswith("redis://:$(RIVULET_REDIS_PASSWORD)@rivulet-redis:")
    assert f"Deployment/{RELEASE}-dialog" in _admitted(
        objs, _policy_for(objs, one(objs, "StatefulSet", REDIS)), "redis"
    )
    assert f"Deployment/{RELEASE}-dialog" not in _admitted(
        objs, _policy_for(objs, one(objs, "Deployment", TRITON)), "grpc"
    )


def test_dialog_call_addresses_can_point_outside_the_release() -> None:
    out = helm("template", RELEASE, str(CHART), "--set", "asr.enabled=false",
               "--set", "dialog.calls[0].env=RIVULET_DIALOG_ASR_URL", "--set", "dialog.calls[0].service=asr",
               "--set", "dialog.calls[0].port=50051",
               "--set", "dialog.calls[0].address=riva-asr.speech.svc:50051").stdout  # fmt: skip
    dialog = one(tuple(d for d in yaml.safe_load_all(out) if d), "Deployment", f"{RELEASE}-dialog")
    env = env_of(dialog["spec"]["template"]["spec"]["containers"][0])
    assert env["RIVULET_DIALOG_ASR_URL"]["value"] == "riva-asr.speech.svc:50051"
    assert "RIVULET_DIALOG_NLU_URL" not in env, "--set on a list replaces the whole list"


def test_calls_without_the_client_label_are_rejected() -> None:
    proc = helm("template", RELEASE, str(CHART), "--set", "dialog.needs.grpcServices=false", check=False)
    assert proc.returncode != 0
    assert "dialog: calls lists gRPC services to call, so needs.grpcServices must be true" in proc.stderr


def test_ingress_routes_the_dialog_api_to_dialog() -> None:
    ingress = one(render("default"), "Ingress", f"{RELEASE}-grpc")
    routes = {
        p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes == {
        "/nvidia.riva.nlp.RivaLanguageUnderstanding/": f"{RELEASE}-nlu",
        "/nvidia.riva.asr.RivaSpeechRecognition/": f"{RELEASE}-asr",
        "/nvidia.riva.tts.RivaSpeechSynthesis/": f"{RELEASE}-tts",
        "/rivulet.dialog.v1.Dialog/": f"{RELEASE}-dialog",
    }


# ---- Triton ---------------------------------------------------------------------------------------


def test_triton_requests_and_limits_gpus_on_gpu_nodes(objs: Objs) -> None:
    spec = one(objs, "Deployment", TRITON)["spec"]["template"]["spec"]
    triton = next(c for c in spec["containers"] if c["name"] == "triton")
    assert int(triton["resources"]["requests"]["nvidia.com/gpu"]) >= 1
    assert (
        triton["resources"]["limits"]["nvidia.com/gpu"] == triton["resources"]["requests"]["nvidia.com/gpu"]
    )
    assert spec["nodeSelector"].get("nvidia.com/gpu.present") == "true"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    # No other workload takes a GPU.
    for name, pod in pod_specs(objs):
        if name != f"Deployment/{TRITON}":
            for c in containers(pod):
                assert "nvidia.com/gpu" not in str(c.get("resources")), f"{name}/{c['name']} requests a GPU"


def test_triton_probes_allow_model_loading_and_use_triton_health(objs: Objs) -> None:
    triton = one(objs, "Deployment", TRITON)["spec"]["template"]["spec"]["containers"][0]
    startup, ready, live = triton["startupProbe"], triton["readinessProbe"], triton["livenessProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, (
        "less than 10 minutes to load models"
    )
    assert ready["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert live["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert "--strict-readiness=true" in triton["args"]
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}


def test_model_repository_is_built_once_and_shared_read_only(objs: Objs) -> None:
    deploy = one(objs, "Deployment", TRITON)
    pod = deploy["spec"]["template"]["spec"]
    jobs = by_kind(objs, "Job")
    assert len(jobs) == 1, "exactly one model-builder Job"
    job_pod = jobs[0]["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    job_claim = next(v for v in job_pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    assert claim["claimName"] == job_claim["claimName"] and claim["readOnly"] is True
    pvc = one(objs, "PersistentVolumeClaim", claim["claimName"])
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "replicas on several nodes share the repository"
    for c in containers(pod):
        for m in c.get("volumeMounts", []):
            if m["name"] == "models":
                assert m.get("readOnly") is True, f"Triton container {c['name']} may write the repository"
    # Triton waits for the marker the builder writes last, and the builder writes exactly that path.
    wait = " ".join(pod["initContainers"][0]["command"])
    marker = re.search(r"\[ -f (\S+) \]", wait).group(1)
    script = job_pod["containers"][0]["command"][-1]
    assert script.rstrip().splitlines()[-2].endswith(f"> {marker}"), script
    assert f"[ -f {marker} ]" in script, "the builder must skip a repository already built"
    builds = [line for line in script.splitlines() if line.strip().startswith("python -m pipelines.")]
    assert builds and all(line.endswith("--repository /models") for line in builds), builds
    # The build id ties the Job name, the marker and Triton's pod annotation together.
    build_id = jobs[0]["metadata"]["labels"]["rivulet.ai/model-build"]
    assert marker.endswith(build_id) and jobs[0]["metadata"]["name"].endswith(build_id)
    assert deploy["spec"]["template"]["metadata"]["annotations"]["rivulet.ai/model-build"] == build_id
    assert jobs[0]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_asr_reads_language_models_from_the_same_repository_read_only(objs: Objs) -> None:
    triton_pod = one(objs, "Deployment", TRITON)["spec"]["template"]["spec"]
    triton_claim = next(v for v in triton_pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    for deploy in grpc_services(objs):
        pod = deploy["spec"]["template"]["spec"]
        (container,) = containers(pod)
        mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
        env = env_of(container)
        if deploy["metadata"]["name"] != f"{RELEASE}-asr":
            assert "model-repository" not in mounts and "RIVULET_ASR_MODEL_REPOSITORY" not in env
            continue
        claim = next(v for v in pod["volumes"] if v["name"] == "model-repository")["persistentVolumeClaim"]
        assert claim == {**triton_claim, "readOnly": True}
        assert mounts["model-repository"]["readOnly"] is True
        assert env["RIVULET_ASR_MODEL_REPOSITORY"]["value"] == mounts["model-repository"]["mountPath"]


MODELS = ("intent_assistant", "intent_atis", "punct_capit_en", "asr_streaming", "asr_whisper", "tts_embedded")


def _builder_script(objs: Objs) -> str:
    return by_kind(objs, "Job")[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def test_model_builder_puts_every_served_model_into_the_repository(objs: Objs) -> None:
    script = _builder_script(objs)
    copy_loop = next(line for line in script.splitlines() if line.startswith("for model in"))
    assert re.findall(r"'([^']+)'", copy_loop) == list(MODELS)
    for model in MODELS:  # the directories the Job copies exist in the repository (and so in the image)
        assert (ROOT / "models" / model / "1").is_dir(), model
    runs = [line.strip() for line in script.splitlines() if line.strip().startswith("python -m pipelines.")]
    full = "'--profile' 'full' '--no-report' --repository /models"
    assert runs[:4] == [
        f"python -m pipelines.nlu 'build' '--dataset' 'assistant' {full}",
        f"python -m pipelines.nlu 'build' '--dataset' 'atis' {full}",
        "python -m pipelines.punct 'build' '--profile' 'full' --repository /models",
        f"python -m pipelines.asr 'build' {full}",
    ]
    # the GPU values add the GPU configs last (tests/helm/test_gpu_values.py)
    assert runs[4:] in ([], ["python -m pipelines.device_config '--device' 'gpu' --repository /models"])
    # The ASR build runs only when the committed weights are not there.
    asr = script.index("python -m pipelines.asr")
    assert "if [ -e /models/asr_streaming/1/encoder.onnx ]; then" in script[:asr].splitlines()[-3]
    env = env_of(by_kind(objs, "Job")[0]["spec"]["template"]["spec"]["containers"][0])
    assert env["RIVULET_CACHE_DIR"]["value"].startswith("/tmp/"), "caches go to the tmp emptyDir"


def test_model_builder_commands_are_real_cli_commands() -> None:
    """Each build's arguments parse with the pipeline's own argument parser (no typo'd flags)."""
    import importlib

    for build in yaml.safe_load((CHART / "charts" / "triton" / "values.yaml").read_text())["modelBuilder"][
        "builds"
    ]:
        parse_args = importlib.import_module(f"{build['module']}.__main__").parse_args
        args = parse_args([*build["args"], "--repository", "/models"])
        assert args.command == "build" and str(args.repository) == "/models", build
    # The optional neural-voice entry documented in the values: its flags exist.
    values = (CHART / "charts" / "triton" / "values.yaml").read_text()
    assert '#     args: ["export", "--fastpitch", "/data/tts/fastpitch.nemo", "--hifigan"' in values
    usage = subprocess.run([sys.executable, "-m", "pipelines.tts", "export", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert all(flag in usage for flag in ("--fastpitch", "--hifigan", "--repository")), usage


def _run_builder(script: str, src: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    script = script.replace("/app/models", str(src))
    return subprocess.run(["/bin/sh", "-ec", script], capture_output=True, text=True, timeout=60)


def test_model_builder_script_copies_skips_and_checks(tmp_path: Path) -> None:
    """The Job's real shell script, run here on a copy of models/ with a build that is skipped."""
    src, repo = tmp_path / "app-models", tmp_path / "models"
    repo.mkdir()
    shutil.copytree(ROOT / "models", src, ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "*.json"))
    (src / "asr_streaming" / "1" / "encoder.onnx").write_bytes(b"committed weights")
    for model in ("asr_streaming",):
        (src / model / "config.pbtxt").write_text(f'name: "{model}"\n')
    sets = ["--set", f"triton.modelRepository.mountPath={repo}",
            "--set-json", 'triton.modelBuilder.builds=[{"module": "pipelines.asr", "args": ["build"],'
            ' "skipIfPresent": "asr_streaming/1/encoder.onnx"}]']  # fmt: skip
    out = helm("template", RELEASE, str(CHART), *sets).stdout
    script = _builder_script(tuple(d for d in yaml.safe_load_all(out) if d))
    proc = _run_builder(script, src, repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "asr_streaming/1/encoder.onnx present: skipping pipelines.asr build" in proc.stdout
    for model in MODELS:
        assert (repo / model / "config.pbtxt").is_file() and (repo / model / "1" / "model.py").is_file(), (
            model
        )
    assert (repo / "asr_streaming" / "1" / "encoder.onnx").read_bytes() == b"committed weights"
    markers = list(repo.glob(".rivulet-build-*"))
    assert len(markers) == 1 and markers[0].name in script
    # A second run finds the marker and does nothing.
    again = _run_builder(script, src, repo)
    assert again.returncode == 0 and "already present" in again.stdout


def test_model_builder_script_fails_on_an_incomplete_model(tmp_path: Path) -> None:
    src, repo = tmp_path / "app-models", tmp_path / "models"
    repo.mkdir()
    shutil.copytree(
        ROOT / "models" / "tts_embedded", src / "tts_embedded", ignore=shutil.ignore_patterns("__pycache__")
    )
    (src / "half_built" / "1").mkdir(parents=True)
    sets = ["--set", f"triton.modelRepository.mountPath={repo}", "--set-json",
            "triton.modelBuilder.builds=[]",
            "--set-json", 'triton.modelBuilder.models=["tts_embedded", "half_built"]']  # fmt: skip
    script = _builder_script(
        tuple(d for d in yaml.safe_load_all(helm("template", RELEASE, str(CHART), *sets).stdout) if d)
    )
    proc = _run_builder(script, src, repo)
    assert proc.returncode != 0 and "half_built has no config.pbtxt after the builds" in proc.stdout
    assert not list(repo.glob(".rivulet-build-*")), "no marker: Triton keeps waiting"
    missing = _run_builder(script.replace("'half_built'", "'not_there'"), src, repo)
    assert missing.returncode != 0 and "models/not_there is not in the builder image" in missing.stdout


def test_triton_serves_the_image_with_the_python_models_environment(objs: Objs) -> None:
    triton = one(objs, "Deployment", TRITON)["spec"]["template"]["spec"]["containers"][0]
    assert triton["command"] == ["tritonserver"]
    assert "--model-repository=/models" in triton["args"]
    # PYTHONPATH (rivulet.voices for tts_embedded) comes from the image; the chart must not override it.
    assert "PYTHONPATH" not in env_of(triton)
    assert any(m["mountPath"] == "/tmp" for m in triton["volumeMounts"]), "engines write temp files to /tmp"


def test_triton_autoscales_on_queue_time(objs: Objs) -> None:
    hpa = one(objs, "HorizontalPodAutoscaler", TRITON)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": TRITON}
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Pods"]
    assert metrics[0]["pods"]["metric"]["name"] == "avg_time_queue_us"
    assert metrics[0]["pods"]["target"]["type"] == "AverageValue"
    assert "replicas" not in one(objs, "Deployment", TRITON)["spec"], "the HPA owns the replica count"


# ---- gRPC services --------------------------------------------------------------------------------


def test_services_use_native_grpc_readiness_and_drain_streams(objs: Objs) -> None:
    for deploy in grpc_services(objs):
        pod = deploy["spec"]["template"]["spec"]
        c = pod["containers"][0]
        grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
        service_name = deploy["metadata"]["annotations"]["rivulet.ai/grpc-service"]
        env = env_of(c)
        if "RIVULET_HEALTH_PORT" in env:  # TLS on: the kubelet asks the plain-text health listener
            probe_port = int(env["RIVULET_HEALTH_PORT"]["value"])
            assert {"name": "health", "containerPort": probe_port, "protocol": "TCP"} in c["ports"]
        else:
            probe_port = grpc_port
        assert c["readinessProbe"]["grpc"] == {"port": probe_port, "service": service_name}, ident(deploy)
        assert c["startupProbe"]["tcpSocket"]["port"] == "grpc"
        assert c["livenessProbe"]["tcpSocket"]["port"] == "grpc"
        assert env["RIVULET_GRPC_PORT"]["value"] == str(grpc_port)
        drain = float(env["RIVULET_SHUTDOWN_GRACE_S"]["value"])
        pre_stop = float(c["lifecycle"]["preStop"]["exec"]["command"][1])
        assert pod["terminationGracePeriodSeconds"] > drain + pre_stop, ident(deploy)


def test_services_autoscale_on_cpu_and_in_flight_streams(objs: Objs) -> None:
    for deploy in grpc_services(objs):
        name = deploy["metadata"]["name"]
        hpa = one(objs, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        assert kinds["Pods"]["pods"]["metric"]["name"] == "rivulet_grpc_in_flight"
        assert hpa["spec"]["minReplicas"] >= 2


def test_services_reach_triton_and_redis_at_the_rendered_services(objs: Objs) -> None:
    triton_svc = one(objs, "Service", TRITON)
    grpc_port = next(p["port"] for p in triton_svc["spec"]["ports"] if p["name"] == "grpc")
    for deploy in grpc_services(objs):
        env = env_of(deploy["spec"]["template"]["spec"]["containers"][0])
        labels = pod_labels(deploy)
        if "RIVULET_TRITON_URL" in env:
            assert env["RIVULET_TRITON_URL"]["value"] == f"{TRITON}:{grpc_port}"
            assert labels.get("rivulet.ai/triton-client") == "true"
        else:
            assert "rivulet.ai/triton-client" not in labels
        if "RIVULET_REDIS_URL" in env:
            names = list(env)
            assert names.index("RIVULET_REDIS_PASSWORD") < names.index("RIVULET_REDIS_URL"), "$(VAR) order"
            url = env["RIVULET_REDIS_URL"]["value"]
            tls = "RIVULET_TLS_CERT_FILE" in env  # with global.tls Redis speaks only TLS (query: its CA)
            scheme = "rediss" if tls else "redis"
            assert url.split("?")[0] == f"{scheme}://:$(RIVULET_REDIS_PASSWORD)@{REDIS}:6379/0", url
            assert labels.get("rivulet.ai/redis-client") == "true"
        else:
            assert "rivulet.ai/redis-client" not in labels


# ---- security --------------------------------------------------------------------------------------


def test_every_pod_is_non_root_read_only_without_capabilities(objs: Objs) -> None:
    problems = []
    for name, pod in pod_specs(objs):
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
            problems.append(f"{name}: pod may run as root ({psc})")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        for c in containers(pod):
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}/{c['name']}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
                problems.append(f"{name}/{c['name']}: may escalate privileges")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get(
                "add"
            ):
                problems.append(f"{name}/{c['name']}: capabilities not all dropped")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
                problems.append(f"{name}/{c['name']}: no resource requests and limits")
            if re.search(r":latest$", c["image"]) or (":" not in c["image"] and "@" not in c["image"]):
                problems.append(f"{name}/{c['name']}: unpinned image {c['image']}")
    assert not problems, "\n".join(problems)


def test_images_come_from_the_configured_registry() -> None:
    for name, pod in pod_specs(render("gpu-cluster")):
        for c in containers(pod):
            if "redis" not in c["image"]:
                assert c["image"].startswith("registry.example.com/rivulet-ai/"), f"{name}: {c['image']}"
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}], name


# ---- PDBs, Services ---------------------------------------------------------------------------------


def test_every_replicated_deployment_has_a_matching_pdb(objs: Objs) -> None:
    pdbs = by_kind(objs, "PodDisruptionBudget")
    for deploy in by_kind(objs, "Deployment"):
        labels = pod_labels(deploy)
        matching = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        assert len(matching) == 1, f"{ident(deploy)}: {len(matching)} PDBs select its pods"
        pdb = matching[0]["spec"]
        assert "maxUnavailable" in pdb and pdb["maxUnavailable"] not in (0, "0%"), "a PDB must allow drains"
        # and the PDB selects nothing else
        others = [
            w
            for w in workloads(objs)
            if w is not deploy and selector_matches(matching[0]["spec"]["selector"], pod_labels(w))
        ]
        assert not others, f"PDB {matching[0]['metadata']['name']} also selects {[ident(o) for o in others]}"


def test_every_service_selects_pods_with_its_target_ports(objs: Objs) -> None:
    for svc in by_kind(objs, "Service"):
        targets = [
            w
            for w in workloads(objs)
            if selector_matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(w))
        ]
        assert len(targets) == 1, f"{ident(svc)} selects {[ident(t) for t in targets]}"
        port_names = {
            p["name"]
            for c in targets[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{ident(svc)} targets unknown port {port['targetPort']}"


# ---- NetworkPolicies ----------------------------------------------------------------------------------


def _policy_for(objs: Objs, workload: dict[str, Any]) -> dict[str, Any]:
    policies = [
        p
        for p in by_kind(objs, "NetworkPolicy")
        if selector_matches(p["spec"]["podSelector"], pod_labels(workload))
    ]
    assert len(policies) == 1, f"{ident(workload)} is selected by {len(policies)} NetworkPolicies"
    return policies[0]


def _admitted(objs: Objs, policy: dict[str, Any], port: str) -> set[str]:
    """Workloads of this release whose pods the policy admits on a port (same-namespace podSelector peers)."""
    out = set()
    for rule in policy["spec"]["ingress"]:
        if not any(p["port"] == port for p in rule["ports"]):
            continue
        for peer in rule["from"]:
            if "podSelector" in peer and "namespaceSelector" not in peer:
                out |= {
                    ident(w) for w in workloads(objs) if selector_matches(peer["podSelector"], pod_labels(w))
                }
    return out


def test_only_services_that_need_triton_reach_it(objs: Objs) -> None:
    triton = one(objs, "Deployment", TRITON)
    policy = _policy_for(objs, triton)
    expected = {
        ident(d)
        for d in grpc_services(objs)
        if "RIVULET_TRITON_URL" in env_of(d["spec"]["template"]["spec"]["containers"][0])
    }
    assert expected, "some service must call Triton"
    assert _admitted(objs, policy, "grpc") == expected
    assert f"StatefulSet/{REDIS}" not in _admitted(objs, policy, "grpc")
    assert not any("Job/" in w for w in _admitted(objs, policy, "grpc"))


def test_only_services_that_need_redis_reach_it(objs: Objs) -> None:
    redis = one(objs, "StatefulSet", REDIS)
    policy = _policy_for(objs, redis)
    expected = {
        ident(d)
        for d in grpc_services(objs)
        if "RIVULET_REDIS_URL" in env_of(d["spec"]["template"]["spec"]["containers"][0])
    }
    assert _admitted(objs, policy, "redis") == expected
    if any(d["metadata"]["name"] == f"{RELEASE}-dialog" for d in grpc_services(objs)):
        assert expected == {f"Deployment/{RELEASE}-dialog"}
    assert all(len(rule["from"]) > 0 for rule in policy["spec"]["ingress"]), "an empty `from` admits everyone"


def test_services_admit_the_ingress_controller_and_grpc_clients(objs: Objs) -> None:
    for deploy in grpc_services(objs):
        policy = _policy_for(objs, deploy)
        grpc_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "grpc")
        ns_peers = [p for p in grpc_rule["from"] if "namespaceSelector" in p]
        assert ns_peers and ns_peers[0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
        callers = _admitted(objs, policy, "grpc")
        # the gRPC clients of the release: Dialog (calls ASR, NLU, TTS) and the web app's gateway
        # (calls Dialog and TTS)
        clients = {
            ident(d)
            for d in by_kind(objs, "Deployment")
            if d["metadata"]["name"] in (f"{RELEASE}-dialog", f"{RELEASE}-gateway")
        }
        assert callers == clients, f"{ident(deploy)} admits {callers}"


def test_no_policies_when_disabled() -> None:

    out = helm("template", RELEASE, str(CHART), "--set", "global.networkPolicy.enabled=false").stdout
    assert not [d for d in yaml.safe_load_all(out) if d and d["kind"] == "NetworkPolicy"]


# ---- Secrets, Redis ------------------------------------------------------------------------------


# Secrets the operator creates before installing (named in values-gpu-cluster.yaml): TLS certificates
# and API keys never come from the chart.
EXTERNAL_SECRETS = {"rivulet-grpc-tls", "rivulet-api-keys", "rivulet-dialog-api-key", "rivulet-app-tls"}


def test_secret_references_resolve(objs: Objs) -> None:
    secrets = {s["metadata"]["name"]: s for s in by_kind(objs, "Secret")}
    refs = []
    for name, pod in pod_specs(objs):
        for c in containers(pod):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] in EXTERNAL_SECRETS:
                    continue
                if ref:
                    refs.append(ref)
                    assert ref["name"] in secrets, f"{name}/{c['name']} reads missing Secret {ref['name']}"
                    assert ref["key"] in secrets[ref["name"]]["data"], (
                        f"{name}: key {ref['key']} not in Secret"
                    )
    assert refs, "Redis and its clients read the password from a Secret"
    assert len(secrets[REDIS]["data"]["redis-password"]) >= 32


def test_redis_has_aof_persistence_and_no_password_in_plain_text(objs: Objs) -> None:
    sts = one(objs, "StatefulSet", REDIS)
    conf = one(objs, "ConfigMap", REDIS)["data"]["redis.conf"]
    assert re.search(r"^appendonly yes$", conf, re.M) and re.search(r"^dir /data$", conf, re.M)
    assert "requirepass" not in conf.replace("--requirepass", "")
    claims = sts["spec"]["volumeClaimTemplates"]
    assert claims[0]["metadata"]["name"] == "data"
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert any(m["name"] == "data" and m["mountPath"] == "/data" for m in c["volumeMounts"])
    assert '--requirepass "$REDIS_PASSWORD"' in c["args"][0]
    assert env_of(c)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == REDIS


def test_existing_redis_secret_is_used_and_none_is_created() -> None:
    out = helm("template", RELEASE, str(CHART), "--set", "global.redis.existingSecret=my-redis",
               "--set", "dialog.enabled=true").stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert not [d for d in docs if d["kind"] == "Secret"]
    dialog = one(tuple(docs), "Deployment", f"{RELEASE}-dialog")
    ref = env_of(dialog["spec"]["template"]["spec"]["containers"][0])["RIVULET_REDIS_PASSWORD"]
    assert ref["valueFrom"]["secretKeyRef"]["name"] == "my-redis"


# ---- one address: gRPC ingress, monitoring ---------------------------------------------------------------


def test_ingress_routes_every_grpc_service_to_its_deployment(objs: Objs) -> None:
    ingress = one(objs, "Ingress", f"{RELEASE}-grpc")
    services_tls = any("RIVULET_TLS_CERT_FILE" in env_of(d["spec"]["template"]["spec"]["containers"][0])
                       for d in grpc_services(objs))  # fmt: skip
    protocol = "GRPCS" if services_tls else "GRPC"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == protocol
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    routed = {}
    for p in paths:
        svc = one(objs, "Service", p["backend"]["service"]["name"])
        assert p["backend"]["service"]["port"]["number"] in {
            port["port"] for port in svc["spec"]["ports"] if port["name"] == "grpc"
        }
        target = next(
            w
            for w in workloads(objs)
            if selector_matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(w))
        )
        routed[p["path"]] = target["metadata"]["annotations"]["rivulet.ai/grpc-service"]
    assert routed == {
        f"/{d['metadata']['annotations']['rivulet.ai/grpc-service']}/": d["metadata"]["annotations"][
            "rivulet.ai/grpc-service"
        ]
        for d in grpc_services(objs)
    }
    assert ingress["spec"]["tls"], "ingress-nginx serves gRPC (HTTP/2) only over TLS"


def test_servicemonitors_select_services_with_a_metrics_port() -> None:
    objs = render("all-services")
    monitors = by_kind(objs, "ServiceMonitor")
    assert len(monitors) == 6  # nlu, asr, tts, dialog, gateway, triton
    for sm in monitors:
        svcs = [
            s
            for s in by_kind(objs, "Service")
            if selector_matches(sm["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert len(svcs) == 1, f"{ident(sm)} selects {[ident(s) for s in svcs]}"
        assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svcs[0]["spec"]["ports"]}
    assert not by_kind(render("default"), "ServiceMonitor"), "ServiceMonitors are optional (off by default)"


def test_prometheus_adapter_rules_serve_the_metrics_the_hpas_read() -> None:
    """helm/prometheus-adapter-values.yaml names exactly the custom metrics the rendered HPAs use."""
    adapter = yaml.safe_load((CHART.parent / "prometheus-adapter-values.yaml").read_text())
    served = {rule["name"]["as"]: rule for rule in adapter["rules"]["custom"]}
    wanted = {
        m["pods"]["metric"]["name"]
        for hpa in by_kind(render("all-services"), "HorizontalPodAutoscaler")
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Pods"
    }
    assert wanted == set(served), f"HPAs read {wanted}, the adapter serves {set(served)}"
    assert "nv_inference_queue_duration_us" in served["avg_time_queue_us"]["metricsQuery"]
    for rule in served.values():
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}, "Pods metrics need the pod label"
        assert "<<.GroupBy>>" in rule["metricsQuery"]


# ---------------------------------------------------------------- TLS and API keys (global.tls, global.auth)


def _mounts(container: dict[str, Any], pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mount path -> the volume mounted there (empty for a StatefulSet's claim template)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}


def _mounted_secret(path: str, container: dict[str, Any], pod: dict[str, Any]) -> str:
    """The Secret whose volume holds file `path` (fails when no Secret volume covers it)."""
    for mount, volume in _mounts(container, pod).items():
        if path.startswith(mount.rstrip("/") + "/") and "secret" in volume:
            return volume["secret"]["secretName"]
    raise AssertionError(f"{path} is on no mounted Secret")


def test_gpu_cluster_serves_tls_and_requires_api_keys_everywhere() -> None:
    objs = render("gpu-cluster")
    services = grpc_services(objs)
    assert {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in services} == set(SERVICES)
    for deploy in services:
        pod = deploy["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = env_of(c)
        for var in ("RIVULET_TLS_CERT_FILE", "RIVULET_TLS_KEY_FILE", "RIVULET_TLS_CLIENT_CA_FILE"):
            assert _mounted_secret(env[var]["value"], c, pod) == "rivulet-grpc-tls", (ident(deploy), var)
        keys_file = env["RIVULET_AUTH_KEYS_FILE"]["value"]
        assert _mounted_secret(keys_file, c, pod) == "rivulet-api-keys", ident(deploy)
        volume = next(
            v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "rivulet-api-keys"
        )
        assert volume["secret"]["items"] == [{"key": "keys.yaml", "path": keys_file.rsplit("/", 1)[1]}]
        assert env["RIVULET_AUTH_OPEN_HEALTH"]["value"] == "true"
        assert env["RIVULET_AUTH_OPEN_REFLECTION"]["value"] == "false"
        assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] in ("tls", "api-keys"))


def test_dialog_calls_services_with_tls_a_client_certificate_and_its_key() -> None:
    dialog = one(render("gpu-cluster"), "Deployment", f"{RELEASE}-dialog")
    pod = dialog["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = env_of(c)
    assert env["RIVULET_CLIENT_TLS"]["value"] == "true"
    for var in ("RIVULET_CLIENT_TLS_CA_FILE", "RIVULET_CLIENT_TLS_CERT_FILE", "RIVULET_CLIENT_TLS_KEY_FILE"):
        assert _mounted_secret(env[var]["value"], c, pod) == "rivulet-grpc-tls", var
    assert env["RIVULET_CLIENT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rivulet-dialog-api-key",
        "key": "api-key",
    }
    for callee in ("nlu", "asr", "tts"):  # services that call nobody get no client settings
        deploy = one(render("gpu-cluster"), "Deployment", f"{RELEASE}-{callee}")
        callee_env = env_of(deploy["spec"]["template"]["spec"]["containers"][0])
        assert "RIVULET_CLIENT_TLS" not in callee_env and "RIVULET_CLIENT_API_KEY" not in callee_env


def test_ingress_speaks_grpcs_to_tls_services_and_checks_their_certificate() -> None:
    ingress = one(render("gpu-cluster"), "Ingress", f"{RELEASE}-grpc")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPCS"
    assert notes["nginx.ingress.kubernetes.io/proxy-ssl-secret"] == "rivulet/rivulet-grpc-tls"
    assert notes["nginx.ingress.kubernetes.io/proxy-ssl-verify"] == "on"
    assert notes["nginx.ingress.kubernetes.io/proxy-ssl-name"] == "rivulet-grpc.rivulet.svc"
    assert ingress["spec"]["tls"] == [{"hosts": ["riva.example.com"], "secretName": "rivulet-tls"}]
    default = one(render("default"), "Ingress", f"{RELEASE}-grpc")["metadata"]["annotations"]
    assert default["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert "nginx.ingress.kubernetes.io/proxy-ssl-secret" not in default


def test_default_values_serve_plain_text_without_keys() -> None:
    for deploy in grpc_services(render("default")):
        c = deploy["spec"]["template"]["spec"]["containers"][0]
        assert not [n for n in env_of(c) if n.startswith(("RIVULET_TLS", "RIVULET_AUTH", "RIVULET_CLIENT"))]
        assert {m["name"] for m in c["volumeMounts"]} == {"tmp"} | (
            {"model-repository"} if "RIVULET_ASR_MODEL_REPOSITORY" in env_of(c) else set()
        )


def test_redis_serves_only_tls_and_dialog_dials_it_trusting_the_ca() -> None:
    objs = render("gpu-cluster")
    conf = one(objs, "ConfigMap", REDIS)["data"]["redis.conf"].splitlines()
    assert "port 0" in conf and "tls-port 6379" in conf and "tls-auth-clients yes" in conf
    redis = one(objs, "StatefulSet", REDIS)
    pod = redis["spec"]["template"]["spec"]
    c = pod["containers"][0]
    for line in conf:
        if line.startswith(("tls-cert-file", "tls-key-file", "tls-ca-cert-file")):
            assert _mounted_secret(line.split()[1], c, pod) == "rivulet-grpc-tls", line
    for probe in ("startupProbe", "readinessProbe"):
        assert "--tls --cacert /etc/redis/tls/ca.crt" in c[probe]["exec"]["command"][-1], probe
    dialog = one(objs, "Deployment", f"{RELEASE}-dialog")
    dpod = dialog["spec"]["template"]["spec"]
    url = env_of(dpod["containers"][0])["RIVULET_REDIS_URL"]["value"]
    assert url.startswith(f"rediss://:$(RIVULET_REDIS_PASSWORD)@{REDIS}:6379/0?")
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    assert set(query) == {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"}
    for path in query.values():
        assert _mounted_secret(path, dpod["containers"][0], dpod) == "rivulet-grpc-tls"
    default_dialog = one(render("default"), "Deployment", f"{RELEASE}-dialog")["spec"]["template"]["spec"]
    default_url = env_of(default_dialog["containers"][0])["RIVULET_REDIS_URL"]["value"]
    assert default_url.startswith("redis://") and "?" not in default_url


def test_triton_serves_grpc_over_mutual_tls_and_its_clients_use_it() -> None:
    objs = render("gpu-cluster")
    triton = one(objs, "Deployment", TRITON)
    pod = triton["spec"]["template"]["spec"]
    c = next(c for c in pod["containers"] if c["name"] == "triton")
    args = c["args"]
    assert "--grpc-use-ssl-mutual=true" in args
    for flag in ("--grpc-server-cert=", "--grpc-server-key=", "--grpc-root-cert="):
        path = next(a for a in args if a.startswith(flag)).split("=", 1)[1]
        assert _mounted_secret(path, c, pod) == "rivulet-grpc-tls", flag
    assert c["readinessProbe"]["httpGet"]["port"] == "http"  # probes stay on plain-text HTTP
    clients = [
        d
        for d in grpc_services(objs)
        if "RIVULET_TRITON_URL" in env_of(d["spec"]["template"]["spec"]["containers"][0])
    ]
    assert len(clients) == 3
    for deploy in clients:
        dpod = deploy["spec"]["template"]["spec"]
        env = env_of(dpod["containers"][0])
        assert env["RIVULET_TRITON_TLS"]["value"] == "true", ident(deploy)
        for var in (
            "RIVULET_TRITON_TLS_CA_FILE",
            "RIVULET_TRITON_TLS_CERT_FILE",
            "RIVULET_TRITON_TLS_KEY_FILE",
        ):
            assert _mounted_secret(env[var]["value"], dpod["containers"][0], dpod) == "rivulet-grpc-tls", var
    default = one(render("default"), "Deployment", TRITON)["spec"]["template"]["spec"]["containers"]
    assert not [a for c in default for a in c.get("args", []) if "ssl" in a]
