"""The shipped response rules end to end on a real kube-apiserver, acting as the chart's ServiceAccount:
a Falco "shell in container" alert about a Deployment's pod is judged by the real policies, and the
pod (and, with the chart's actions.owners, its workloads) is annotated, an Event is written, the pod
is quarantined and a real Alertmanager gets the alert; first through the dispatcher, then through the
whole service as ``tribunal serve`` runs it, the alert arriving on Kafka (a real Tansu broker)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from tests.conftest import POLICY_DIR, RULES_DIR, falco_alert
from tests.e2e import actions_support
from tests.e2e.actions_support import (
    OWNERS_ON,
    Identity,
    MakeDispatcher,
    Workload,
    deployment_workload,
    events_about,
    read_object,
    read_pod,
)
from tests.e2e.conftest import RELEASE_NAMESPACE
from tests.integration import conftest as integration
from tests.integration.actions import conftest as integration_actions
from tests.integration.kafka_support import create_topics, produce, unique
from tribunal.app import build_server
from tribunal.model import parse_evidence
from tribunal.policy import PolicyRuntime
from tribunal.server import Server
from tribunal.settings import Settings

pytestmark = pytest.mark.e2e

# Fixtures from elsewhere that this module's tests use: the chart's identity and dispatcher, a real
# Alertmanager, a real Kafka-compatible broker.
chart_identity = actions_support.chart_identity
unbound_identity = actions_support.unbound_identity
chart_dispatcher = actions_support.chart_dispatcher
alertmanager = integration_actions.alertmanager
alertmanager_config = integration_actions.alertmanager_config
kafka_bootstrap = integration.kafka_bootstrap


@pytest.fixture
def chart_values() -> dict[str, Any]:
    """The chart installed with actions.owners on: ``serve`` below runs with Tribunal's own defaults
    (owners followed), which that grants; the shipped rules use no terminate."""
    return OWNERS_ON


def shell_alert(workload: Workload, **overrides: Any) -> dict[str, Any]:
    """Falco's "Terminal shell in container" about the workload's pod."""
    alert = falco_alert(**overrides)
    alert["output_fields"] = {
        **alert["output_fields"],
        "k8s.ns.name": workload.namespace,
        "k8s.pod.name": workload.pod,
    }
    return alert


async def alerts_for(alertmanager: str, pod: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{alertmanager}/api/v2/alerts") as response:
        alerts: list[dict[str, Any]] = await response.json()
    return [a for a in alerts if a["labels"].get("pod") == pod]


async def cluster_state(api: client.ApiClient, workload: Workload) -> dict[str, Any]:
    """What the shell-in-container rule writes, read back as the admin."""
    pod = await read_pod(api, workload.namespace, workload.pod)
    assert pod is not None
    deployment = await read_object(api, workload.namespace, "Deployment", workload.deployment)
    policies = await client.NetworkingV1Api(api).list_namespaced_network_policy(workload.namespace)
    return {
        "pod": pod["metadata"],
        "deployment": deployment["metadata"],
        "events": [e["reason"] for e in await events_about(api, workload.namespace, workload.pod)],
        "network_policies": [p.metadata.name for p in policies.items],
    }


def assert_shell_response(state: dict[str, Any], *, owners: bool = True) -> None:
    pod = state["pod"]
    assert pod["annotations"]["tribunal.io/violated-policies"].split(",").count("shell_in_container") == 1
    assert pod["annotations"]["tribunal.io/rule"] == "shell-in-container"
    assert pod["labels"]["tribunal.io/quarantine"] == "true"
    if owners:
        assert state["deployment"]["annotations"]["tribunal.io/rule"] == "shell-in-container"
    else:  # the chart grants no patch on workloads, and Tribunal does not try
        assert "annotations" not in state["deployment"]
    assert state["events"] == ["PolicyViolation"]
    assert state["network_policies"] == ["tribunal-quarantine"]


@pytest.mark.parametrize("chart_values", [OWNERS_ON, {}], ids=["owners", "default"])
async def test_falco_shell_in_container_annotates_records_isolates_and_alerts(
    api: client.ApiClient,
    namespace: str,
    alertmanager: str,
    chart_values: dict[str, Any],
    chart_dispatcher: MakeDispatcher,
) -> None:
    """With the chart's default values the Deployment is left alone (owners off); with owners on it
    is annotated too. Either way every action succeeds: nothing is refused by RBAC."""
    owners = bool(chart_values.get("actions", {}).get("owners"))
    workload = await deployment_workload(api, namespace)
    runtime = PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR)
    evidence = parse_evidence(shell_alert(workload), "falco-events[0]@1")
    verdict = runtime.judge.judge(evidence)
    assert "shell_in_container" in {v.policy for v in verdict.violations}

    dispatcher = await chart_dispatcher(rules_dir=RULES_DIR, alertmanager_url=alertmanager)  # shipped rules
    outcomes = await dispatcher.dispatch(evidence, verdict)
    by_action = {o["action"]: o for o in outcomes if o["rule"] == "shell-in-container"}
    assert {a: o["status"] for a, o in by_action.items()} == {
        "annotate": "success",
        "event": "success",
        "quarantine": "success",
        "alert": "success",
    }
    state = await cluster_state(api, workload)
    assert_shell_response(state, owners=owners)
    assert by_action["annotate"]["detail"]["patched"][0] == f"Pod/{workload.pod}"
    assert ("Deployment/web" in by_action["annotate"]["detail"]["patched"]) is owners
    [fired] = await alerts_for(alertmanager, workload.pod)
    assert (fired["labels"]["policy"], fired["labels"]["team"]) == ("shell_in_container", "security")
    assert fired["labels"]["namespace"] == namespace

    # the same alert again inside the rule's 10-minute window: nothing more is written
    again = await dispatcher.dispatch(evidence, verdict)
    assert {o["status"] for o in again if o["rule"] == "shell-in-container"} == {"deduplicated"}
    assert await cluster_state(api, workload) == state


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve(
    chart_identity: Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartServer]:
    """``await serve(**settings)``: the service as ``tribunal serve`` builds it, recording in SQLite,
    its cluster actions acting as the chart's ServiceAccount; stopped after the test."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        settings = Settings.model_validate(
            {
                "host": "127.0.0.1",
                "port": 0,
                "policy_dir": POLICY_DIR,
                "rules_dir": RULES_DIR,
                "namespace": RELEASE_NAMESPACE,
                "database_url": f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}",
                "actions": {"state_dir": tmp_path / "state", "kubeconfig": chart_identity.kubeconfig},
                "judge_workers": 0,
                "auth": {"anonymous": True},  # who may read /verdicts is tests/e2e/test_auth.py's
                "plain_http": True,  # TLS is tests/e2e/test_admission.py's
                **overrides,
            }
        )
        server = build_server(settings)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(600):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_falco_alert_on_kafka_annotates_isolates_records_and_alerts(
    api: client.ApiClient,
    namespace: str,
    serve: StartServer,
    kafka_bootstrap: str,
    alertmanager: str,
) -> None:
    workload = await deployment_workload(api, namespace)
    prefix = unique("e2e")
    falco_topic = f"{prefix}-falco"
    await create_topics(
        kafka_bootstrap,
        {falco_topic: 1, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1, f"{prefix}-audit": 1},
    )
    server = await serve(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=f"{falco_topic}=falco",
        kafka_group_id=prefix,
        kafka_verdict_topic=f"{prefix}-verdicts",
        kafka_dlq_topic=f"{prefix}-dlq",
        kafka_audit_topic=f"{prefix}-audit",
        alertmanager_url=alertmanager,
    )
    alert = shell_alert(workload, uuid=str(uuid.uuid4()))
    await produce(kafka_bootstrap, falco_topic, [json.dumps(alert).encode()])

    async def responded() -> dict[str, Any]:
        state = await cluster_state(api, workload)
        try:
            assert_shell_response(state)  # everything the rule writes, the Deployment's annotations last
        except (AssertionError, KeyError):
            return {}
        return state

    state = await eventually(responded, "the annotations, the Event and the quarantine")
    [fired] = await eventually(lambda: alerts_for(alertmanager, workload.pod), "the Alertmanager alert")
    assert (fired["labels"]["policy"], fired["labels"]["team"]) == ("shell_in_container", "security")

    async def recorded() -> list[str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.url}/verdicts", params={"kind": "falco"}) as response,
        ):
            page: dict[str, Any] = await response.json()
        return [item["evidence_id"] for item in page["items"]]

    assert await eventually(recorded, "the verdict in the record") == [alert["uuid"]]

    # Redelivered (same uuid): known as a duplicate, and nothing in the cluster changes again.
    def duplicates() -> float:
        labels = {"source": "kafka", "kind": "falco"}
        return server.registry.get_sample_value("tribunal_evidence_duplicates_total", labels) or 0.0

    await produce(kafka_bootstrap, falco_topic, [json.dumps(alert).encode()])

    async def seen_again() -> bool:
        return duplicates() == 1

    await eventually(seen_again, "the redelivered alert consumed")
    assert await cluster_state(api, workload) == state
    assert len(await alerts_for(alertmanager, workload.pod)) == 1
