"""gRPC health of every pod of every Rivulet service, asked inside the pod with the service image's
own health-check CLI (`python -m rivulet.core.healthcheck`, exit 0 iff SERVING)."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import V1Deployment, V1Pod

from rivulet.clustercheck.report import Check, Status

SERVICE_ANNOTATION = "rivulet.ai/grpc-service"
PORT_ANNOTATION = "rivulet.ai/grpc-port"


@dataclass(frozen=True)
class GrpcTarget:
    """A Deployment that serves a gRPC service, found from the annotations the charts put on it."""

    deployment: str
    grpc_service: str
    port: int
    selector: dict[str, str]
    container: str


def grpc_targets(deployments: list[V1Deployment]) -> list[GrpcTarget]:
    targets = []
    for d in deployments:
        annotations = d.metadata.annotations or {}
        if SERVICE_ANNOTATION not in annotations:
            continue
        targets.append(
            GrpcTarget(
                deployment=d.metadata.name,
                grpc_service=annotations[SERVICE_ANNOTATION],
                port=int(annotations.get(PORT_ANNOTATION, "50051")),
                selector=dict(d.spec.selector.match_labels or {}),
                container=d.spec.template.spec.containers[0].name,
            )
        )
    return sorted(targets, key=lambda t: t.deployment)


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def healthcheck_command(target: GrpcTarget) -> list[str]:
    return [
        "python", "-m", "rivulet.core.healthcheck",
        "--address", f"localhost:{target.port}", "--service", target.grpc_service,
    ]  # fmt: skip


def is_ready(pod: V1Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def health_check(target: GrpcTarget, pod: str, exit_code: int | None, stdout: str, stderr: str) -> Check:
    subject = f"{target.grpc_service} pod/{pod}"
    if exit_code == 0:
        return Check("grpc-health", subject, Status.OK, "SERVING")
    said = (stdout.strip() or stderr.strip()).splitlines()
    detail = said[-1] if said else "no output"
    return Check("grpc-health", subject, Status.FAIL, f"not SERVING (exit {exit_code}): {detail}")


def no_pods_check(target: GrpcTarget) -> Check:
    return Check("grpc-health", f"{target.grpc_service} {target.deployment}", Status.FAIL, "no running pods")
