"""Every shared sample loads, is judged on every engine (regorus, regopy, and an OPA server through
its REST API) with identical verdicts, and the admission samples get the decisions
../shared/fixtures/admission/EXPECTED.md lists."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conformance.conftest import relative
from tests.conftest import FIXTURES, expected_decisions, needs_shared
from tribunal.model import Decision, Evidence, EvidenceKind
from tribunal.policy import Judge

pytestmark = needs_shared

LABELS = {"deny": Decision.DENY, "violation": Decision.WARN, "allow": Decision.ALLOW, "-": Decision.ALLOW}


def test_every_sample_loads(shared_evidence: list[Evidence]) -> None:
    counts = Counter(e.kind for e in shared_evidence)
    # ../shared/fixtures/README.md: 40 AdmissionReviews, 35 Falco alerts, 42 Trivy documents.
    assert counts == {EvidenceKind.ADMISSION: 40, EvidenceKind.FALCO: 35, EvidenceKind.TRIVY: 42}


def test_admission_decisions_match_expected(
    shared_evidence: list[Evidence], judges: dict[str, Judge]
) -> None:
    expected = expected_decisions()
    assert len(expected) == 40
    wrong = {}
    for evidence in shared_evidence:
        if evidence.kind is not EvidenceKind.ADMISSION:
            continue
        label = expected[relative(evidence.source)]
        verdict = judges["regorus"].judge(evidence)
        if verdict.decision is not LABELS[label] or (label == "-" and verdict.violations):
            wrong[relative(evidence.source)] = (
                label,
                verdict.decision.value,
                [v.policy for v in verdict.violations],
            )
    assert wrong == {}


def test_privileged_hostpath_and_root_pods_are_denied_by_their_policies(
    shared_evidence: list[Evidence], judges: dict[str, Judge]
) -> None:
    cases = {
        "gk-privileged-disallowed.json": "privileged_containers",
        "kubewarden-privileged-container.json": "privileged_containers",
        "gk-host-filesystem-disallowed.json": "host_path_volumes",
        "gk-users-disallowed.json": "run_as_root_user",
    }
    by_name = {relative(e.source): e for e in shared_evidence}
    for name, policy in cases.items():
        verdict = judges["regorus"].judge(by_name[name])
        assert verdict.decision is Decision.DENY, name
        assert policy in {v.policy for v in verdict.denying}, name


@pytest.mark.parametrize("other", ["regopy", "opa"])
def test_every_engine_gives_the_verdicts_of_regorus(
    shared_evidence: list[Evidence], judges: dict[str, Judge], other: str
) -> None:
    differ = []
    for evidence in shared_evidence:
        first = judges["regorus"].judge(evidence)
        second = judges[other].judge(evidence)
        keep = {"evidence_id", "kind", "subject", "decision", "violations", "policy_revision"}
        if first.model_dump(include=keep) != second.model_dump(include=keep):
            differ.append(evidence.source)
    assert differ == []
    assert sum(len(judges[other].judge(e).violations) for e in shared_evidence) > 100  # not vacuous


def test_every_violation_names_its_controls(
    shared_evidence: list[Evidence], judges: dict[str, Judge]
) -> None:
    missing = {
        (relative(e.source), v.policy)
        for e in shared_evidence
        for v in judges["regorus"].judge(e).violations
        if not v.controls
    }
    assert missing == set()


@pytest.mark.parametrize(
    ("name", "decision", "policy"),
    [
        ("rules_daemonset_terminal_shell.json", Decision.DENY, "shell_in_container"),
        ("sidekick_readme_write_below_binary_dir.json", Decision.DENY, "write_below_sensitive_dir"),
        ("mfernd_read_sensitive_untrusted.json", Decision.DENY, "read_sensitive_file"),
        (
            "operator-vulnerabilityreport-nginx-single-critical.json",
            Decision.DENY,
            "fixable_critical_high_cves",
        ),
        ("operator-exposedsecretreport-nginx-many.json", Decision.DENY, "exposed_secrets"),
    ],
)
def test_runtime_and_vulnerability_samples(
    shared_evidence: list[Evidence], judges: dict[str, Judge], name: str, decision: Decision, policy: str
) -> None:
    [evidence] = [e for e in shared_evidence if relative(e.source) == name]
    verdict = judges["regorus"].judge(evidence)
    assert verdict.decision is decision
    assert policy in {v.policy for v in verdict.violations}


@pytest.mark.parametrize(
    "name",
    [
        "image-alpine-3.14-no-vulns-clean.json",
        "operator-vulnerabilityreport-nginx-no-vulns.json",
        "operator-exposedsecretreport-nginx-no-secrets.json",
    ],
)
def test_clean_reports_are_allowed(
    shared_evidence: list[Evidence], judges: dict[str, Judge], name: str
) -> None:
    [evidence] = [e for e in shared_evidence if relative(e.source) == name]
    verdict = judges["regorus"].judge(evidence)
    assert verdict.decision is Decision.ALLOW
    assert verdict.violations == []


def test_bare_manifests_get_the_decision_of_their_review(judges: dict[str, Judge]) -> None:
    from tribunal.sources import read_evidence

    manifests = sorted((FIXTURES / "manifests").glob("*.yaml"))
    assert len(manifests) >= 30
    for manifest in manifests:
        [evidence] = list(read_evidence(str(manifest)))
        assert isinstance(evidence, Evidence), evidence
        [review] = list(read_evidence(str(FIXTURES / "admission" / (manifest.stem + ".json"))))
        assert isinstance(review, Evidence)
        assert judges["regorus"].judge(evidence).decision is judges["regorus"].judge(review).decision, (
            manifest.name
        )
