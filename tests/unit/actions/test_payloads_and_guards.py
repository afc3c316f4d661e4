"""Pure parts: the Alertmanager payload builder, the Event builder, backoff, dedupe and blast radius."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from tribunal.actions.alertmanager import AlertmanagerParams, build_payload
from tribunal.actions.base import ActionRequest
from tribunal.actions.dispatcher import Dispatcher
from tribunal.actions.event import EventParams, build_event
from tribunal.actions.guard import BlastRadiusGuard, Deduper
from tribunal.actions.registry import default_registry
from tribunal.actions.rules import RulesRuntime
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation
from tribunal.settings import ActionSettings

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
VERDICT = Verdict(
    evidence_id="ev-9",
    kind=EvidenceKind.TRIVY,
    subject=Subject(namespace="shop", workload_kind="Deployment", workload_name="web", image="nginx:1.27"),
    decision=Decision.DENY,
    violations=[
        Violation(
            policy="fixable_critical_high_cves",
            msg="CVE-1 critical",
            severity=Severity.CRITICAL,
            controls=["b", "a"],
        ),
        Violation(
            policy="fixable_critical_high_cves", msg="CVE-2 high", severity=Severity.HIGH, controls=["a"]
        ),
        Violation(policy="exposed_secrets", msg="AWS key", severity=Severity.HIGH),
    ],
    policy_revision="rev",
    engine="regorus",
    evaluated_at=NOW,
    latency_ms=1.0,
)


def request(params: object, dedupe: float = 600.0) -> ActionRequest:
    assert hasattr(params, "model_dump")
    return ActionRequest(None, VERDICT, "vuln", tuple(VERDICT.violations), params, dedupe)  # type: ignore[arg-type]


def test_alertmanager_payload_is_one_alert_per_policy() -> None:
    settings = ActionSettings(external_url="https://tribunal.example/")
    payload = build_payload(request(AlertmanagerParams(labels={"team": "sec"})), settings, now=NOW)
    assert payload == [
        {
            "labels": {
                "alertname": "TribunalPolicyViolation",
                "policy": "exposed_secrets",
                "severity": "warning",
                "policy_severity": "high",
                "kind": "trivy",
                "source": "trivy",
                "decision": "deny",
                "response_rule": "vuln",
                "namespace": "shop",
                "workload": "Deployment/web",
                "image": "nginx:1.27",
                "team": "sec",
            },
            "annotations": {
                "summary": "AWS key",
                "description": "AWS key",
                "evidence_id": "ev-9",
                "policy_revision": "rev",
            },
            "startsAt": "2024-05-01T10:00:00Z",
            "endsAt": "2024-05-01T10:10:00Z",
            "generatorURL": "https://tribunal.example/verdicts/ev-9",
        },
        {
            "labels": {
                "alertname": "TribunalPolicyViolation",
                "policy": "fixable_critical_high_cves",
                "severity": "critical",
                "policy_severity": "critical",
                "kind": "trivy",
                "source": "trivy",
                "decision": "deny",
                "response_rule": "vuln",
                "namespace": "shop",
                "workload": "Deployment/web",
                "image": "nginx:1.27",
                "team": "sec",
            },
            "annotations": {
                "summary": "CVE-1 critical",
                "description": "CVE-1 critical\nCVE-2 high",
                "evidence_id": "ev-9",
                "policy_revision": "rev",
                "controls": "a, b",
            },
            "startsAt": "2024-05-01T10:00:00Z",
            "endsAt": "2024-05-01T10:10:00Z",
            "generatorURL": "https://tribunal.example/verdicts/ev-9",
        },
    ]


def test_alert_without_dedupe_window_lasts_five_minutes_and_has_no_generator_url() -> None:
    [first, _] = build_payload(request(AlertmanagerParams(), dedupe=0), ActionSettings(), now=NOW)
    assert first["endsAt"] == "2024-05-01T10:05:00Z" and "generatorURL" not in first


def test_event_regarding_a_workload_when_no_pod() -> None:
    event = build_event(request(EventParams()), "tribunal-0", now=NOW)
    assert event["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
    }
    assert event["eventTime"] == "2024-05-01T10:00:00.000000Z"
    assert event["note"].startswith("Tribunal deny (critical): fixable_critical_high_cves: CVE-1 critical;")


def test_backoff_is_exponential_capped_and_jittered(tmp_path: object) -> None:
    settings = ActionSettings(backoff_seconds=0.5, backoff_max_seconds=3.0)
    runtime = RulesRuntime(str(tmp_path), default_registry())
    for jitter, expected in ((0.0, [0.25, 0.5, 1.0, 1.5, 1.5]), (1.0, [0.5, 1.0, 2.0, 3.0, 3.0])):
        dispatcher = Dispatcher(runtime, {}, settings, CollectorRegistry(), jitter=lambda j=jitter: j)
        assert [dispatcher.backoff(n) for n in range(1, 6)] == expected


def test_dedupe_counts_repeats_within_the_window_only() -> None:
    now = [0.0]
    deduper = Deduper(clock=lambda: now[0])
    key = ("rule", "shop/-/p", "", "policy")
    assert [deduper.check(key, 60) for _ in range(3)] == [0, 1, 2]
    now[0] = 61.0
    assert deduper.check(key, 60) == 0
    assert deduper.check(("other",), 60) == 0
    assert deduper.check(key, 0) == 0 and deduper.check(key, 0) == 0  # no window: never deduplicated


def test_blast_radius_slides_per_namespace() -> None:
    now = [0.0]
    guard = BlastRadiusGuard(2, exempt=["kube-system"], clock=lambda: now[0])
    assert [guard.allow("shop") for _ in range(3)] == [True, True, False]
    assert guard.allow("blog") is True
    now[0] = 59.0
    assert guard.allow("shop") is False
    now[0] = 60.5
    assert guard.allow("shop") is True
    assert guard.is_exempt("kube-system") and not guard.is_exempt("shop") and not guard.is_exempt(None)
