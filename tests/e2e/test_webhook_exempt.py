"""The chart's webhook.exemptUsers and webhook.exemptGroups, as the real kube-apiserver evaluates them
(matchConditions in CEL, beside the chart's system:* one): an exempt user's or group's request is
admitted without Tribunal being called, and a request of anyone else is judged as before (the
conditions compile and evaluate without error, which under failurePolicy Fail would refuse it)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.e2e.conftest import StartTribunal

pytestmark = pytest.mark.e2e

ADMIN = "tribunal-e2e-admin"  # the test's client certificate (tests/e2e/control_plane.py)
ADMIN_GROUP = "system:masters"


def refused_service() -> dict[str, Any]:
    """A Service Tribunal refuses (service_external_ips)."""
    return {
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}, "externalIPs": ["203.0.113.7"]},
    }


@pytest.mark.parametrize(
    "webhook",
    [
        pytest.param({"exemptUsers": ["ci", ADMIN]}, id="user"),
        pytest.param({"exemptGroups": ["cluster-breakglass", ADMIN_GROUP]}, id="group"),
    ],
)
async def test_an_exempt_user_or_group_is_never_sent_to_tribunal(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal, webhook: dict[str, Any]
) -> None:
    published = await tribunal({"failurePolicy": "Fail", **webhook})
    created = await client.CoreV1Api(api).create_namespaced_service(namespace, refused_service())
    assert created.spec.external_ips == ["203.0.113.7"]
    # Tribunal would have refused it (the next test): it was never asked.
    assert published.recorder.records == []


async def test_anyone_else_is_judged_as_before(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    published = await tribunal(
        {"failurePolicy": "Fail", "exemptUsers": ["ci"], "exemptGroups": ["cluster-breakglass"]}
    )
    with pytest.raises(ApiException) as refused:
        await client.CoreV1Api(api).create_namespaced_service(namespace, refused_service())
    assert refused.value.status == 403
    assert "[service_external_ips]" in str(refused.value.body)
    [record] = await published.recorder.wait_for(1)
    assert record.verdict.decision.value == "deny"
