"""values.schema.json: committed schemas are what helm/schemas/gen_schemas.py writes, every value in
values.yaml is commented, and wrong values are rejected by helm with a message naming the value."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.helm.charts import CHART, ROOT, helm

CHART_DIRS = [CHART, *sorted(p for p in (CHART / "charts").iterdir() if (p / "values.yaml").exists())]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "helm" / "schemas" / "gen_schemas.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_are_generated() -> None:
    gen = _generator()
    stale = [
        str(path.relative_to(ROOT))
        for path, schema in gen.schemas().items()
        if json.loads(path.read_text()) != schema
    ]
    assert not stale, f"run `.venv/bin/python helm/schemas/gen_schemas.py`; stale: {stale}"


def test_every_chart_with_values_has_a_schema() -> None:
    missing = [p.name for p in CHART_DIRS if not (p / "values.schema.json").exists()]
    assert not missing, missing


def test_service_charts_share_one_block_shape() -> None:
    """nlu, asr, tts and dialog have the same keys, so `common.grpcService` can render any of them."""

    def keys(node: object, prefix: str = "") -> set[str]:
        if not isinstance(node, dict):
            return {prefix}
        return {k for key, v in node.items() for k in keys(v, f"{prefix}.{key}")} | {prefix}

    shapes = {n: keys(yaml.safe_load((CHART / "charts" / n / "values.yaml").read_text())) for n in
              ("nlu", "asr", "tts", "dialog")}  # fmt: skip
    assert all(s == shapes["nlu"] for s in shapes.values()), {n: s ^ shapes["nlu"] for n, s in shapes.items()}


def undocumented_values(text: str) -> list[str]:
    """Leaf values with no comment right above them or above one of their parent keys.

    The helm-docs convention: a comment above a key documents the key and everything under it, so a
    literal structure (resources, nodeSelector, tolerations) is documented by one comment on its key.
    """
    lines = text.splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    bare = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("- "):  # list items belong to the key that holds the list
            continue
        match = re.match(r"^([A-Za-z0-9_./-]+):(.*)$", stripped)
        if not match:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prev = lines[i - 1].strip() if i else ""
        documented = prev.startswith("#") or any(doc for _, doc in stack)
        is_leaf = match.group(2).strip() != ""
        if is_leaf and not documented:
            bare.append(f"line {i + 1}: {stripped}")
        stack.append((indent, documented))
    return bare


@pytest.mark.parametrize("chart_dir", CHART_DIRS, ids=lambda p: p.name)
def test_every_value_is_commented(chart_dir: Path) -> None:
    bare = undocumented_values((chart_dir / "values.yaml").read_text())
    assert not bare, f"{chart_dir.name}/values.yaml values without a comment:\n" + "\n".join(bare)


def test_comment_check_finds_an_undocumented_value() -> None:
    assert undocumented_values("# -- doc\na: 1\nb: 2\ngroup:\n  # -- doc\n  c: 3\n  d: 4\n") == [
        "line 3: b: 2",
        "line 7: d: 4",
    ]
    assert undocumented_values("# -- a literal map\nresources:\n  requests:\n    cpu: 1\n") == []


# (--set arguments, text the error must contain)
BAD_VALUES = [
    (["nlu.replicaCount=two"], "replicaCount: Invalid type. Expected: integer, given: string"),
    (["triton.gpu.count=0"], "gpu.count: Must be greater than or equal to 1"),
    (["nlu.logLevel=LOUD"], "logLevel must be one of the following"),
    (["redis.auth.password=p@ss:word"], "auth.password: Does not match pattern"),
    (["ingress.host=https://riva.example.com"], "ingress.host: Does not match pattern"),
    (["nlu.podSecurityContext.runAsUser=0"], "runAsUser: Must be greater than or equal to 1"),
    (["nlu.resourcez.cpu=1"], "Additional property resourcez is not allowed"),
    (["nlu.resources.requests.cpu=lots"], "resources.requests.cpu"),
    (["triton.modelRepository.accessModes={ReadWriteSometimes}"], "modelRepository.accessModes.0"),
    (["triton.modelBuilder.builds[0].module=os.system"], "builds.0.module: Does not match pattern"),
    (["redis.config.appendfsync=sometimes"], "config.appendfsync must be one of the following"),
    (["global.serviceMonitor.interval=often"], "global.serviceMonitor.interval: Does not match pattern"),
    (["triton.autoscaling.minReplicas=5", "triton.autoscaling.maxReplicas=2"],
     "triton: autoscaling.minReplicas (5) must not be greater than autoscaling.maxReplicas (2)"),
    (["dialog.enabled=true", "dialog.autoscaling.minReplicas=9", "dialog.autoscaling.maxReplicas=3"],
     "dialog: autoscaling.minReplicas (9) must not be greater than autoscaling.maxReplicas (3)"),
    (["dialog.calls[0].env=DIALOG_ASR_URL", "dialog.calls[0].service=asr", "dialog.calls[0].port=50051"],
     "calls.0.env: Does not match pattern"),
    (["dialog.calls[0].env=RIVULET_X", "dialog.calls[0].service=speech", "dialog.calls[0].port=1"],
     "calls.0.service must be one of the following"),
    (["triton.modelBuilder.models[0]=../etc"], "modelBuilder.models.0: Does not match pattern"),
    (["triton.modelBuilder.builds[0].skipIfPresent=asr/../../x"],
     "builds.0.skipIfPresent: Does not match pattern"),
    (["triton.modelBuilder.builds[0].args[0]=it's"], "builds.0.args.0: Does not match pattern"),
    (["global.tls.enabled=true"], "global.tls.secretName: String length must be greater than or equal to 1"),
    (["global.auth.enabled=true"], "global.auth.existingSecret: String length must be greater than or equal"),
    (["global.tls.secretName=My_Certs"], "global.tls.secretName: Does not match pattern"),
    (["global.auth.defaultMaxStreams=-1"], "global.auth.defaultMaxStreams: Must be greater than or equal"),
    (["gateway.tls.enabled=true"], "tls.secretName: String length must be greater than or equal"),
    (["gateway.settings.allowedOrigins=evil.example"], "settings.allowedOrigins: Does not match pattern"),
    (["gateway.calls[0].env=RIVULET_X", "gateway.calls[0].service=web", "gateway.calls[0].port=1"],
     "calls.0.service must be one of the following"),
]  # fmt: skip


@pytest.mark.parametrize(("sets", "message"), BAD_VALUES, ids=[s[0][0].split("=")[0] for s in BAD_VALUES])
def test_wrong_values_are_rejected_with_a_clear_message(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    proc = helm("template", "rivulet", str(CHART), *args, check=False)
    assert proc.returncode != 0, f"helm accepted {sets}"
    assert message in proc.stderr, f"expected {message!r} in:\n{proc.stderr}"


def test_good_overrides_are_accepted() -> None:
    helm("template", "rivulet", str(CHART), "--set", "nlu.replicaCount=3", "--set", "triton.gpu.count=2",
         "--set", "redis.auth.password=Abc-123_x.y~z", "--set", "ingress.host=riva.example.com")  # fmt: skip
