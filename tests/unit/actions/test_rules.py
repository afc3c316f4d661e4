"""Response rules: validation errors name the file, the rule and the field; matching; hot reload
keeps the last good set."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import RULES_DIR
from tribunal.actions import RulesError, RulesRuntime, default_registry, load_rule_text, load_rules
from tribunal.actions.rules import parse_duration
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation

REGISTRY = default_registry()


def load(text: str) -> None:
    load_rule_text(text, "response/x.yaml", REGISTRY)


@pytest.mark.parametrize(
    ("text", "rule", "field", "message"),
    [
        (
            "rules:\n  - name: a\n    actions: [{type: annotate}]\n    match: {min_severity: severe}\n",
            "a",
            "match.min_severity",
            "Input should be",
        ),
        (
            "rules:\n  - name: b\n    actions: [{type: explode}]\n",
            "b",
            "actions[0].type",
            "unknown action type 'explode'",
        ),
        (
            "rules:\n  - name: c\n    actions: [{type: alert, target: pager}]\n",
            "c",
            "actions[0].target",
            "unknown target 'pager' for action 'alert'",
        ),
        (
            "rules:\n  - name: d\n    actions: [{type: annotate}, {type: terminate, params: {grace_period_seconds: -1}}]\n",
            "d",
            "actions[1].params.grace_period_seconds",
            "greater than or equal to 0",
        ),
        (
            "rules:\n  - name: e\n    actions: [{type: terminate, params: {mode: nuke}}]\n",
            "e",
            "actions[0].params.mode",
            "'evict' or 'delete'",
        ),
        (
            "rules:\n  - name: f\n    actions: [{type: annotate, params: {annotations: {owner: me}}}]\n",
            "f",
            "actions[0].params.annotations",
            "must start with 'tribunal.io/'",
        ),
        (
            "rules:\n  - name: g\n    dedupe: soon\n    actions: [{type: event}]\n",
            "g",
            "dedupe",
            "is not a duration",
        ),
        ("rules:\n  - name: h\n    actions: []\n", "h", "actions", "at least 1 item"),
        (
            "rules:\n  - name: i\n    actions: [{type: event}]\n    matches: {}\n",
            "i",
            "matches",
            "Extra inputs are not permitted",
        ),
        (
            "rules:\n  - name: Bad_Name\n    actions: [{type: event}]\n",
            "Bad_Name",
            "name",
            "should match pattern",
        ),
        ("rules:\n  - actions: [{type: event}]\n", "#1", "name", "Field required"),
        (
            "rules:\n  - name: j\n    actions: [{type: event}]\n    match: {kinds: [syslog]}\n",
            "j",
            "match.kinds[0]",
            "Input should be",
        ),
    ],
)
def test_errors_name_file_rule_and_field(text: str, rule: str, field: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        load(text)
    error = caught.value
    assert (error.file, error.rule, error.field) == ("response/x.yaml", rule, field)
    assert message in error.message
    assert str(error).startswith(f"response/x.yaml: rule {rule!r}: {field}: ")


def test_file_level_errors_name_the_file() -> None:
    with pytest.raises(RulesError, match=r"^response/x.yaml: not valid YAML"):
        load("rules: [\n")
    with pytest.raises(RulesError, match=r"^response/x.yaml: rules: a response rule file holds"):
        load("- name: a\n")
    with pytest.raises(RulesError, match=r"unknown top-level key\(s\): rulez"):
        load("rulez: []\n")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "response").mkdir()
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / "response" / name).write_text("rules:\n  - name: same\n    actions: [{type: event}]\n")
    with pytest.raises(RulesError, match=r"b.yaml: rule 'same': name: name already used in .*a.yaml"):
        load_rules(tmp_path, REGISTRY)


def test_durations() -> None:
    assert [parse_duration(v) for v in (90, "30s", "5m", "1h", "250ms", "0")] == [90, 30, 300, 3600, 0.25, 0]
    with pytest.raises(ValueError, match="duration"):
        parse_duration("-5m")


def test_shipped_rules_load() -> None:
    names = [r.name for r in load_rules(RULES_DIR, REGISTRY).rules]
    assert names == [
        "admission-denied",
        "shell-in-container",
        "block-fixable-critical-cves",
        "vulnerable-image-alert",
    ]


def a_verdict(
    *violations: Violation, kind: EvidenceKind = EvidenceKind.FALCO, namespace: str = "shop"
) -> Verdict:
    return Verdict(
        evidence_id="e",
        kind=kind,
        subject=Subject(namespace=namespace, pod="p"),
        decision=Decision.DENY,
        violations=list(violations),
        policy_revision="r",
        engine="regorus",
        evaluated_at=datetime(2024, 1, 1, tzinfo=UTC),
        latency_ms=1.0,
    )


def v(policy: str, severity: Severity = Severity.HIGH, **extra: object) -> Violation:
    return Violation.model_validate({"policy": policy, "msg": "m", "severity": severity, **extra})


def test_matching_by_kind_policy_glob_severity_namespace_and_continue() -> None:
    rules = load_rule_text(
        """
