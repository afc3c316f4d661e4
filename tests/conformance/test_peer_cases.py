"""The library against cases written after the peers' own test resources (tests/conformance/peers/):
Kyverno's pod-security policies and the Gatekeeper library's pod-security-policy samples. Each case
names the Tribunal policy for its Pod Security Standards check; the policy must report the pod exactly
when the peer's test expects a failure, except where Kubernetes 1.35 decides otherwise (`pss`), where
Tribunal follows the standard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import POLICY_DIR, RULES_DIR, review
from tribunal.model import parse_evidence
from tribunal.policy import Judge, load_enforcement, load_policy_set

PEERS = Path(__file__).parent / "peers"
TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

# Every check of the Pod Security Standards (Kubernetes 1.35) and the Tribunal policy for it
# (docs/policies.md, "The Kubernetes version and the Pod Security Standards").
PSS_CHECKS = {
    "HostProcess": "host_process",
    "Host Namespaces": "host_namespaces",
    "Privileged Containers": "privileged_containers",
    "Capabilities": "capabilities_baseline",
    "HostPath Volumes": "host_path_volumes",
    "Host Ports": "host_ports",
    "Host Probes / Lifecycle Hooks": "probe_host",
    "AppArmor": "apparmor",
    "SELinux": "selinux",
    "/proc Mount Type": "proc_mount",
    "Seccomp": "seccomp_unconfined",
    "Sysctls": "sysctls",
    "Volume Types": "volume_types",
    "Privilege Escalation": "privilege_escalation",
    "Running as Non-root": "run_as_non_root",
    "Running as Non-root user": "run_as_root_user",
    "Seccomp (restricted)": "seccomp_required",
    "Capabilities (restricted)": "capabilities_restricted",
    "/proc Mount Type (restricted)": "proc_mount_restricted",
}

# A violation of these is denied by default: every Baseline check, and the two explicit settings of
# Restricted that deny (docs/policies.md, Enforcement).
DENIED_BY_DEFAULT = {
    "host_process",
    "host_namespaces",
    "privileged_containers",
    "capabilities_baseline",
    "host_path_volumes",
    "host_ports",
    "probe_host",
    "apparmor",
    "selinux",
    "proc_mount",
    "seccomp_unconfined",
    "sysctls",
    "run_as_root_user",
    "proc_mount_restricted",
}


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(PEERS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for case in document["cases"]:
            cases.append({"peer_name": document["peer"], "file": path.name, **case})
    return cases


CASES = load_cases()


def workload(case: dict[str, Any]) -> dict[str, Any]:
    """The admitted object: a Pod, or the case's pod as the template of a workload kind."""
    kind = case.get("kind", "Pod")
    name = case["name"]
    meta = case.get("metadata", {})
    template = {"metadata": meta, "spec": case["spec"]}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta}, "spec": case["spec"]}
    if kind == "CronJob":
        spec: dict[str, Any] = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    assert kind in TEMPLATE_KINDS, kind
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": {"template": template}}


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.build(load_policy_set(POLICY_DIR), "regorus", load_enforcement(RULES_DIR))


@pytest.mark.parametrize("case", CASES, ids=[f"{c['peer_name']}:{c['name']}" for c in CASES])
def test_the_policy_reports_the_case_as_the_peer_or_the_standard_expects(
    case: dict[str, Any], judge: Judge
) -> None:
    verdict = judge.judge(parse_evidence(review(workload(case), namespace="peers")))
    reported = [v for v in verdict.violations if v.policy == case["policy"]]
    expected = case.get("pss", case["peer"])
    assert bool(reported) == (expected == "fail"), (case["name"], [v.msg for v in verdict.violations])
    if expected == "fail" and case["policy"] in DENIED_BY_DEFAULT:
        assert verdict.decision.value == "deny", (case["name"], verdict.decision)


def test_the_cases_are_well_formed() -> None:
    names = [(c["file"], c["name"]) for c in CASES]
    assert len(names) == len(set(names)), "case names repeat"
    for case in CASES:
        assert case["check"] in PSS_CHECKS, case["name"]
        assert case["policy"] == PSS_CHECKS[case["check"]], case["name"]
        assert case["peer"] in {"pass", "fail"}, case["name"]
        assert case.get(case["peer_name"]), (
            f"{case['name']} does not name the {case['peer_name']} resource it follows"
        )
        if "pss" in case:
            # a divergence is recorded only where it is one, and says why
            assert case["pss"] != case["peer"] and case.get("why"), case["name"]


def test_every_pss_check_has_a_violating_and_a_compliant_case() -> None:
    outcomes: dict[str, set[str]] = {check: set() for check in PSS_CHECKS}
    for case in CASES:
        outcomes[case["check"]].add(case.get("pss", case["peer"]))
    # The Restricted procMount check exists only for user-namespace pods: there is no compliant
    # counterpart a peer tests; policies/admission/proc_mount_restricted_test.rego has one.
    missing = {
        check: {"pass", "fail"} - seen
        for check, seen in outcomes.items()
        if {"pass", "fail"} - seen and check != "/proc Mount Type (restricted)"
    }
    assert missing == {}


def test_the_kubernetes_1_31_to_1_35_changes_are_among_the_cases() -> None:
    """Each change of the standards since 1.31 has a case where Tribunal follows it."""

    def has(check: str, outcome: str, predicate: Any) -> bool:
        return any(
            c["check"] == check
            and c.get("pss", c["peer"]) == outcome
            and predicate(c["spec"], c.get("metadata", {}))
            for c in CASES
        )

    def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for field in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(field, [])
        ]

    def selinux_types(spec: dict[str, Any]) -> set[str]:
        contexts = [spec.get("securityContext", {})] + [
            c.get("securityContext", {}) for c in containers(spec)
        ]
        return {sc.get("seLinuxOptions", {}).get("type") for sc in contexts}

    def sysctl_names(spec: dict[str, Any]) -> set[str]:
        return {s["name"] for s in spec.get("securityContext", {}).get("sysctls", [])}

    changes = {
        "1.31 container_engine_t": has(
            "SELinux", "pass", lambda s, m: "container_engine_t" in selinux_types(s)
        ),
        "1.32 tcp_rmem/tcp_wmem": has(
            "Sysctls", "pass", lambda s, m: {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"} <= sysctl_names(s)
        ),
        "1.33 image volumes": has(
            "Volume Types", "pass", lambda s, m: any("image" in v for v in s.get("volumes", []))
        ),
        "1.34 probe host": has("Host Probes / Lifecycle Hooks", "fail", lambda s, m: True),
        "1.35 procMount in a user namespace": has(
            "/proc Mount Type", "pass", lambda s, m: s.get("hostUsers") is False
        ),
        "1.35 restricted procMount": has("/proc Mount Type (restricted)", "fail", lambda s, m: True),
        "1.35 runAsNonRoot in a user namespace": has(
            "Running as Non-root", "pass", lambda s, m: s.get("hostUsers") is False
        ),
        "1.35 runAsUser 0 in a user namespace": has(
            "Running as Non-root user", "pass", lambda s, m: s.get("hostUsers") is False
        ),
        "empty AppArmor annotation": has(
            "AppArmor", "pass", lambda s, m: "" in m.get("annotations", {}).values()
        ),
    }
    assert [change for change, present in changes.items() if not present] == []
