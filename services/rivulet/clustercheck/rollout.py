"""Rollout status of Deployments, StatefulSets and Jobs, and pod problems that will not heal by waiting.

The rules follow `kubectl rollout status`: a rollout is done when the controller has observed the
latest spec, every replica runs the new template and is available, and no old replica is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubernetes.client import V1Deployment, V1Job, V1Pod, V1StatefulSet

from rivulet.clustercheck.report import Check, Status

# Container waiting reasons that mean "broken", not "starting".
FATAL_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class WorkloadStatus:
    kind: str
    name: str
    status: Status
    detail: str

    @property
    def done(self) -> bool:
        return self.status is Status.OK

    def as_check(self) -> Check:
        return Check("rollout", f"{self.kind}/{self.name}", self.status, self.detail)


def _condition(conditions: Iterable[object] | None, type_: str) -> object | None:
    return next((c for c in conditions or [] if getattr(c, "type", None) == type_), None)


def deployment_status(d: V1Deployment) -> WorkloadStatus:
    name, st = d.metadata.name, d.status
    want = d.spec.replicas if d.spec.replicas is not None else 1

    def result(status: Status, detail: str) -> WorkloadStatus:
        return WorkloadStatus("Deployment", name, status, detail)

    if st is None or (d.metadata.generation or 0) > (st.observed_generation or 0):
        return result(Status.WAIT, "waiting for the controller to observe the new spec")
    progressing = _condition(st.conditions, "Progressing")
    if progressing is not None and getattr(progressing, "reason", "") == "ProgressDeadlineExceeded":
        return result(
            Status.FAIL, f"progress deadline exceeded: {getattr(progressing, 'message', '')}".strip()
        )
    updated, total, available = st.updated_replicas or 0, st.replicas or 0, st.available_replicas or 0
    if updated < want:
        return result(Status.WAIT, f"{updated} of {want} replicas updated")
    if total > updated:
        return result(Status.WAIT, f"{total - updated} old replicas pending termination")
    if available < updated:
        return result(Status.WAIT, f"{available} of {updated} updated replicas available")
    return result(Status.OK, f"{available}/{want} replicas available")


def statefulset_status(s: V1StatefulSet) -> WorkloadStatus:
    name, st = s.metadata.name, s.status
    want = s.spec.replicas if s.spec.replicas is not None else 1

    def result(status: Status, detail: str) -> WorkloadStatus:
        return WorkloadStatus("StatefulSet", name, status, detail)

    if st is None or (s.metadata.generation or 0) > (st.observed_generation or 0):
        return result(Status.WAIT, "waiting for the controller to observe the new spec")
    strategy = s.spec.update_strategy.type if s.spec.update_strategy else "RollingUpdate"
    if strategy == "RollingUpdate" and st.update_revision and st.update_revision != st.current_revision:
        return result(Status.WAIT, f"{st.updated_replicas or 0} of {want} pods on the new revision")
    ready = st.ready_replicas or 0
    if ready < want:
        return result(Status.WAIT, f"{ready} of {want} pods ready")
    return result(Status.OK, f"{ready}/{want} pods ready")


def job_status(j: V1Job) -> WorkloadStatus:
    name, st = j.metadata.name, j.status

    def result(status: Status, detail: str) -> WorkloadStatus:
        return WorkloadStatus("Job", name, status, detail)

    completions = j.spec.completions if j.spec.completions is not None else 1
    conditions = st.conditions if st else None
    failed = _condition(conditions, "Failed")
    if failed is not None and getattr(failed, "status", "") == "True":
        return result(
            Status.FAIL, f"failed: {getattr(failed, 'reason', '')} {getattr(failed, 'message', '')}".strip()
        )
    succeeded = (st.succeeded or 0) if st else 0
    if succeeded >= completions:
        return result(Status.OK, "completed")
    active = (st.active or 0) if st else 0
    return result(Status.WAIT, f"running ({active} active, {succeeded}/{completions} succeeded)")


def pod_problems(pod: V1Pod) -> list[str]:
    """Reasons a pod will not become ready by itself (crash loops, image pulls, bad config)."""
    problems = []
    st = pod.status
    statuses = list((st.init_container_statuses or []) if st else []) + list(
        (st.container_statuses or []) if st else []
    )
    for cs in statuses:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason in FATAL_WAITING_REASONS:
            message = f": {waiting.message}" if waiting.message else ""
            problems.append(f"pod {pod.metadata.name} container {cs.name}: {waiting.reason}{message}")
    if st is not None and st.phase == "Pending":
        scheduled = _condition(st.conditions, "PodScheduled")
        if scheduled is not None and getattr(scheduled, "status", "") == "False":
            reason = getattr(scheduled, "message", None) or getattr(scheduled, "reason", "")
            problems.append(f"pod {pod.metadata.name} unschedulable: {reason}")
    return problems


@dataclass
class RolloutSnapshot:
    """What one poll saw: every workload's status and the problems of their pods."""

    workloads: list[WorkloadStatus]
    pod_problems: list[str]

    @property
    def done(self) -> bool:
        return bool(self.workloads) and all(w.done for w in self.workloads)

    @property
    def failed(self) -> bool:
        return any(w.status is Status.FAIL for w in self.workloads)


def wait_for_rollout(
    poll: Callable[[], RolloutSnapshot],
    timeout_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    interval_s: float = 5.0,
    fatal_after_s: float = 120.0,
    on_progress: Callable[[RolloutSnapshot], None] | None = None,
) -> tuple[RolloutSnapshot, list[Check]]:
    """Poll until every workload is done, one has failed, or `timeout_s` passes.

    Pod problems (crash loops, image pulls, unschedulable pods) fail the wait once they have lasted
    `fatal_after_s`: a pod may crash once while Triton starts, but a loop that persists will not heal.
    Returns the last snapshot and the report lines: one per workload, plus one per lasting pod problem.
    """
    start = clock()
    first_seen: dict[str, float] = {}
    while True:
        snap = poll()
        now = clock()
        for problem in snap.pod_problems:
            first_seen.setdefault(problem, now)
        lasting = [p for p in snap.pod_problems if now - first_seen[p] >= fatal_after_s]
        if on_progress is not None:
            on_progress(snap)
        if snap.done or snap.failed or lasting or now - start >= timeout_s:
            checks = [w.as_check() for w in snap.workloads]
            if not snap.workloads:
                checks.append(
                    Check("rollout", "workloads", Status.FAIL, "no workloads of this release found")
                )
            checks += [Check("rollout", "pods", Status.FAIL, p) for p in lasting]
            return snap, checks
        sleep(interval_s)
