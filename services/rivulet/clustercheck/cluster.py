"""The Kubernetes API calls of the cluster check (thin: all judgement lives in the pure modules)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.stream import stream

from rivulet.clustercheck import health, rollout, smoke, triton
from rivulet.clustercheck.report import Check, Report, Status

log = logging.getLogger(__name__)


@dataclass
class Options:
    namespace: str
    release: str
    timeout_s: float = 1800.0
    interval_s: float = 5.0
    exec_timeout_s: float = 60.0
    expected_models: frozenset[str] = frozenset()
    endpoint: smoke.Endpoint | None = None
    discover_endpoint: bool = True
    ca_cert: str | None = None
    skip_smoke: bool = False
    # Explicit smoke turns; None: one per gRPC API the release deploys (smoke.turns_for).
    turns: list[smoke.SmokeTurn] | None = None
    turn_options: smoke.TurnOptions = field(default_factory=smoke.TurnOptions)


@dataclass
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str


class Cluster:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)

    def snapshot(self, namespace: str, release: str) -> rollout.RolloutSnapshot:
        selector = f"app.kubernetes.io/instance={release}"
        statuses = [
            rollout.deployment_status(d)
            for d in self.apps.list_namespaced_deployment(namespace, label_selector=selector).items
        ]
        statuses += [
            rollout.statefulset_status(s)
            for s in self.apps.list_namespaced_stateful_set(namespace, label_selector=selector).items
        ]
        statuses += [
            rollout.job_status(j)
            for j in self.batch.list_namespaced_job(namespace, label_selector=selector).items
        ]
        problems = [
            p
            for pod in self.core.list_namespaced_pod(namespace, label_selector=selector).items
            for p in rollout.pod_problems(pod)
        ]
        return rollout.RolloutSnapshot(sorted(statuses, key=lambda s: (s.kind, s.name)), problems)

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], timeout_s: float
    ) -> ExecResult:
        resp = stream(
            self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=command,
            stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False,
        )  # fmt: skip
        try:
            resp.run_forever(timeout=timeout_s)
            out, err = resp.read_stdout(timeout=0) or "", resp.read_stderr(timeout=0) or ""
            code = resp.returncode if not resp.is_open() else None
        finally:
            resp.close()
        return ExecResult(code, out, err)

    def ready_pods(self, namespace: str, selector: dict[str, str]) -> list[str]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=health.label_selector(selector)).items
        return sorted(
            p.metadata.name for p in pods if health.is_ready(p) and not p.metadata.deletion_timestamp
        )

    def expected_models(self, opts: Options) -> frozenset[str]:
        """--model names, else the models the chart says the repository holds (rivulet.ai/models)."""
        if opts.expected_models:
            return opts.expected_models
        deployments = self.apps.list_namespaced_deployment(
            opts.namespace, label_selector=health.label_selector(self._triton_selector(opts))
        ).items
        return frozenset().union(*(triton.expected_models(d.metadata.annotations) for d in deployments))

    @staticmethod
    def _triton_selector(opts: Options) -> dict[str, str]:
        return {"app.kubernetes.io/instance": opts.release, "app.kubernetes.io/name": "triton"}

    def triton_checks(self, opts: Options) -> list[Check]:
        pods = self.ready_pods(opts.namespace, self._triton_selector(opts))
        if not pods:
            return [Check("triton", "pods", Status.FAIL, "no ready Triton pod")]
        expected = self.expected_models(opts)
        checks = []
        for pod in pods:
            r = self.exec(opts.namespace, pod, "triton", triton.probe_command(), opts.exec_timeout_s)
            checks += triton.triton_checks(pod, r.exit_code, r.stdout, r.stderr, expected)
        return checks

    def grpc_targets(self, opts: Options) -> list[health.GrpcTarget]:
        selector = f"app.kubernetes.io/instance={opts.release}"
        return health.grpc_targets(
            self.apps.list_namespaced_deployment(opts.namespace, label_selector=selector).items
        )

    def smoke_turns(self, opts: Options) -> list[smoke.SmokeTurn]:
        if opts.turns is not None:
            return opts.turns
        return smoke.turns_for((t.grpc_service for t in self.grpc_targets(opts)), opts.turn_options)

    def health_checks(self, opts: Options) -> list[Check]:
        targets = self.grpc_targets(opts)
        if not targets:
            return [
                Check("grpc-health", "services", Status.FAIL, "no gRPC service Deployments in this release")
            ]
        checks = []
        for target in targets:
            pods = self.ready_pods(opts.namespace, target.selector)
            if not pods:
                checks.append(health.no_pods_check(target))
            for pod in pods:
                r = self.exec(
                    opts.namespace,
                    pod,
                    target.container,
                    health.healthcheck_command(target),
                    opts.exec_timeout_s,
                )
                checks.append(health.health_check(target, pod, r.exit_code, r.stdout, r.stderr))
        return checks

    def endpoint(self, opts: Options) -> smoke.Endpoint | None:
        if opts.endpoint is not None or not opts.discover_endpoint:
            return opts.endpoint
        try:
            ingress = self.networking.read_namespaced_ingress(f"{opts.release}-grpc", opts.namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return smoke.ingress_endpoint(ingress, opts.ca_cert)


def run(
    cluster: Cluster,
    opts: Options,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """The whole check: rollout, then Triton, gRPC health and the smoke turns (only once rolled out)."""
    report = Report(opts.namespace, opts.release)

    def show(snap: rollout.RolloutSnapshot) -> None:
        if progress is not None:
            waiting = [f"{w.kind}/{w.name}: {w.detail}" for w in snap.workloads if not w.done]
            progress("waiting for " + "; ".join(waiting) if waiting else "rolled out")

    snap, checks = rollout.wait_for_rollout(
        lambda: cluster.snapshot(opts.namespace, opts.release), opts.timeout_s, sleep, clock, opts.interval_s,
        on_progress=show,
    )  # fmt: skip
    report.add(*checks)
    if not snap.done:
        report.add(Check("triton", "models", Status.SKIP, "not checked: the rollout did not finish"))
        return report
    report.add(*cluster.triton_checks(opts))
    report.add(*cluster.health_checks(opts))
    report.add(*smoke.run_turns(cluster.smoke_turns(opts), cluster.endpoint(opts), skip=opts.skip_smoke))
    return report
