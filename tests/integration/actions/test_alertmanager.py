"""Alerts delivered to a real Alertmanager (Debian's prometheus-alertmanager on loopback)."""

from __future__ import annotations

import re
from urllib.parse import quote

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.actions.conftest import MakeDispatcher, verdict
from tribunal.model import Evidence, EvidenceKind, FalcoAlert, Severity, Subject

RULE = """
rules:
  - name: page-security
    match: {kinds: [falco], policies: [shell_*], min_severity: high}
    dedupe: 10m
    actions:
      - type: alert
        params: {labels: {team: security}}
"""


# Routes a Falco user has for falcosidekick's alerts: on source, severity and the Falco rule.
ROUTES = """
route:
  receiver: blackhole
  routes:
    - receiver: falco-critical
      matchers: ['source="falco"', 'severity="critical"', 'rule=~"Terminal shell.*"', 'priority="Critical"']
receivers:
  - name: blackhole
  - name: falco-critical
"""


@pytest.fixture
def alertmanager_config() -> str:
    return ROUTES


async def alerts_in(url: str, filter: str | None = None) -> list[dict[str, object]]:
    query = f"?filter={quote(filter)}" if filter else ""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/alerts{query}") as response:
        assert response.status == 200
        alerts: list[dict[str, object]] = await response.json()
        return alerts


async def received_total(url: str) -> float:
    """Alertmanager's own count of alerts it accepted (alertmanager_alerts_received_total)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    return sum(
        float(m) for m in re.findall(r"^alertmanager_alerts_received_total\{[^}]*\} (\S+)$", text, re.M)
    )


async def test_alert_is_read_back_with_labels_from_the_verdict(
    alertmanager: str, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(
        RULE, alertmanager_url=alertmanager, actions={"external_url": "https://tribunal.example"}
    )
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["status"] == "success", outcome
    [alert] = await alerts_in(alertmanager)
    assert alert["labels"] == {
        "alertname": "TribunalPolicyViolation",
        "policy": "shell_in_container",
        "severity": "warning",
        "policy_severity": "high",
        "kind": "falco",
        "source": "falco",
        "decision": "deny",
        "response_rule": "page-security",
        "namespace": "shop",
        "pod": "web-7d4",
        "container": "app",
        "image": "nginx:1.27",
        "k8s_ns_name": "shop",
        "k8s_pod_name": "web-7d4",
        "team": "security",
    }
    assert alert["generatorURL"] == "https://tribunal.example/verdicts/ev-1"
    annotations = alert["annotations"]
    assert isinstance(annotations, dict) and annotations["summary"] == "shell_in_container happened"
    assert annotations["evidence_id"] == "ev-1" and annotations["controls"] == "c:1"
    assert isinstance(alert["status"], dict) and alert["status"]["state"] == "active"


async def test_repeats_inside_the_window_produce_one_alert(
    alertmanager: str, make_dispatcher: MakeDispatcher
) -> None:
    registry = CollectorRegistry()
    dispatcher = await make_dispatcher(RULE, alertmanager_url=alertmanager, registry=registry)
    statuses = []
    for n in range(4):
        [outcome] = await dispatcher.dispatch(None, verdict(evidence_id=f"ev-{n}"))
        statuses.append((outcome["status"], outcome.get("repeats")))
    assert statuses == [("success", None), ("deduplicated", 1), ("deduplicated", 2), ("deduplicated", 3)]
    assert len(await alerts_in(alertmanager)) == 1
    assert await received_total(alertmanager) == 1  # one POST reached Alertmanager, not four
    labels = {"action": "alert", "target": "alertmanager"}
    assert registry.get_sample_value("tribunal_action_dedupe_hits_total", labels) == 3
    # another pod is another subject: its own alert
    [other] = await dispatcher.dispatch(None, verdict(pod="web-9x2"))
    assert other["status"] == "success"
    assert sorted(str(a["labels"]["pod"]) for a in await alerts_in(alertmanager)) == ["web-7d4", "web-9x2"]  # type: ignore[index]


async def test_unreachable_alertmanager_is_retried_then_recorded_as_failure(
    make_dispatcher: MakeDispatcher,
) -> None:
    from tests.components import free_port

    dispatcher = await make_dispatcher(
        RULE, alertmanager_url=f"http://127.0.0.1:{free_port()}", actions={"max_attempts": 2}
    )
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["retriable"]) == ("failure", 2, True)


def falco_evidence() -> Evidence:
    body = FalcoAlert.model_validate(
        {
            "uuid": "9a3c",
            "time": "2024-05-01T10:00:00Z",
            "rule": "Terminal shell in container",
            "priority": "Critical",
            "output": "A shell was spawned in a container (user=root shell=bash cmdline=bash -i)",
            "source": "syscall",
            "hostname": "node-1",
            "tags": ["shell", "container", "mitre_execution"],
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-7d4", "proc.cmdline": "bash -i"},
        }
    )
    subject = Subject(namespace="shop", pod="web-7d4", container="app", image="nginx:1.27")
    return Evidence(id="ev-1", kind=EvidenceKind.FALCO, subject=subject, body=body)


async def test_falco_alert_arrives_with_falcosidekicks_labels_and_is_routed_on_them(
    alertmanager: str, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(
        RULE, alertmanager_url=alertmanager, actions={"external_url": "https://tribunal.example"}
    )
    [outcome] = await dispatcher.dispatch(falco_evidence(), verdict(severity=Severity.CRITICAL))
    assert outcome["status"] == "success", outcome
    [alert] = await alerts_in(alertmanager, 'rule="Terminal shell in container"')
    labels = alert["labels"]
    assert isinstance(labels, dict)
    assert {k: labels[k] for k in ("source", "rule", "priority", "hostname", "eventsource", "tags")} == {
        "source": "falco",
        "rule": "Terminal shell in container",
        "priority": "Critical",
        "hostname": "node-1",
        "eventsource": "syscall",
        "tags": "container,mitre_execution,shell",
    }
    assert (labels["severity"], labels["policy_severity"]) == ("critical", "critical")
    assert (labels["k8s_ns_name"], labels["k8s_pod_name"]) == ("shop", "web-7d4")
    assert "proc_cmdline" not in labels  # unbounded fields stay out of the labels
    # Alertmanager routed it as a falcosidekick alert would be routed
    assert [r["name"] for r in alert["receivers"]] == ["falco-critical"]  # type: ignore[union-attr,index]
    assert alert["generatorURL"] == "https://tribunal.example/verdicts/ev-1"
