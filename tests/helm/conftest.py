"""Terminal summary of the Kubernetes validation in tests/helm (what `make helm-check` shows)."""

from __future__ import annotations

from typing import Any

from tests.helm.charts import LINT_SUMMARY, SUMMARY, VALUES_CASES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SUMMARY and not LINT_SUMMARY:
        return
    tr = terminalreporter
    tr.section("rivulet chart: helm lint --strict, and objects validated by kubernetes-validate (strict)")
    for case, files in VALUES_CASES.items():
        if case in LINT_SUMMARY:
            shown = " ".join(f"-f {f}" for f in files) or "(default values)"
            tr.write_line(f"{case:13s} helm lint --strict {shown}: {len(LINT_SUMMARY[case])} findings")
    for case in VALUES_CASES:
        reports = SUMMARY.get(case)
        if not reports:
            continue
        first = next(iter(reports.values()))
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(first.by_kind.items()))
        versions = " ".join(f"{v}:{len(r.findings)}" for v, r in sorted(reports.items()))
        findings = sum(len(r.findings) for r in reports.values())
        validated = sum(r.objects for r in reports.values())
        tr.write_line(
            f"{case:13s} {first.objects:3d} objects x {len(reports)} Kubernetes versions ="
            f" {validated} validations, {findings} findings (per version {versions})"
        )
        tr.write_line(f"{'':13s} {kinds}")
