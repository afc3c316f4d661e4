"""Alert payloads in the conventions Falco users know: falcosidekick's Alertmanager labels and
severities, a generatorURL to the verdict, and CloudEvents as a webhook format."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tribunal.actions.alert import ALERTMANAGER_SEVERITY, alert_labels, falco_priority, safe_label_name
from tribunal.actions.alertmanager import AlertmanagerParams
from tribunal.actions.alertmanager import build_payload as alertmanager_payload
from tribunal.actions.base import ActionRequest
from tribunal.actions.webhook import CLOUDEVENT_TYPE, WebhookParams, build_cloudevent, build_payload
from tribunal.model import (
    Decision,
    Evidence,
    EvidenceKind,
    FalcoAlert,
    FalcoPriority,
    Severity,
    Subject,
    Verdict,
    Violation,
)
from tribunal.settings import ActionSettings

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SUBJECT = Subject(namespace="shop", pod="web-7d4", container="app", image="nginx:1.27")
# falcosidekick's defaultSeverityMap (outputs/alertmanager.go), "information" spelt "info" here.
FALCOSIDEKICK_SEVERITY = {
    "emergency": "critical",
    "alert": "critical",
    "critical": "critical",
    "error": "warning",
    "warning": "warning",
    "notice": "info",
    "informational": "info",
    "debug": "info",
}


def falco_alert(priority: str = "Critical") -> FalcoAlert:
    return FalcoAlert.model_validate(
        {
            "uuid": "u-1",
            "time": "2024-05-01T10:00:00Z",
            "rule": "Terminal shell in container",
            "priority": priority,
            "output": "A shell was spawned (user=root cmdline=bash -i)",
            "source": "syscall",
            "hostname": "node-1",
            "tags": ["shell", "container", "mitre_execution"],
            "output_fields": {
                "k8s.ns.name": "shop",
                "k8s.pod.name": "web-7d4",
                "proc.cmdline": "bash -i",  # unbounded: never a label
                "container.id": "abc123",
            },
        }
    )


def falco_request(
    severity: Severity = Severity.CRITICAL,
    *,
    with_evidence: bool = True,
    details: dict[str, object] | None = None,
) -> ActionRequest:
    body = falco_alert()
    violation = Violation(
        policy="shell_in_container", msg="shell in shop/web-7d4", severity=severity, details=details or {}
    )
    verdict = Verdict(
        evidence_id="falco/u 1",
        kind=EvidenceKind.FALCO,
        subject=SUBJECT,
        decision=Decision.DENY,
        violations=[violation],
        policy_revision="rev",
        engine="regorus",
        evaluated_at=NOW,
        latency_ms=1.0,
    )
    evidence = Evidence(id="falco/u 1", kind=EvidenceKind.FALCO, subject=SUBJECT, body=body)
    return ActionRequest(
        evidence if with_evidence else None, verdict, "page-security", (violation,), AlertmanagerParams(), 600
    )


def test_falco_alert_has_falcosidekick_labels_and_keeps_tribunals() -> None:
    [alert] = alertmanager_payload(
        falco_request(), ActionSettings(external_url="https://t.example/"), now=NOW
    )
    assert alert["labels"] == {
        "alertname": "TribunalPolicyViolation",
        "policy": "shell_in_container",
        "severity": "critical",
        "policy_severity": "critical",
        "kind": "falco",
        "source": "falco",
        "decision": "deny",
        "response_rule": "page-security",
        "namespace": "shop",
        "pod": "web-7d4",
        "container": "app",
        "image": "nginx:1.27",
        "rule": "Terminal shell in container",
        "priority": "Critical",
        "eventsource": "syscall",
        "hostname": "node-1",
        "tags": "container,mitre_execution,shell",
        "k8s_ns_name": "shop",
        "k8s_pod_name": "web-7d4",
    }
    # a working link: the read API's GET /verdicts/{id}, the id percent-encoded as one path segment
    assert alert["generatorURL"] == "https://t.example/verdicts/falco%2Fu%201"


def test_without_the_evidence_the_labels_come_from_the_policy_details() -> None:
    details = {"rule": "Terminal shell in container", "priority": "CRITICAL", "source": "syscall",
               "hostname": "node-1", "tags": ["shell", "container"]}  # fmt: skip
    labels = alert_labels(falco_request(with_evidence=False, details=details), "shell_in_container")
    assert {k: labels[k] for k in ("rule", "priority", "eventsource", "hostname", "tags")} == {
        "rule": "Terminal shell in container",
        "priority": "Critical",
        "eventsource": "syscall",
        "hostname": "node-1",
        "tags": "container,shell",
    }
    assert (labels["k8s_ns_name"], labels["k8s_pod_name"]) == ("shop", "web-7d4")


@pytest.mark.parametrize("priority", list(FalcoPriority))
def test_severity_follows_falcosidekicks_priority_mapping(priority: FalcoPriority) -> None:
    assert ALERTMANAGER_SEVERITY[priority.severity] == FALCOSIDEKICK_SEVERITY[priority.value]
    assert falco_priority(priority.value.upper()) == priority.value.capitalize()


def test_severities_are_on_alertmanagers_scale_and_can_be_remapped() -> None:
    assert set(ALERTMANAGER_SEVERITY.values()) == {"critical", "warning", "info"}
    request = falco_request(Severity.HIGH)
    assert alert_labels(request, "shell_in_container")["severity"] == "warning"
    remapped = alert_labels(request, "shell_in_container", severity_map={Severity.HIGH: "page"})
    assert (remapped["severity"], remapped["policy_severity"]) == ("page", "high")
    params = AlertmanagerParams.model_validate({"severity_map": {"high": "critical"}})
    assert params.severity_map == {Severity.HIGH: "critical"}


def test_label_names_are_made_safe_as_falcosidekick_makes_them() -> None:
    assert safe_label_name("k8s.ns.name") == "k8s_ns_name"
    assert safe_label_name("proc.aname[2]") == "proc_aname_2"
    assert safe_label_name("team-name") == "team_name"
    assert safe_label_name("1st") == "_1st"
    labels = alert_labels(falco_request(), "shell_in_container", {"team.name": "sec"})
    assert labels["team_name"] == "sec"
    assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) for name in labels)


def test_unbounded_falco_fields_never_become_labels() -> None:
    labels = alert_labels(falco_request(), "shell_in_container")
    assert not {"proc_cmdline", "container_id", "output"} & labels.keys()
    assert all("bash" not in value for value in labels.values())


# CloudEvents 1.0 (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md), structured mode
# (formats/json-format.md). Attribute names: lower-case ASCII letters and digits, 20 at most.
CE_NAME = re.compile(r"[a-z0-9]{1,20}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def check_cloudevent(event: dict[str, object]) -> None:
    """The required and optional context attributes of a CloudEvent, as the spec constrains them."""
    for required in ("specversion", "id", "source", "type"):
        value = event[required]
        assert isinstance(value, str) and value, required
    assert event["specversion"] == "1.0"
    assert all(CE_NAME.fullmatch(name) for name in event if name not in ("data", "data_base64"))
    assert "data" not in event or "data_base64" not in event
    assert isinstance(event.get("time"), str) and RFC3339.fullmatch(str(event["time"]))
    assert isinstance(event.get("subject"), str) and event["subject"]
    for name, value in event.items():  # extension values: string, integer, boolean (JSON format)
        if name not in ("data", "data_base64"):
            assert isinstance(value, str | int | bool), name


def test_cloudevent_is_a_structured_cloudevents_1_0_event_around_the_json_payload() -> None:
    request = falco_request()
    settings = ActionSettings(external_url="https://tribunal.example")
    event = build_payload(request, "cloudevents", settings)
    check_cloudevent(event)
    assert event == build_cloudevent(request, settings)
    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0",
        "type": CLOUDEVENT_TYPE,
        "source": "https://tribunal.example",
        "id": "falco/u 1/page-security",
        "time": "2024-05-01T10:00:00Z",
        "subject": "shop/-/web-7d4",
        "datacontenttype": "application/json",
        "tribunalkind": "falco",
        "tribunaldecision": "deny",
        "tribunalseverity": "critical",
    }
    data = event["data"]
    assert data == build_payload(request, "json", settings)
    assert data["evidence_id"] == "falco/u 1" and data["violations"][0]["policy"] == "shell_in_container"
    assert data["url"] == "https://tribunal.example/verdicts/falco%2Fu%201"
    # the same event on every retry: a receiver deduplicating on (source, id) sees one
    assert build_cloudevent(request, settings)["id"] == event["id"]
    # without an external URL the source is still a URI-reference
    assert build_cloudevent(request)["source"] == "tribunal"
    assert WebhookParams.model_validate({"format": "cloudevents"}).format == "cloudevents"