rules:
  - name: shells-in-prod
    match: {kinds: [falco], policies: ["shell_*"], min_severity: high, namespaces: ["prod-*"]}
    continue: false
    actions: [{type: event}]
  - name: anything-falco
    match: {kinds: [falco]}
    actions: [{type: event}]
""",
        "x.yaml",
        REGISTRY,
    )
    from tribunal.actions.rules import RuleSet

    rule_set = RuleSet(tuple(rules), "r")

    def names(verdict: Verdict) -> list[tuple[str, list[str]]]:
        return [(m.rule.name, [x.policy for x in m.violations]) for m in rule_set.match(verdict)]

    both = a_verdict(v("shell_in_container"), v("read_sensitive_file"), namespace="prod-eu")
    assert names(both) == [("shells-in-prod", ["shell_in_container"])]  # continue: false stops the next
    assert names(a_verdict(v("shell_in_container"), namespace="dev")) == [
        ("anything-falco", ["shell_in_container"])
    ]
    low = a_verdict(v("shell_in_container", Severity.MEDIUM), namespace="prod-eu")
    assert names(low) == [("anything-falco", ["shell_in_container"])]
    excepted = a_verdict(v("shell_in_container", exception="approved"), namespace="prod-eu")
    assert names(excepted) == []  # excepted violations are not acted on
    assert names(a_verdict(v("x"), kind=EvidenceKind.TRIVY)) == []


def test_reload_keeps_the_last_good_set_and_reports_the_error(tmp_path: Path) -> None:
    response = tmp_path / "response"
    response.mkdir()
    path = response / "rules.yaml"
    path.write_text("rules:\n  - name: first\n    actions: [{type: event}]\n")
    runtime = RulesRuntime(tmp_path, REGISTRY)
    assert [r.name for r in runtime.rules.rules] == ["first"] and runtime.probe() is None

    path.write_text("rules:\n  - name: first\n    actions: [{type: evnet}]\n")
    os.utime(path, ns=(1, 1))  # a different mtime even within the clock's resolution
    assert runtime.reload() is False
    assert [r.name for r in runtime.rules.rules] == ["first"]
    assert (
        runtime.probe()
        == f"{path}: rule 'first': actions[0].type: unknown action type 'evnet' (one of: alert, annotate, block-image, event, label, quarantine, terminate)"
    )

    path.write_text("rules:\n  - name: second\n    actions: [{type: event}]\n")
    os.utime(path, ns=(2, 2))
    assert runtime.reload() is True
    assert [r.name for r in runtime.rules.rules] == ["second"] and runtime.probe() is None


def test_a_bad_set_at_start_raises(tmp_path: Path) -> None:
    (tmp_path / "response").mkdir()
    (tmp_path / "response" / "r.yaml").write_text("rules:\n  - name: a\n    actions: [{type: nope}]\n")
    with pytest.raises(RulesError, match=r"r.yaml: rule .a.: actions\[0\].type"):
        RulesRuntime(tmp_path, REGISTRY)


def test_label_selectors_match_the_labels_of_the_evidence_or_the_ones_given() -> None:
    from tribunal.actions.rules import RuleSet
    from tribunal.model import parse_evidence
    from tribunal.model.labels import labels_of

    rules = load_rule_text(
        """
rules:
  - name: web-tier
    match: {kinds: [admission], labels: {tier: "front*"}}
    actions: [{type: event}]
""",
        "x.yaml",
        REGISTRY,
    )
    rule_set = RuleSet(tuple(rules), "r")
    verdict = a_verdict(v("privileged_containers"), kind=EvidenceKind.ADMISSION)
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "labels": {"tier": "frontend"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
    }
    evidence = parse_evidence(manifest, "pod.yaml")
    # From the evidence, or (a worker judged it, the server has only the document) from labels given.
    assert [m.rule.name for m in rule_set.match(verdict, evidence)] == ["web-tier"]
    labels = labels_of(EvidenceKind.ADMISSION, evidence.event())
    assert labels == {"tier": "frontend"}
    assert [m.rule.name for m in rule_set.match(verdict, None, labels)] == ["web-tier"]
    assert rule_set.match(verdict, None, {"tier": "back"}) == []
    assert rule_set.match(verdict) == []  # no labels known: a label selector does not match
    falco = {"output_fields": {"k8s.pod.labels": "[app:web, tier:front]"}}
    assert labels_of(EvidenceKind.FALCO, falco) == {"app": "web", "tier": "front"}
