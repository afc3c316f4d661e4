"""The shipped example rules end to end: real policies judge real-shaped evidence, the dispatcher acts
through the real clients (kubernetes-asyncio against the test API server, a real Alertmanager)."""

from __future__ import annotations

import aiohttp

from tests.conftest import POLICY_DIR, RULES_DIR, falco_alert, pod, review
from tests.integration.actions.conftest import MakeDispatcher
from tests.kube_api import TestApiServer
from tribunal.model import parse_evidence
from tribunal.policy import PolicyRuntime


async def test_falco_shell_in_container_annotates_records_isolates_and_alerts(
    kube_api: TestApiServer, alertmanager: str, make_dispatcher: MakeDispatcher
) -> None:
    kube_api.add_owner("deployments", "shop", "web")
    kube_api.add_owner("replicasets", "shop", "web-7d", owner=("Deployment", "web"))
    kube_api.add_pod("shop", "web-7d4", owner=("ReplicaSet", "web-7d"))
    runtime = PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR)
    evidence = parse_evidence(falco_alert(), "falco-events[0]@1")
    verdict = runtime.judge.judge(evidence)
    assert "shell_in_container" in {v.policy for v in verdict.violations}

    dispatcher = await make_dispatcher(
        rules_dir=RULES_DIR, alertmanager_url=alertmanager, actions={"kube_api_url": kube_api.url}
    )
    outcomes = await dispatcher.dispatch(evidence, verdict)
    by_action = {o["action"]: o for o in outcomes if o["rule"] == "shell-in-container"}
    assert {a: o["status"] for a, o in by_action.items()} == {
        "annotate": "success",
        "event": "success",
        "quarantine": "success",
        "alert": "success",
    }
    pod_meta = kube_api.pods[("shop", "web-7d4")]["metadata"]
    assert (
        pod_meta["annotations"]["tribunal.io/violated-policies"].split(",").count("shell_in_container") == 1
    )
    assert pod_meta["labels"]["tribunal.io/quarantine"] == "true"
    assert (
        kube_api.owners[("deployments", "shop", "web")]["metadata"]["annotations"]["tribunal.io/rule"]
        == "shell-in-container"
    )
    assert [e["reason"] for e in kube_api.events] == ["PolicyViolation"]
    assert ("shop", "tribunal-quarantine") in kube_api.network_policies
    assert kube_api.invalid == []
    async with aiohttp.ClientSession() as session, session.get(f"{alertmanager}/api/v2/alerts") as response:
        alerts = await response.json()
    assert {(a["labels"]["policy"], a["labels"]["pod"], a["labels"]["team"]) for a in alerts} >= {
        ("shell_in_container", "web-7d4", "security")
    }

    # the same alert again inside the 10-minute window: nothing more is sent
    requests_before = len(kube_api.requests)
    again = await dispatcher.dispatch(evidence, verdict)
    assert {o["status"] for o in again if o["rule"] == "shell-in-container"} == {"deduplicated"}
    assert len(kube_api.requests) == requests_before


async def test_admission_deny_alerts(alertmanager: str, make_dispatcher: MakeDispatcher) -> None:
    runtime = PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR)
    privileged = pod({"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}})
    evidence = parse_evidence(review(privileged, uid="adm-1"), "review")
    verdict = runtime.judge.judge(evidence)
    assert verdict.decision.value == "deny"
    dispatcher = await make_dispatcher(rules_dir=RULES_DIR, alertmanager_url=alertmanager)
    outcomes = await dispatcher.dispatch(evidence, verdict)
    assert [(o["rule"], o["status"]) for o in outcomes] == [("admission-denied", "success")]
    async with aiohttp.ClientSession() as session, session.get(f"{alertmanager}/api/v2/alerts") as response:
        alerts = await response.json()
    policies = {a["labels"]["policy"] for a in alerts}
    assert "privileged_containers" in policies
    assert {a["labels"]["kind"] for a in alerts} == {"admission"}
