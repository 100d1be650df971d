"""rivulet.clustercheck: rollout evaluation, Triton and gRPC health judgements, smoke turns, report.

Everything here runs on constructed `kubernetes.client` model objects and real protobuf messages;
a real cluster run is documented in README ("Deploy on a GPU cluster").
"""

from __future__ import annotations

import socket

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerState,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1Ingress,
    V1IngressLoadBalancerIngress,
    V1IngressLoadBalancerStatus,
    V1IngressRule,
    V1IngressSpec,
    V1IngressStatus,
    V1IngressTLS,
    V1Job,
    V1JobCondition,
    V1JobSpec,
    V1JobStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetSpec,
    V1StatefulSetStatus,
    V1StatefulSetUpdateStrategy,
)
from riva.client.proto import riva_nlp_pb2

from rivulet.clustercheck import health, rollout, smoke, triton
from rivulet.clustercheck.__main__ import parse_args
from rivulet.clustercheck.report import Check, Report, Status, exit_code, render

TEMPLATE = V1PodTemplateSpec(spec=V1PodSpec(containers=[V1Container(name="nlu")]))


def deployment(
    replicas: int | None = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    total: int = 3,
    available: int = 3,
    conditions: list[V1DeploymentCondition] | None = None,
    annotations: dict[str, str] | None = None,
) -> V1Deployment:
    return V1Deployment(
        metadata=V1ObjectMeta(name="rivulet-nlu", generation=generation, annotations=annotations),
        spec=V1DeploymentSpec(
            replicas=replicas,
            selector=V1LabelSelector(
                match_labels={"app.kubernetes.io/name": "nlu", "app.kubernetes.io/instance": "r"}
            ),
            template=TEMPLATE,
        ),
        status=V1DeploymentStatus(
            observed_generation=observed,
            updated_replicas=updated,
            replicas=total,
            available_replicas=available,
            conditions=conditions,
        ),
    )


# ---- rollout -----------------------------------------------------------------------------------------


def test_deployment_rolled_out() -> None:
    s = rollout.deployment_status(deployment())
    assert (s.status, s.detail, s.done) == (Status.OK, "3/3 replicas available", True)


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"generation": 3, "observed": 2}, "waiting for the controller to observe the new spec"),
        ({"updated": 1, "total": 3, "available": 1}, "1 of 3 replicas updated"),
        ({"updated": 3, "total": 4, "available": 3}, "1 old replicas pending termination"),
        ({"updated": 3, "total": 3, "available": 2}, "2 of 3 updated replicas available"),
    ],
)
def test_deployment_still_rolling(kwargs: dict[str, int], detail: str) -> None:
    s = rollout.deployment_status(deployment(**kwargs))
    assert (s.status, s.detail) == (Status.WAIT, detail)


def test_deployment_progress_deadline_fails() -> None:
    cond = V1DeploymentCondition(
        type="Progressing",
        status="False",
        reason="ProgressDeadlineExceeded",
        message='ReplicaSet "x" has timed out',
    )
    s = rollout.deployment_status(deployment(updated=1, available=0, conditions=[cond]))
    assert s.status is Status.FAIL and "progress deadline exceeded" in s.detail and "timed out" in s.detail


def test_deployment_without_replicas_means_one() -> None:
    assert rollout.deployment_status(deployment(replicas=None, updated=1, total=1, available=1)).done
    assert not rollout.deployment_status(deployment(replicas=None, updated=0, total=0, available=0)).done


def statefulset(ready: int = 1, current: str = "r1", update: str = "r1", updated: int = 1) -> V1StatefulSet:
    return V1StatefulSet(
        metadata=V1ObjectMeta(name="rivulet-redis", generation=1),
        spec=V1StatefulSetSpec(
            replicas=1,
            selector=V1LabelSelector(match_labels={"a": "b"}),
            service_name="rivulet-redis-headless",
            template=TEMPLATE,
            update_strategy=V1StatefulSetUpdateStrategy(type="RollingUpdate"),
        ),
        status=V1StatefulSetStatus(
            observed_generation=1, replicas=1, ready_replicas=ready, current_revision=current,
            update_revision=update, updated_replicas=updated,
        ),
    )  # fmt: skip


