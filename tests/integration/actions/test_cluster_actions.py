"""Cluster actions against the stand-in API server (tests/kube_api.py), through the real
kubernetes-asyncio client, for the faults a real API server does not produce on demand: a 409 from a
race with another replica, transient 429 and 500 answers that clear, and a server that keeps failing.
The stand-in validates every object it is sent against the Kubernetes schemas.

Everything else the cluster actions do (what they write, the real server's 403, 404 and
PodDisruptionBudget 429, the guards, dry-run) is tested on a real kube-apiserver under the chart's
RBAC: tests/e2e/test_cluster_actions.py, test_actions_rbac.py and test_actions_pipeline.py."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.actions.conftest import MakeDispatcher, verdict
from tests.kube_api import TestApiServer


def rules(*actions: str, dedupe: str = "0", **match: Any) -> str:
    lines = "\n".join(f"      - {a}" for a in actions)
    return f"rules:\n  - name: r\n    dedupe: {dedupe}\n    actions:\n{lines}\n"


@pytest.fixture
def cluster(kube_api: TestApiServer) -> TestApiServer:
    """shop/web-7d4 owned by ReplicaSet web-7d, owned by Deployment web."""
    kube_api.add_owner("deployments", "shop", "web")
    kube_api.add_owner("replicasets", "shop", "web-7d", owner=("Deployment", "web"))
    kube_api.add_pod("shop", "web-7d4", owner=("ReplicaSet", "web-7d"), labels={"app": "web"})
    return kube_api


def kube(cluster: TestApiServer, **actions: Any) -> dict[str, Any]:
    return {"actions": {"kube_api_url": cluster.url, **actions}}


async def test_quarantine_treats_409_on_create_as_already_there(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    cluster.fail("POST", r"/networkpolicies$", 409)
    dispatcher = await make_dispatcher(rules("type: quarantine"), **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["detail"]["created"]) == ("success", 1, False)
    assert cluster.pods[("shop", "web-7d4")]["metadata"]["labels"]["tribunal.io/quarantine"] == "true"


@pytest.mark.parametrize("status", [429, 500])
async def test_transient_answers_are_retried(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher, status: int
) -> None:
    cluster.fail("PATCH", r"/pods/web-7d4$", status, times=2)
    registry = CollectorRegistry()
    text = "rules:\n  - name: r\n    dedupe: 0\n    actions:\n      - type: annotate\n        params: {owners: false}\n"
    dispatcher = await make_dispatcher(text, registry=registry, **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"]) == ("success", 3)
    assert [r.method for r in cluster.mutations()] == ["PATCH", "PATCH", "PATCH"]
    labels = {"action": "annotate", "target": "kubernetes"}
    assert registry.get_sample_value("tribunal_action_retries_total", labels) == 2
    assert registry.get_sample_value("tribunal_action_attempts_total", labels) == 3
    assert registry.get_sample_value("tribunal_actions_total", {**labels, "status": "success"}) == 1


async def test_retries_are_bounded(cluster: TestApiServer, make_dispatcher: MakeDispatcher) -> None:
    cluster.fail("POST", r"/events$", 500, times=100)
    dispatcher = await make_dispatcher(rules("type: event"), **kube(cluster, max_attempts=3))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["http_status"]) == ("failure", 3, 500)
    assert len(cluster.mutations()) == 3


async def test_the_test_api_server_rejects_objects_that_break_the_schema(kube_api: TestApiServer) -> None:
    """The validation the tests above rely on really rejects a bad object."""
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x"},
        "spec": {"podSelector": {}, "policyTypes": "Ingress"},
    }
    async with aiohttp.ClientSession() as session:
        url = f"{kube_api.url}/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
        async with session.post(url, json=bad) as response:
            assert response.status == 422
    assert len(kube_api.invalid) == 1 and "policyTypes" in kube_api.invalid[0]
