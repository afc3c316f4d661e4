"""The Kubernetes API failing under the cluster actions: `tribunal consume` judges Falco alerts about
pods of a real kube-apiserver (with etcd: tests/e2e/control_plane.py) and, for each deny, writes an
Event about the pod and annotates it. The API server is stopped mid-stream, stays down while more
alerts are judged, and is started again. The actions that failed meanwhile stay in the outbox and are
taken once it is back: every deny gets exactly one Event (Events are not idempotent: a second try of
one that went out would show as a second Event), its annotation and its quarantine (the deny-all
NetworkPolicy and the pod's label), and each outcome is recorded once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from kubernetes_asyncio import client

from tests.conftest import falco_alert
from tests.e2e.actions_support import create_pod, read_pod
from tests.e2e.control_plane import ControlPlane
from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    eventually,
    fetch,
    kafka_settings,
    pg_fetch,
    rules_with,
    settle_then_stop,
    tribunal_env,
    tribunal_process,
)
from tests.integration.kafka_support import create_topics, produce, read_topic, unique
from tests.integration.proxy import CuttableProxy

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PODS = 40  # one Falco alert about each
BEFORE = 20  # alerts produced before the API server is stopped
DOWN_AT = 5  # Events written when it is stopped
RULE = (
    "rules:\n  - name: shell\n    match: {kinds: [falco], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: event}, {type: annotate, params: {owners: false}}, {type: quarantine}]\n"
)


async def events_by_pod(api: client.ApiClient, namespace: str) -> Counter[str]:
    listed = await client.EventsV1Api(api).list_namespaced_event(namespace)
    return Counter(e.regarding.name for e in listed.items if e.reporting_controller == "tribunal.io/tribunal")


@bounded(150)
async def test_the_api_server_down_and_back_under_the_cluster_actions_takes_each_action_once(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    kafka_bootstrap: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    _, direct, _ = pg_through_proxy
    pods = [f"web-{i}" for i in range(PODS)]
    for name in pods:
        await create_pod(api, namespace, name)
    alerts = []
    for name in pods:
        alert = falco_alert(uuid=str(uuid.uuid4()))
        alert["output_fields"] = {**alert["output_fields"], "k8s.ns.name": namespace, "k8s.pod.name": name}
        alerts.append((orjson.dumps(alert), alert["uuid"]))
    prefix = unique("kubedown")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    env = tribunal_env(
        tmp_path,
        database_url=direct,
        rules_dir=str(rules_with(tmp_path, RULE)),
        **kafka_settings(kafka_bootstrap, prefix),
        actions__kubeconfig=str(control_plane.admin_kubeconfig),
        actions__max_attempts="2",
        actions__backoff_seconds="0.1",
        actions__timeout_seconds="2",
        actions__outbox_grace_seconds="1",
        actions__destructive_per_minute="1000",  # the blast-radius guard is not under test here
    )
    log = tmp_path / "consume.log"
    stopped = False
    try:
        async with tribunal_process("consume", env, log) as process:
            await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts[:BEFORE]])

            async def some_events() -> bool:
                assert process.returncode is None, log.read_text()
                return sum((await events_by_pod(api, namespace)).values()) >= DOWN_AT

            await eventually(some_events, f"{DOWN_AT} Events written", 60)
            await asyncio.to_thread(control_plane.stop_apiserver)
            stopped = True
            await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts[BEFORE:]])

            async def all_recorded() -> bool:
                assert process.returncode is None, log.read_text()
                rows = await fetch(direct, "SELECT count(*) FROM verdicts")
                return bool(rows) and rows[0][0] == PODS

            await eventually(all_recorded, "every alert recorded while the API server is down", 60)
            await asyncio.sleep(2)  # the actions fail their attempts meanwhile
            [(waiting,)] = await pg_fetch(direct, "SELECT count(*) FROM pending_actions")
            await control_plane.start_apiserver_async()
            stopped = False
            await settle_then_stop(process, direct, log, "once the API server is back")
    finally:
        if stopped:  # the session's control plane is left running for the next test
            await control_plane.start_apiserver_async()
    assert process.returncode == 0, log.read_text()

    verdicts = await pg_fetch(direct, "SELECT evidence_id, decision FROM verdicts")
    denied = {r["evidence_id"] for r in verdicts if r["decision"] == "deny"}
    pod_of = {i: orjson.loads(v)["output_fields"]["k8s.pod.name"] for v, i in alerts}
    events = await events_by_pod(api, namespace)
    annotated, quarantined = set(), set()
    for name in pods:
        pod = await read_pod(api, namespace, name)
        if pod and "tribunal.io/evidence" in (pod["metadata"].get("annotations") or {}):
            annotated.add(name)
        if pod and "tribunal.io/quarantine" in (pod["metadata"].get("labels") or {}):
            quarantined.add(name)
    policies = await client.NetworkingV1Api(api).list_namespaced_network_policy(namespace)
    outcomes = await pg_fetch(direct, "SELECT evidence_id, outcome, status FROM action_outcomes")
    statuses = Counter(f"{orjson.loads(r['outcome'])['action']} {r['status']}" for r in outcomes)
    denied_pods = {pod_of[i] for i in denied}
    lost = (denied_pods - set(events)) | (denied_pods - annotated) | (denied_pods - quarantined)
    duplicates = sum(n - 1 for n in events.values())
    ledger(
        FaultRow(
            fault="the Kubernetes API server (real kube-apiserver and etcd) down and back under the "
            "cluster actions (an Event, annotate and quarantine per deny)",
            injected=f"the API server stopped once {DOWN_AT}+ Events were written; started again after "
            f"the other {PODS - BEFORE} alerts were recorded ({waiting} verdicts then waiting in the outbox)",
            in_=f"{PODS} Falco alerts on Kafka, each about its own pod",
            recorded=f"{len({r['evidence_id'] for r in verdicts})} verdicts",
            dead_lettered=len(await read_topic(kafka_bootstrap, f"{prefix}-dlq")),
            actions=f"{sum(events.values())} Events, {len(annotated)} pods annotated, {len(quarantined)} "
            f"quarantined ({len(policies.items)} NetworkPolicy), for {len(denied)} denies; outcomes "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            duplicates=f"{duplicates} Events",
            lost=len(lost),
        )
    )
    assert len(verdicts) == PODS and denied
    assert lost == set(), f"denied pods without their Event or annotation: {sorted(lost)}"
    assert duplicates == 0, f"Events written twice: {[p for p, n in events.items() if n > 1]}"
    assert set(events) == denied_pods
    assert len(policies.items) == 1
    assert statuses == {f"{a} success": len(denied) for a in ("event", "annotate", "quarantine")}
