"""Objects without a pod spec reach their policies through the whole pipeline: an AdmissionReview (or a
bare manifest) of a ClusterRole, a binding, a Service or a ServiceAccount is parsed, given its subject,
judged by the library with its default enforcement, and gets the violations of the rbac_*, service_*
and service_account_token policies, the same on every embedded engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POLICY_DIR, RULES_DIR, review
from tribunal.cli import main
from tribunal.model import Decision, Enforcement, Verdict, parse_evidence
from tribunal.policy import Judge, load_enforcement, load_policy_set

RBAC = "rbac.authorization.k8s.io/v1"

WILDCARD_ROLE = {
    "apiVersion": RBAC,
    "kind": "ClusterRole",
    "metadata": {"name": "everything"},
    "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
}
ADMIN_BINDING = {
    "apiVersion": RBAC,
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "ci-admin"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "build"}],
}
EXTERNAL_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"type": "NodePort", "ports": [{"port": 80}], "externalIPs": ["203.0.113.7"]},
}
SERVICE_ACCOUNT = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "web", "namespace": "shop"},
}


def rbac_review(obj: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    """The review the API server sends for an RBAC object (group rbac.authorization.k8s.io)."""
    doc = review(obj, uid=f"rbac-{obj['metadata']['name']}", namespace=namespace)
    kind = obj["kind"]
    doc["request"]["kind"] = {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": kind}
    doc["request"]["resource"] = {
        "group": "rbac.authorization.k8s.io",
        "version": "v1",
        "resource": kind.lower() + "s",
    }
    return doc


@pytest.fixture(scope="module")
def judges() -> dict[str, Judge]:
    library = load_policy_set(POLICY_DIR)
    enforcement = load_enforcement(RULES_DIR)
    return {
        name: Judge.build(library, name, enforcement) for name in ("regorus", "regorus-interpreter", "regopy")
    }


def by_policy(verdict: Verdict) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for violation in verdict.violations:
        found.setdefault(violation.policy, []).append(violation)
    return found


def test_a_cluster_role_with_a_wildcard_verb_is_warned_through_the_judge(judges: dict[str, Judge]) -> None:
    evidence = parse_evidence(rbac_review(WILDCARD_ROLE))
    assert evidence.subject.workload_kind == "ClusterRole"
    assert evidence.subject.workload_name == "everything"
    assert evidence.subject.namespace is None  # cluster-scoped
    verdict = judges["regorus"].judge(evidence)
    assert verdict.decision is Decision.WARN
    found = by_policy(verdict)
    [wildcard] = found["rbac_wildcards"]
    assert wildcard.msg == "ClusterRole everything rules[0] grants verbs *"
    assert wildcard.enforcement is Enforcement.WARN
    assert "cis-k8s:5.1.3" in wildcard.controls
    assert wildcard.details["path"] == "rules[0].verbs"
    assert set(found) == {"rbac_wildcards"}  # no pod-spec policy speaks about a role


def test_bindings_services_and_service_accounts_reach_their_policies(judges: dict[str, Judge]) -> None:
    binding = judges["regorus"].judge(parse_evidence(rbac_review(ADMIN_BINDING)))
    assert binding.decision is Decision.WARN
    assert set(by_policy(binding)) == {"rbac_cluster_admin_binding"}
    assert "cis-k8s:5.1.1" in binding.violations[0].controls

    service = judges["regorus"].judge(parse_evidence(review(EXTERNAL_SERVICE, namespace="shop")))
    assert service.decision is Decision.DENY  # externalIPs (CVE-2020-8554)
    assert {p: [v.enforcement for v in vs] for p, vs in by_policy(service).items()} == {
        "service_external_ips": [Enforcement.DENY],
        "service_type": [Enforcement.WARN],
    }

    account = judges["regorus"].judge(parse_evidence(review(SERVICE_ACCOUNT, namespace="shop")))
    assert account.decision is Decision.ALLOW  # recorded only: service_account_token is dryrun by default
    [token] = by_policy(account)["service_account_token"]
    assert token.enforcement is Enforcement.DRYRUN and "cis-k8s:5.1.6" in token.controls


@pytest.mark.parametrize("obj", [WILDCARD_ROLE, ADMIN_BINDING, EXTERNAL_SERVICE, SERVICE_ACCOUNT])
def test_every_engine_gives_the_same_verdict(judges: dict[str, Judge], obj: dict[str, Any]) -> None:
    doc = rbac_review(obj) if obj["apiVersion"] == RBAC else review(obj, namespace="shop")
    keep = {"decision", "violations", "subject"}
    verdicts = {
        name: judge.judge(parse_evidence(doc)).model_dump(include=keep) for name, judge in judges.items()
    }
    assert verdicts["regorus-interpreter"] == verdicts["regorus"]
    assert verdicts["regopy"] == verdicts["regorus"]


def test_tribunal_judge_on_a_cluster_role_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "role.json"
    manifest.write_text(json.dumps(WILDCARD_ROLE))
    code = main(
        [
            "judge",
            "--policies",
            str(POLICY_DIR),
            "--rules",
            str(RULES_DIR),
            str(manifest),
        ]
    )
    [line] = capsys.readouterr().out.splitlines()
    verdict = json.loads(line)
    assert code == 0
    assert verdict["decision"] == "warn"
    assert verdict["subject"].get("namespace") is None  # a bare ClusterRole is not put in "default"
    assert [v["policy"] for v in verdict["violations"]] == ["rbac_wildcards"]


ODD_OBJECTS: list[dict[str, Any]] = [
    {**WILDCARD_ROLE, "rules": None},
    {**WILDCARD_ROLE, "rules": [None, {"verbs": "*", "resources": None, "apiGroups": [1, "*"]}]},
    {
        **WILDCARD_ROLE,
        "kind": "Role",
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": "x", "verbs": ["get", "bind"]}
        ],
    },
    {**ADMIN_BINDING, "subjects": None},
    {**ADMIN_BINDING, "kind": "RoleBinding", "roleRef": {"kind": "Role", "name": "cluster-admin"}},
    {**EXTERNAL_SERVICE, "spec": None},
    {**EXTERNAL_SERVICE, "spec": {"type": 5, "externalIPs": "203.0.113.7"}},
    {**SERVICE_ACCOUNT, "automountServiceAccountToken": "false"},
]


@pytest.mark.parametrize("obj", ODD_OBJECTS)
def test_odd_shapes_are_judged_alike_by_the_vm_and_the_interpreter(
    judges: dict[str, Judge], obj: dict[str, Any]
) -> None:
    doc = rbac_review(obj) if obj["apiVersion"] == RBAC else review(obj, namespace="shop")
    vm = judges["regorus"].judge(parse_evidence(doc))
    interpreter = judges["regorus-interpreter"].judge(parse_evidence(doc))
    assert vm.model_dump(include={"decision", "violations"}) == interpreter.model_dump(
        include={"decision", "violations"}
    )
