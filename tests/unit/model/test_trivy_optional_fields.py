"""Trivy reports as Trivy writes them: every field its Go types tag ``omitempty`` may be missing
(pkg/types/report.go, vulnerability.go, misconfiguration.go, pkg/fanal/types/secret.go,
pkg/k8s/report/report.go), and a report missing any of them is still parsed and judged."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import POLICY_DIR
from tribunal.model import EvidenceKind, parse_evidence
from tribunal.model.trivy import TrivyK8sReport, TrivyReport
from tribunal.policy import Judge, load_policy_set

IMAGE = "ghcr.io/acme/api:2.1"


def image_report() -> dict[str, Any]:
    return {
        "SchemaVersion": 2,
        "ArtifactName": IMAGE,
        "ArtifactType": "container_image",
        "Metadata": {"RepoTags": [IMAGE], "RepoDigests": [f"ghcr.io/acme/api@sha256:{'b' * 64}"]},
        "Results": [
            {
                "Target": f"{IMAGE} (alpine 3.19)",
                "Class": "os-pkgs",
                "Type": "alpine",
                "Vulnerabilities": [
                    {
                        "VulnerabilityID": "CVE-2024-1",
                        "PkgID": "musl@1.2.4",
                        "PkgName": "musl",
                        "InstalledVersion": "1.2.4",
                        "FixedVersion": "1.2.5",
                        "Severity": "CRITICAL",
                        "Title": "musl overflow",
                    }
                ],
            },
            {
                "Target": "Dockerfile",
                "Class": "config",
                "Type": "dockerfile",
                "Misconfigurations": [
                    {
                        "ID": "DS002",
                        "AVDID": "AVD-DS-0002",
                        "Title": "root user",
                        "Message": "Specify at least 1 USER command",
                        "Severity": "HIGH",
                        "Status": "FAIL",
                    }
                ],
            },
            {
                "Target": "app/.env",
                "Class": "secret",
                "Secrets": [
                    {
                        "RuleID": "github-pat",
                        "Category": "GitHub",
                        "Severity": "CRITICAL",
                        "Title": "GitHub Personal Access Token",
                        "StartLine": 3,
                    }
                ],
            },
        ],
    }


def k8s_report() -> dict[str, Any]:
    return {
        "SchemaVersion": 2,
        "ClusterName": "kind",
        "Resources": [
            {
                "Namespace": "shop",
                "Kind": "Deployment",
                "Name": "web",
                "Results": image_report()["Results"],
            }
        ],
    }


# (path to the field's parent, field): every field of each Trivy type Tribunal reads that Trivy's
# Go types mark `omitempty` (the report's, a result's, a finding's).
IMAGE_REPORT_FIELDS = [
    ((), "SchemaVersion"),
    ((), "ArtifactName"),
    ((), "ArtifactType"),
    ((), "Metadata"),
    ((), "Results"),
    (("Results", 0), "Target"),
    (("Results", 0), "Class"),
    (("Results", 0), "Type"),
    (("Results", 0), "Vulnerabilities"),
    (("Results", 1), "Misconfigurations"),
    (("Results", 2), "Secrets"),
    *((("Results", 0, "Vulnerabilities", 0), f) for f in (
        "VulnerabilityID", "PkgID", "PkgName", "InstalledVersion", "FixedVersion", "Severity", "Title",
    )),
    *((("Results", 1, "Misconfigurations", 0), f) for f in (
        "ID", "AVDID", "Title", "Message", "Severity", "Status",
    )),
    *((("Results", 2, "Secrets", 0), f) for f in ("RuleID", "Category", "Severity", "Title", "StartLine")),
]  # fmt: skip

K8S_REPORT_FIELDS = [
    ((), "SchemaVersion"),
    ((), "Resources"),
    (("Resources", 0), "Namespace"),
    (("Resources", 0), "Results"),
]


def _without(doc: dict[str, Any], parent: tuple[str | int, ...], field: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(doc)
    node: Any = trimmed
    for key in parent:
        node = node[key]
    del node[field]
    return trimmed


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.build(load_policy_set(POLICY_DIR))


@pytest.mark.parametrize(("parent", "field"), IMAGE_REPORT_FIELDS, ids=lambda x: str(x))
def test_image_report_missing_an_optional_field_is_judged(
    judge: Judge, parent: tuple[str | int, ...], field: str
) -> None:
    evidence = parse_evidence(_without(image_report(), parent, field))
    assert evidence.kind is EvidenceKind.TRIVY
    assert isinstance(evidence.body, TrivyReport)
    verdict = judge.judge(evidence)
    assert verdict.kind is EvidenceKind.TRIVY
    if field not in ("Results", "Vulnerabilities", "FixedVersion", "Severity"):
        # the fixable critical CVE is still found, whatever else is missing
        assert "fixable_critical_high_cves" in {v.policy for v in verdict.violations}, field


@pytest.mark.parametrize(("parent", "field"), K8S_REPORT_FIELDS, ids=lambda x: str(x))
def test_k8s_report_missing_an_optional_field_is_judged(
    judge: Judge, parent: tuple[str | int, ...], field: str
) -> None:
    evidence = parse_evidence(_without(k8s_report(), parent, field))
    assert isinstance(evidence.body, TrivyK8sReport)
    judge.judge(evidence)


def test_report_without_artifact_name_takes_the_image_from_its_metadata(judge: Judge) -> None:
    doc = _without(image_report(), (), "ArtifactName")
    evidence = parse_evidence(doc)
    assert evidence.subject.image == IMAGE
    assert evidence.subject.image_digest == "sha256:" + "b" * 64
    [cve] = [v for v in judge.judge(evidence).violations if v.policy == "fixable_critical_high_cves"]
    assert cve.details["image"] == IMAGE


def test_report_with_only_results_is_told_to_be_trivy() -> None:
    doc = {"Results": image_report()["Results"]}
    evidence = parse_evidence(doc)
    assert evidence.kind is EvidenceKind.TRIVY
    assert isinstance(evidence.body, TrivyReport)
    assert evidence.body.schema_version is None and evidence.body.artifact_name == ""


def test_a_present_schema_version_must_still_be_2() -> None:
    doc = image_report()
    doc["SchemaVersion"] = 3
    with pytest.raises(Exception, match="SchemaVersion"):
        parse_evidence(doc)


def test_k8s_summary_report_findings_are_read() -> None:
    doc = {"ClusterName": "kind", "Findings": k8s_report()["Resources"]}
    evidence = parse_evidence(doc)
    assert isinstance(evidence.body, TrivyK8sReport)
    assert [r.name for r in evidence.body.all_resources()] == ["web"]
