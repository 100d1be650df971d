"""Smoke conversation turns through the gRPC ingress address, with the official Riva client.

A turn is a name, a call and a judgement of the answer. Today: NLU AnalyzeIntent. A Dialog text
turn (rivulet.dialog.v1) plugs in as one more `SmokeTurn` once that API lands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rivulet.clustercheck.report import Check, Status


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach the release: the ingress address and its TLS settings."""

    address: str
    tls: bool = True
    ca_cert: str | None = None
    server_name: str | None = None

    def riva_auth(self) -> Any:
        import riva.client  # imported here: only the smoke turn needs the Riva client

        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return riva.client.Auth(
            ssl_root_cert=self.ca_cert, use_ssl=self.tls, uri=self.address, options=options
        )


class SmokeTurn(Protocol):
    name: str

    def run(self, endpoint: Endpoint) -> Check: ...


def judge_intent(text: str, response: Any, elapsed_s: float, expect_intent: str | None = None) -> Check:
    """Judge an AnalyzeIntentResponse: it must name an intent (the expected one, when given)."""
    subject = f'NLU AnalyzeIntent "{text}"'
    intent = getattr(getattr(response, "intent", None), "class_name", "") or ""
    score = float(getattr(getattr(response, "intent", None), "score", 0.0) or 0.0)
    slots = [f"{s.label[0].class_name if s.label else '?'}={s.token}" for s in getattr(response, "slots", [])]
    slot_text = " " + " ".join(slots) if slots else ""
    seen = f"-> {intent or '(no intent)'} ({score:.2f}){slot_text} in {elapsed_s * 1000:.0f} ms"
    if not intent:
        return Check("smoke", subject, Status.FAIL, seen)
    if expect_intent and intent != expect_intent:
        return Check("smoke", subject, Status.FAIL, f"{seen}; expected {expect_intent}")
    return Check("smoke", subject, Status.OK, seen)


def rpc_failure(subject: str, exc: Exception) -> Check:
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        return Check("smoke", subject, Status.FAIL, f"{code().name}: {details()}")
    return Check("smoke", subject, Status.FAIL, f"{type(exc).__name__}: {exc}")


@dataclass
class NluIntentTurn:
    """NLU AnalyzeIntent through the ingress: the Riva route, TLS, Triton and the model all answer."""

    text: str = "what time is it"
    expect_intent: str | None = None
    name: str = "nlu-intent"
    clock: Callable[[], float] = time.perf_counter

    def run(self, endpoint: Endpoint) -> Check:
        import riva.client

        subject = f'NLU AnalyzeIntent "{self.text}"'
        try:
            service = riva.client.NLPService(endpoint.riva_auth())
            start = self.clock()
            response = service.analyze_intent(self.text)
            return judge_intent(self.text, response, self.clock() - start, self.expect_intent)
        except Exception as exc:  # a failed turn is a report line, not a crash
            return rpc_failure(subject, exc)


def ingress_endpoint(ingress: Any, ca_cert: str | None = None) -> Endpoint | None:
    """The address clients use, from a V1Ingress: its load balancer's hostname or IP on 443 (TLS) or 80.

    When the load balancer is an IP and the rule names a host, TLS verifies that host name.
    """
    lb = ingress.status.load_balancer.ingress if ingress.status and ingress.status.load_balancer else None
    if not lb:
        return None
    target = lb[0].hostname or lb[0].ip
    if not target:
        return None
    tls = bool(ingress.spec.tls)
    host = next((r.host for r in ingress.spec.rules or [] if r.host), None)
    port = 443 if tls else 80
    if host and tls:
        # Dial the load balancer, verify and route by the host name (SNI and :authority).
        return Endpoint(f"{target}:{port}", tls=True, ca_cert=ca_cert, server_name=host)
    return Endpoint(f"{target}:{port}", tls=tls, ca_cert=ca_cert)


def run_turns(turns: list[SmokeTurn], endpoint: Endpoint | None, skip: bool = False) -> list[Check]:
    """Run every turn against the endpoint; without one the turns fail, unless skipping was asked for."""
    if skip:
        return [Check("smoke", t.name, Status.SKIP, "skipped (--skip-smoke)") for t in turns]
    if endpoint is None:
        why = "no client address: pass --address, or wait for the ingress to get a load-balancer address"
        return [Check("smoke", t.name, Status.FAIL, why) for t in turns]
    return [t.run(endpoint) for t in turns]
