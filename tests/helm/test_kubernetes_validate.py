"""Every rendered object is valid for Kubernetes 1.29-1.33 under kubernetes-validate's strict schemas.

Strict schemas reject unknown fields, so a misspelled key (e.g. `readOnlyRootFileSystem`) fails
here instead of being silently dropped by the API server.
"""

from __future__ import annotations

import copy

import kubernetes_validate.utils as kv
import pytest

from tests.helm.charts import KUBERNETES_VERSIONS, SUMMARY, VALUES_CASES, one, render, validate


def test_schemas_for_every_version_are_installed() -> None:
    have = {kv.major_minor(v) for v in kv.all_versions()}
    missing = [v for v in KUBERNETES_VERSIONS if v not in have]
    assert not missing, f"kubernetes-validate {kv.__version__} lacks schemas for {missing}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", list(VALUES_CASES))
def test_rendered_objects_are_valid(case: str, version: str) -> None:
    objs = render(case)
    report = validate(objs, version)
    SUMMARY.setdefault(case, {})[version] = report
    assert report.objects >= 15, f"{case}: only {report.objects} objects rendered"
    assert not report.findings, f"{len(report.findings)} findings:\n" + "\n".join(map(str, report.findings))


def test_strict_validation_catches_misspelled_and_mistyped_fields() -> None:
    """The validator is not a no-op: a typo'd field and a wrong type in a real object are reported."""
    deployment = copy.deepcopy(one(render("default"), "Deployment", "rivulet-nlu"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True
    deployment["spec"]["replicas"] = "two"
    findings = validate((deployment,), "1.33").findings
    paths = {f.path for f in findings}
    assert "spec/template/spec/containers/0/securityContext" in paths, findings
    assert "spec/replicas" in paths, findings


def test_servicemonitor_subset_schema_is_strict() -> None:
    monitor = copy.deepcopy(one(render("gpu-cluster"), "ServiceMonitor", "rivulet-nlu"))
    assert not validate((monitor,), "1.29").findings
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    monitor["metadata"]["labels"] = {"release": 3}
    paths = {f.path for f in validate((monitor,), "1.29").findings}
    assert paths == {"spec/endpoints/0", "metadata/labels/release"}, paths