def test_statefulset_status() -> None:
    assert rollout.statefulset_status(statefulset()).status is Status.OK
    s = rollout.statefulset_status(statefulset(update="r2", updated=0))
    assert (s.status, s.detail) == (Status.WAIT, "0 of 1 pods on the new revision")
    s = rollout.statefulset_status(statefulset(ready=0))
    assert (s.status, s.detail) == (Status.WAIT, "0 of 1 pods ready")


def job(succeeded: int = 0, active: int = 1, failed_reason: str | None = None) -> V1Job:
    conditions = (
        [V1JobCondition(type="Failed", status="True", reason=failed_reason, message="backoff limit reached")]
        if failed_reason
        else None
    )  # fmt: skip
    return V1Job(
        metadata=V1ObjectMeta(name="rivulet-triton-model-builder-abc"),
        spec=V1JobSpec(template=TEMPLATE),
        status=V1JobStatus(succeeded=succeeded, active=active, conditions=conditions),
    )


def test_job_status() -> None:
    assert rollout.job_status(job(succeeded=1, active=0)).status is Status.OK
    running = rollout.job_status(job())
    assert (running.status, running.detail) == (Status.WAIT, "running (1 active, 0/1 succeeded)")
    failed = rollout.job_status(job(active=0, failed_reason="BackoffLimitExceeded"))
    assert failed.status is Status.FAIL and "BackoffLimitExceeded" in failed.detail


def pod(
    name: str = "rivulet-nlu-1",
    waiting: str | None = None,
    init_waiting: str | None = None,
    phase: str = "Running",
    conditions: list[V1PodCondition] | None = None,
) -> V1Pod:
    def status(cname: str, reason: str | None) -> V1ContainerStatus:
        state = (
            V1ContainerState(waiting=V1ContainerStateWaiting(reason=reason, message="back-off 5m0s"))
            if reason
            else V1ContainerState()
        )
        return V1ContainerStatus(
            name=cname, image="i", image_id="", ready=False, restart_count=3, state=state
        )

    return V1Pod(
        metadata=V1ObjectMeta(name=name),
        status=V1PodStatus(
            phase=phase,
            conditions=conditions,
            container_statuses=[status("nlu", waiting)],
            init_container_statuses=[status("wait-for-models", init_waiting)] if init_waiting else None,
        ),
    )


