"""Check results and the report printed at the end of a cluster check."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "OK"
    FAIL = "FAIL"
    WAIT = "WAIT"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, its status and what was seen."""

    section: str
    subject: str
    status: Status
    detail: str = ""


@dataclass
class Report:
    namespace: str
    release: str
    checks: list[Check] = field(default_factory=list)

    def add(self, *checks: Check) -> None:
        self.checks.extend(checks)

    @property
    def failed(self) -> list[Check]:
        """Checks that did not pass: FAIL, and WAIT (still not done when the time ran out)."""
        return [c for c in self.checks if c.status in (Status.FAIL, Status.WAIT)]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.failed


SECTIONS = ("rollout", "triton", "grpc-health", "smoke")


def render(report: Report) -> str:
    """The human-readable report: one block per section, then a one-line verdict."""
    lines = [f"Rivulet cluster check: release {report.release!r} in namespace {report.namespace!r}"]
    width = max((len(c.subject) for c in report.checks), default=10)
    sections = list(SECTIONS) + sorted({c.section for c in report.checks} - set(SECTIONS))
    for section in sections:
        checks = [c for c in report.checks if c.section == section]
        if not checks:
            continue
        lines.append("")
        lines.append(section.upper())
        for c in checks:
            detail = f"  {c.detail}" if c.detail else ""
            lines.append(f"  [{c.status.value:^4}] {c.subject:<{width}}{detail}")
    lines.append("")
    counts = {s: sum(1 for c in report.checks if c.status is s) for s in Status}
    summary = ", ".join(f"{n} {s.value.lower()}" for s, n in counts.items() if n)
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"RESULT: {verdict} ({summary or 'nothing checked'})")
    if not report.passed and report.failed:
        lines.append("first problem: " + _describe(report.failed[0]))
    return "\n".join(lines)


def _describe(check: Check) -> str:
    return f"{check.section} {check.subject}: {check.status.value} {check.detail}".rstrip()


def exit_code(report: Report) -> int:
    return 0 if report.passed else 1
