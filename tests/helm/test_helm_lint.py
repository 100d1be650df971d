"""`helm lint --strict` passes without a single finding for the default and the GPU-cluster values."""

from __future__ import annotations

import re

import pytest

from tests.helm.charts import CHART, LINT_SUMMARY, SHOWN_CASES, VALUES_CASES, helm, values_args


@pytest.mark.parametrize("case", list(VALUES_CASES))
def test_helm_lint_strict_has_no_findings(case: str) -> None:
    proc = helm("lint", "--strict", str(CHART), *values_args(VALUES_CASES[case]), check=False)
    out = proc.stdout + proc.stderr
    findings = [line for line in out.splitlines() if re.match(r"^\[(INFO|WARNING|ERROR)\]", line)]
    LINT_SUMMARY[case] = findings if proc.returncode == 0 else [*findings, f"exit {proc.returncode}"]
    assert proc.returncode == 0, out
    assert "1 chart(s) linted, 0 chart(s) failed" in out, out
    assert not findings, "helm lint findings:\n" + "\n".join(findings)


def test_shown_cases_are_the_two_values_files() -> None:
    assert VALUES_CASES["default"] == ()
    assert VALUES_CASES["gpu-cluster"] == ("helm/rivulet/values-gpu-cluster.yaml",)
    assert set(SHOWN_CASES) <= set(VALUES_CASES)