def test_pod_problems() -> None:
    assert rollout.pod_problems(pod()) == []
    assert rollout.pod_problems(pod(waiting="ContainerCreating")) == [], "starting is not a problem"
    assert rollout.pod_problems(pod(waiting="CrashLoopBackOff")) == [
        "pod rivulet-nlu-1 container nlu: CrashLoopBackOff: back-off 5m0s"
    ]
    assert "ImagePullBackOff" in rollout.pod_problems(pod(init_waiting="ImagePullBackOff"))[0]
    unschedulable = V1PodCondition(
        type="PodScheduled", status="False", reason="Unschedulable", message="0/3 nodes have nvidia.com/gpu"
    )
    problems = rollout.pod_problems(pod(phase="Pending", conditions=[unschedulable]))
    assert problems == ["pod rivulet-nlu-1 unschedulable: 0/3 nodes have nvidia.com/gpu"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def snapshots(*snaps: rollout.RolloutSnapshot):
    it = iter(snaps)
    last = [snaps[-1]]

    def poll() -> rollout.RolloutSnapshot:
        last[0] = next(it, last[0])
        return last[0]

    return poll


def snap(*deployments: V1Deployment, problems: list[str] | None = None) -> rollout.RolloutSnapshot:
    return rollout.RolloutSnapshot([rollout.deployment_status(d) for d in deployments], problems or [])


def test_wait_until_rolled_out() -> None:
    clock = FakeClock()
    poll = snapshots(
        snap(deployment(updated=1, available=0)), snap(deployment(available=2)), snap(deployment())
    )
    last, checks = rollout.wait_for_rollout(poll, 600, clock.sleep, clock, interval_s=5)
    assert last.done and clock.sleeps == [5, 5]
    assert checks == [Check("rollout", "Deployment/rivulet-nlu", Status.OK, "3/3 replicas available")]


def test_wait_times_out_and_reports_what_was_waiting() -> None:
    clock = FakeClock()
    last, checks = rollout.wait_for_rollout(
        snapshots(snap(deployment(available=1))), 60, clock.sleep, clock, 5
    )
    assert not last.done and clock.now == 60
    report = Report("ns", "r", checks)
    assert not report.passed and report.failed[0].detail == "1 of 3 updated replicas available"


def test_lasting_crash_loop_fails_the_wait_but_a_short_one_does_not() -> None:
    crash = ["pod rivulet-nlu-1 container nlu: CrashLoopBackOff"]
    clock = FakeClock()
    poll = snapshots(
        snap(deployment(available=2), problems=crash), snap(deployment(available=2)), snap(deployment())
    )
    last, _ = rollout.wait_for_rollout(poll, 600, clock.sleep, clock, 5, fatal_after_s=30)
    assert last.done, "a crash that went away is not fatal"

    clock = FakeClock()
    poll = snapshots(snap(deployment(available=2), problems=crash))
    last, checks = rollout.wait_for_rollout(poll, 600, clock.sleep, clock, 5, fatal_after_s=30)
    assert clock.now == 30, "fails after fatal_after_s, long before the timeout"
    assert Check("rollout", "pods", Status.FAIL, crash[0]) in checks


def test_failed_workload_stops_the_wait_at_once() -> None:
    clock = FakeClock()
    failed = rollout.RolloutSnapshot(
        [rollout.job_status(job(active=0, failed_reason="DeadlineExceeded"))], []
    )
    _, checks = rollout.wait_for_rollout(snapshots(failed), 600, clock.sleep, clock, 5)
    assert clock.sleeps == [] and checks[0].status is Status.FAIL


def test_no_workloads_is_a_failure() -> None:
    clock = FakeClock()
    _, checks = rollout.wait_for_rollout(
        snapshots(rollout.RolloutSnapshot([], [])), 10, clock.sleep, clock, 5
    )
    assert checks == [Check("rollout", "workloads", Status.FAIL, "no workloads of this release found")]


# ---- Triton ------------------------------------------------------------------------------------------

READY_OUTPUT = (
    '{"ready": true, "models": [{"name": "nlu_assistant", "version": "1", "state": "READY"},'
    ' {"name": "nlu_atis", "version": "1", "state": "READY"}]}\n'
)


def test_triton_all_models_ready() -> None:
    checks = triton.triton_checks("triton-0", 0, READY_OUTPUT, "", frozenset({"nlu_assistant"}))
    assert checks == [
        Check(
            "triton", "pod/triton-0", Status.OK, "server ready; 2 models READY (nlu_assistant:1, nlu_atis:1)"
        )
    ]


def test_triton_unavailable_and_missing_models() -> None:
    out = (
        '{"ready": false, "models": [{"name": "nlu_assistant", "version": "1", "state": "READY"},'
        ' {"name": "nlu_atis", "version": "1", "state": "UNAVAILABLE",'
        ' "reason": "ModuleNotFoundError: No module named \'tokenizers\'"}]}'
    )
    checks = triton.triton_checks("triton-0", 0, out, "", frozenset({"asr_streaming"}))
    assert Check(
        "triton", "pod/triton-0 model nlu_atis", Status.FAIL,
        "UNAVAILABLE (ModuleNotFoundError: No module named 'tokenizers')",
    ) in checks  # fmt: skip
    assert Check("triton", "pod/triton-0 model asr_streaming", Status.FAIL, "not in the repository") in checks
    assert not any(c.status is Status.OK for c in checks)


@pytest.mark.parametrize(
    ("code", "stdout", "stderr", "detail"),
    [
        (
            1,
            "",
            "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>",
            "readiness probe exited 1",
        ),
        (0, "Traceback ...", "", "no JSON in the Triton probe output"),
        (0, '{"ready": false, "models": []}', "", "the model repository is empty"),
        (None, "", "", "readiness probe exited None"),
    ],
)
def test_triton_probe_failures(code: int | None, stdout: str, stderr: str, detail: str) -> None:
    checks = triton.triton_checks("triton-0", code, stdout, stderr)
    assert checks[0].status is Status.FAIL and checks[0].detail.startswith(detail), checks


def test_expected_models_from_the_deployment_annotation() -> None:
    annotations = {"rivulet.ai/models": "intent_assistant, asr_streaming,,tts_embedded"}
    assert triton.expected_models(annotations) == {"intent_assistant", "asr_streaming", "tts_embedded"}
    assert triton.expected_models(None) == frozenset() and triton.expected_models({}) == frozenset()


def test_triton_probe_command_is_valid_python_for_the_port() -> None:
    cmd = triton.probe_command(8000)
    assert cmd[:2] == ["python3", "-c"] and "http://127.0.0.1:8000" in cmd[2]
    compile(cmd[2], "<probe>", "exec")


# ---- gRPC health ------------------------------------------------------------------------------------


def test_grpc_targets_come_from_deployment_annotations() -> None:
    nlu = "nvidia.riva.nlp.RivaLanguageUnderstanding"
    annotated = deployment(annotations={"rivulet.ai/grpc-service": nlu, "rivulet.ai/grpc-port": "50052"})
    plain = deployment()
    plain.metadata.name = "rivulet-triton"
    targets = health.grpc_targets([plain, annotated])
    assert targets == [
        health.GrpcTarget(
            "rivulet-nlu", "nvidia.riva.nlp.RivaLanguageUnderstanding", 50052,
            {"app.kubernetes.io/name": "nlu", "app.kubernetes.io/instance": "r"}, "nlu",
        )
    ]  # fmt: skip
    assert health.healthcheck_command(targets[0]) == [
        "python", "-m", "rivulet.core.healthcheck", "--address", "localhost:50052", "--service", nlu,
    ]  # fmt: skip
    assert (
        health.label_selector(targets[0].selector)
        == "app.kubernetes.io/instance=r,app.kubernetes.io/name=nlu"
    )


def test_health_check_judgement() -> None:
    target = health.GrpcTarget("rivulet-nlu", "nvidia.riva.nlp.RivaLanguageUnderstanding", 50051, {}, "nlu")
    ok = health.health_check(target, "nlu-1", 0, "SERVING\n", "")
    assert ok == Check(
        "grpc-health", "nvidia.riva.nlp.RivaLanguageUnderstanding pod/nlu-1", Status.OK, "SERVING"
    )
    bad = health.health_check(target, "nlu-1", 1, "", "status: NOT_SERVING\n")
    assert bad.status is Status.FAIL and bad.detail == "not SERVING (exit 1): status: NOT_SERVING"


def test_pod_readiness() -> None:
    ready = pod(conditions=[V1PodCondition(type="Ready", status="True")])
    assert health.is_ready(ready) and not health.is_ready(pod())


# ---- smoke turns -------------------------------------------------------------------------------------


def intent_response(intent: str, score: float) -> riva_nlp_pb2.AnalyzeIntentResponse:
    r = riva_nlp_pb2.AnalyzeIntentResponse()
    r.intent.class_name, r.intent.score = intent, score
    slot = r.slots.add()
    slot.token = "time"
    slot.label.add(class_name="time_unit", score=0.8)
    return r


def test_judge_intent() -> None:
    ok = smoke.judge_intent("what time is it", intent_response("time_ask", 0.93), 0.012)
    assert ok == Check(
        "smoke",
        'NLU AnalyzeIntent "what time is it"',
        Status.OK,
        "-> time_ask (0.93) time_unit=time in 12 ms",
    )
    wrong = smoke.judge_intent(
        "what time is it", intent_response("weather", 0.5), 0.01, expect_intent="time_ask"
    )
    assert wrong.status is Status.FAIL and wrong.detail.endswith("expected time_ask")
    empty = smoke.judge_intent("what time is it", riva_nlp_pb2.AnalyzeIntentResponse(), 0.01)
    assert empty.status is Status.FAIL and "(no intent)" in empty.detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nlu_turn_reports_an_unreachable_address_as_a_failed_check() -> None:
    """The real Riva client over real gRPC, to a port nobody listens on: a FAIL line, not a crash."""
    endpoint = smoke.Endpoint(f"127.0.0.1:{free_port()}", tls=False)
    check = smoke.NluIntentTurn().run(endpoint)
    assert check.status is Status.FAIL and check.detail.startswith("UNAVAILABLE"), check


def ingress(
    ip: str | None = None, hostname: str | None = None, host: str | None = None, tls: bool = True
) -> V1Ingress:
    lb = [V1IngressLoadBalancerIngress(ip=ip, hostname=hostname)] if (ip or hostname) else None
    tls_spec = [V1IngressTLS(hosts=[host] if host else None)] if tls else None
    return V1Ingress(
        metadata=V1ObjectMeta(name="r-grpc"),
        spec=V1IngressSpec(rules=[V1IngressRule(host=host)], tls=tls_spec),
        status=V1IngressStatus(load_balancer=V1IngressLoadBalancerStatus(ingress=lb)),
    )  # fmt: skip


def test_ingress_endpoint() -> None:
    assert smoke.ingress_endpoint(ingress()) is None, "no load-balancer address yet"
    by_ip = smoke.ingress_endpoint(ingress(ip="203.0.113.7", host="riva.example.com"), ca_cert="ca.pem")
    assert by_ip == smoke.Endpoint(
        "203.0.113.7:443", tls=True, ca_cert="ca.pem", server_name="riva.example.com"
    )
    assert smoke.ingress_endpoint(ingress(hostname="lb.example.net")) == smoke.Endpoint(
        "lb.example.net:443", tls=True
    )
    assert smoke.ingress_endpoint(ingress(ip="10.0.0.1", tls=False)) == smoke.Endpoint(
        "10.0.0.1:80", tls=False
    )


def test_run_turns_without_address_fails_unless_skipped() -> None:
    turns = [smoke.NluIntentTurn()]
    assert smoke.run_turns(turns, None)[0].status is Status.FAIL
    assert smoke.run_turns(turns, None, skip=True)[0].status is Status.SKIP


# ---- report and CLI -------------------------------------------------------------------------------------


def test_report_rendering_and_verdict() -> None:
    report = Report("rivulet", "rivulet")
    report.add(
        Check("rollout", "Deployment/rivulet-nlu", Status.OK, "3/3 replicas available"),
        Check("smoke", 'NLU AnalyzeIntent "what time is it"', Status.OK, "-> time_ask (0.93) in 12 ms"),
        Check("triton", "pod/triton-0", Status.OK, "server ready; 2 models READY"),
    )
    text = render(report)
    assert text.splitlines()[0] == "Rivulet cluster check: release 'rivulet' in namespace 'rivulet'"
    assert text.index("ROLLOUT") < text.index("TRITON") < text.index("SMOKE"), "sections in check order"
    assert "  [ OK ] Deployment/rivulet-nlu" in text
    assert text.splitlines()[-1] == "RESULT: PASS (3 ok)" and exit_code(report) == 0

    report.add(Check("grpc-health", "svc pod/x", Status.FAIL, "not SERVING (exit 1): NOT_SERVING"))
    report.add(Check("smoke", "dialog-turn", Status.SKIP, "skipped"))
    text = render(report)
    assert "RESULT: FAIL (3 ok, 1 fail, 1 skip)" in text
    assert (
        text.splitlines()[-1]
        == "first problem: grpc-health svc pod/x: FAIL not SERVING (exit 1): NOT_SERVING"
    )
    assert exit_code(report) == 1


def test_empty_report_does_not_pass() -> None:
    assert not Report("n", "r").passed and "nothing checked" in render(Report("n", "r"))


def test_cli_arguments() -> None:
    args = parse_args(
        ["-n", "rivulet", "-r", "prod", "--address", "riva.example.com:443", "--model", "nlu_atis"]
    )
    assert (args.namespace, args.release, args.address, args.model, args.tls) == (
        "rivulet", "prod", "riva.example.com:443", ["nlu_atis"], None,
    )  # fmt: skip
    assert parse_args(["-n", "a", "-r", "b", "--plaintext"]).tls is False
    with pytest.raises(SystemExit):
        parse_args(["--namespace", "a"])
