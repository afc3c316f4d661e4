"""The catalogue of Falco's default rules (policies/data/falco_rules.json, read by the runtime policies
as data.tribunal.config.falco_rules) says what the policies do with each rule: every entry is
well-formed, each rule it gives to a named policy is claimed by that policy, and each other rule is
judged by falco_alert at any priority with the severity and controls the entry gives it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.conftest import POLICY_DIR
from tribunal.model import Severity, parse_evidence
from tribunal.model.falco import FalcoPriority
from tribunal.policy import Judge, PolicySet, load_policy_set

CATALOGUE_FILE = POLICY_DIR / "data" / "falco_rules.json"
CATALOGUE: dict[str, dict[str, Any]] = orjson.loads(CATALOGUE_FILE.read_bytes())["tribunal"]["config"][
    "falco_rules"
]
RUNTIME_MONITORING = "nsa-cisa:threat-detection:runtime-monitoring"
# The Falco rules the catalogue must know (falcosecurity/rules, rules/falco_rules.yaml): the stable,
# default rule set, which every Falco install loads.
STABLE = {
    "Directory traversal monitored file read", "Read sensitive file trusted after startup",
    "Read sensitive file untrusted", "Run shell untrusted", "System user interactive",
    "Terminal shell in container", "Contact K8S API Server From Container",
    "Netcat Remote Code Execution in Container", "Search Private Keys or Passwords", "Clear Log Activities",
    "Remove Bulk Data from Disk", "Create Symlink Over Sensitive Files", "Create Hardlink Over Sensitive Files",
    "Packet socket created in container", "Redirect STDOUT/STDIN to Network Connection in Container",
    "Linux Kernel Module Injection Detected", "Debugfs Launched in Privileged Container",
    "Detect release_agent File Container Escapes", "PTRACE attached to process", "PTRACE anti-debug attempt",
    "Find AWS Credentials", "Execution from /dev/shm", "Drop and execute new binary in container",
    "Disallowed SSH Connection Non Standard Port", "Fileless execution via memfd_create",
}  # fmt: skip


@pytest.fixture(scope="module")
def library() -> PolicySet:
    return load_policy_set(POLICY_DIR)


@pytest.fixture(scope="module")
def judge(library: PolicySet) -> Judge:
    return Judge.build(library)


def test_the_stable_rule_set_is_catalogued() -> None:
    assert set(CATALOGUE) >= STABLE
    assert {e["maturity"] for name, e in CATALOGUE.items() if name in STABLE} == {"stable"}
    assert CATALOGUE["Launch Privileged Container"]["priority"] == "Informational"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_entry_is_well_formed(name: str, library: PolicySet) -> None:
    entry = CATALOGUE[name]
    assert set(entry) <= {
        "priority", "maturity", "description", "policy", "controls", "severity", "enabled_by_default",
    }, name  # fmt: skip
    assert FalcoPriority(entry["priority"].lower()), name
    assert entry["maturity"] in {"stable", "incubating", "sandbox"}, name
    assert entry["description"].endswith("."), name
    assert ("policy" in entry) != ("controls" in entry), (
        f"{name}: a named policy claims it, or it has controls"
    )
    falco_alert = library.policies["falco_alert"]
    if "policy" in entry:
        assert library.policies[entry["policy"]].kind == "falco", name
        assert "severity" not in entry, f"{name}: the named policy sets the severity"
    else:
        assert entry["controls"][0] == RUNTIME_MONITORING, name
        assert set(entry["controls"]) <= set(falco_alert.controls), f"{name}: falco_alert must declare them"
    if "severity" in entry:
        assert Severity(entry["severity"]), name


def test_falco_alert_declares_exactly_the_controls_the_catalogue_names(library: PolicySet) -> None:
    named = {c for e in CATALOGUE.values() for c in e.get("controls", [])}
    assert named == set(library.policies["falco_alert"].controls)


def _alert(name: str, priority: str) -> dict[str, Any]:
    return {
        "time": datetime(2025, 5, 1, tzinfo=UTC).isoformat(),
        "rule": name,
        "priority": priority,
        "source": "syscall",
        "output_fields": {"container.id": "1232fb36c811", "proc.name": "runc"},
    }


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_rule_is_judged_as_the_catalogue_says(name: str, judge: Judge) -> None:
    entry = CATALOGUE[name]
    verdict = judge.judge(parse_evidence(_alert(name, entry["priority"])))
    if "policy" in entry:
        assert {v.policy for v in verdict.violations} == {entry["policy"]}, name
        return
    [violation] = verdict.violations
    assert violation.policy == "falco_alert"
    assert violation.controls == entry["controls"]
    priority = FalcoPriority(entry["priority"].lower())
    assert violation.severity is Severity(entry.get("severity", priority.severity.value))
    assert violation.details["description"] == entry["description"]


def test_an_unknown_rule_is_still_judged_by_its_priority(judge: Judge) -> None:
    loud = judge.judge(parse_evidence(_alert("Our own rule", "Error")))
    assert [(v.policy, v.severity, v.controls) for v in loud.violations] == [
        ("falco_alert", Severity.HIGH, [RUNTIME_MONITORING])
    ]
    assert judge.judge(parse_evidence(_alert("Our own rule", "Notice"))).violations == []
