"""The shipped example rules end to end: real policies judge real-shaped evidence, the dispatcher acts
through the real clients (a real Alertmanager). The Falco rule's cluster actions run end to end on a
real kube-apiserver: tests/e2e/test_actions_pipeline.py."""

from __future__ import annotations

import aiohttp

from tests.conftest import POLICY_DIR, RULES_DIR, pod, review
from tests.integration.actions.conftest import MakeDispatcher
from tribunal.model import parse_evidence
from tribunal.policy import PolicyRuntime


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
