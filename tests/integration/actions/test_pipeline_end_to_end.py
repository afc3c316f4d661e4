"""The whole service wired as `tribunal serve` runs it, with the shipped response rules: a Falco
"shell in container" alert produced to Kafka (real Tansu broker) leads to an annotated pod, an Event,
a quarantine NetworkPolicy (kubernetes-asyncio against the test API server) and an alert in a real
Alertmanager; a Trivy report with a fixable critical CVE leads to its image being denied at admission."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import PROJECT, falco_alert, pod, review
from tests.integration.conftest import StartServer
from tests.integration.kafka_support import create_topics, produce, unique
from tests.kube_api import TestApiServer


async def _eventually(check: Any, what: str, attempts: int = 300) -> Any:
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_falco_alert_on_kafka_annotates_isolates_records_and_alerts(  # type: ignore[no-untyped-def]
    start_server: StartServer,
    kafka_bootstrap: str,
    kube_api: TestApiServer,
    alertmanager: str,
    tmp_path: Path,
) -> None:
    kube_api.add_owner("deployments", "shop", "web")
    kube_api.add_owner("replicasets", "shop", "web-7d", owner=("Deployment", "web"))
    kube_api.add_pod("shop", "web-7d4", owner=("ReplicaSet", "web-7d"))
    prefix = unique("e2e")
    falco_topic, verdicts = f"{prefix}-falco", f"{prefix}-verdicts"
    await create_topics(
        kafka_bootstrap, {falco_topic: 1, verdicts: 1, f"{prefix}-dlq": 1, f"{prefix}-audit": 1}
    )
    server, _ = await start_server(
        store=True,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=f"{falco_topic}=falco",
        kafka_group_id=prefix,
        kafka_verdict_topic=verdicts,
        kafka_dlq_topic=f"{prefix}-dlq",
        kafka_audit_topic=f"{prefix}-audit",
        alertmanager_url=alertmanager,
        actions={"kube_api_url": kube_api.url, "state_dir": tmp_path / "state"},
    )
    alert = falco_alert()
    await produce(kafka_bootstrap, falco_topic, [json.dumps(alert).encode()])

    async def quarantined() -> bool:
        labels = kube_api.pods[("shop", "web-7d4")]["metadata"].get("labels") or {}
        annotations = kube_api.pods[("shop", "web-7d4")]["metadata"].get("annotations") or {}
        return (
            ("shop", "tribunal-quarantine") in kube_api.network_policies
            and bool(kube_api.events)
            and "tribunal.io/quarantine" in labels
            and "tribunal.io/violated-policies" in annotations
        )

    await _eventually(quarantined, "the quarantine NetworkPolicy and the Event")
    pod_meta = kube_api.pods[("shop", "web-7d4")]["metadata"]
    assert "shell_in_container" in pod_meta["annotations"]["tribunal.io/violated-policies"].split(",")
    assert pod_meta["labels"]["tribunal.io/quarantine"] == "true"
    assert [e["reason"] for e in kube_api.events] == ["PolicyViolation"]
    assert kube_api.invalid == []

    async def alerted() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(f"{alertmanager}/api/v2/alerts") as resp:
            found: list[dict[str, Any]] = await resp.json()
        return [a for a in found if a["labels"].get("policy") == "shell_in_container"]

    [fired] = await _eventually(alerted, "the Alertmanager alert")
    assert fired["labels"]["pod"] == "web-7d4" and fired["labels"]["team"] == "security"

    async def recorded() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session,
            session.get(f"{server.url}/verdicts", params={"kind": "falco"}) as resp,
        ):
            body: dict[str, Any] = await resp.json()
        return body if body["items"] else {}

    page = await _eventually(recorded, "the verdict in the record")
    assert [item["evidence_id"] for item in page["items"]] == [alert["uuid"]]

    # Redelivered (same uuid): recorded once already, so nothing is acted on again.
    requests_before = len(kube_api.requests)
    await produce(kafka_bootstrap, falco_topic, [json.dumps(alert).encode()])
    await asyncio.sleep(1.0)  # give a wrong second action the time to show up
    assert len(kube_api.requests) == requests_before


async def test_trivy_fixable_critical_cve_blocks_the_image_at_admission(
    start_server: StartServer, http, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(store=True, actions={"state_dir": tmp_path / "state"})
    report = (PROJECT / "examples" / "trivy" / "checkout-image.json").read_bytes()
    image = "ghcr.io/example/checkout:1.4.2"
    clean_pod = {
        "name": "app",
        "image": image,
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }

    async def admit(uid: str) -> dict[str, Any]:
        async with http.post(f"{server.url}/validate", json=review(pod(clean_pod), uid=uid)) as resp:
            answer: dict[str, Any] = (await resp.json())["response"]
        return answer

    assert (await admit("before"))["allowed"] is True
    async with http.post(
        f"{server.url}/ingest/trivy", data=report, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 202 and (await resp.json())["decision"] == "deny"

    attempt = 0

    async def blocked() -> dict[str, Any]:
        nonlocal attempt
        attempt += 1
        answer = await admit(f"after-{attempt}")
        return answer if answer["allowed"] is False else {}

    answer = await _eventually(blocked, "the image denied at admission")
    assert "[blocked_images]" in answer["status"]["message"]
    state = json.loads((tmp_path / "state" / "images.json").read_text())
    assert any("checkout" in key for key in json.dumps(state).split('"'))
