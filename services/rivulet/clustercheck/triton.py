"""Triton model readiness, asked inside each Triton pod (its HTTP port is closed to the outside by
the chart's NetworkPolicy) with the pod's own Python and Triton's HTTP API."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rivulet.clustercheck.report import Check, Status

# Runs in the Triton container (python3 is there for the python backend). Prints one JSON line:
# {"ready": <GET /v2/health/ready == 200>, "models": <POST /v2/repository/index>}.
PROBE_SCRIPT = """
import json, urllib.request, urllib.error
base = "http://127.0.0.1:%d"
def call(path, data=None):
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
ready, _ = call("/v2/health/ready")
status, body = call("/v2/repository/index", b"{}")
print(json.dumps({"ready": ready == 200, "models": json.loads(body) if status == 200 else []}))
"""


MODELS_ANNOTATION = "rivulet.ai/models"


def expected_models(annotations: dict[str, str] | None) -> frozenset[str]:
    """The models the chart put into the repository, from the Triton Deployment's annotation."""
    value = (annotations or {}).get(MODELS_ANNOTATION, "")
    return frozenset(m.strip() for m in value.split(",") if m.strip())


def probe_command(http_port: int = 8000) -> list[str]:
    return ["python3", "-c", PROBE_SCRIPT % http_port]


@dataclass(frozen=True)
class ModelState:
    name: str
    version: str
    state: str
    reason: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "READY"


def parse_probe_output(stdout: str) -> tuple[bool, list[ModelState]]:
    """The server's readiness and the state of every model version from PROBE_SCRIPT's output."""
    line = next((ln for ln in reversed(stdout.strip().splitlines()) if ln.startswith("{")), None)
    if line is None:
        raise ValueError(f"no JSON in the Triton probe output: {stdout.strip()[:200]!r}")
    data = json.loads(line)
    models = [
        ModelState(
            str(m.get("name", "?")),
            str(m.get("version", "")),
            str(m.get("state", "UNKNOWN")),
            str(m.get("reason", "")),
        )
        for m in data.get("models", [])
    ]
    return bool(data.get("ready")), models


def triton_checks(
    pod: str, exit_code: int | None, stdout: str, stderr: str, expected_models: frozenset[str] = frozenset()
) -> list[Check]:
    """Report lines for one Triton pod: server readiness, and every model that is not READY."""
    subject = f"pod/{pod}"
    if exit_code != 0:
        detail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        return [Check("triton", subject, Status.FAIL, f"readiness probe exited {exit_code}: {detail[0]}")]
    try:
        ready, models = parse_probe_output(stdout)
    except ValueError as exc:
        return [Check("triton", subject, Status.FAIL, str(exc))]
    checks = []
    names = {m.name for m in models}
    missing = sorted(expected_models - names)
    if not models:
        checks.append(Check("triton", subject, Status.FAIL, "the model repository is empty"))
    not_ready = [m for m in models if not m.ready]
    for m in not_ready:
        reason = f" ({m.reason})" if m.reason else ""
        checks.append(Check("triton", f"{subject} model {m.name}", Status.FAIL, f"{m.state}{reason}"))
    for name in missing:
        checks.append(Check("triton", f"{subject} model {name}", Status.FAIL, "not in the repository"))
    if not ready and not not_ready and models:
        checks.append(Check("triton", subject, Status.FAIL, "server not ready (/v2/health/ready)"))
    if ready and models and not not_ready and not missing:
        listed = ", ".join(sorted(f"{m.name}:{m.version}" if m.version else m.name for m in models))
        checks.append(
            Check("triton", subject, Status.OK, f"server ready; {len(models)} models READY ({listed})")
        )
    return checks
