"""Cluster actions through the real kubernetes-asyncio client against the test API server
(tests/kube_api.py), which validates every object against the Kubernetes schemas."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.actions.conftest import MakeDispatcher, verdict
from tests.kube_api import MERGE_PATCH, TestApiServer


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


async def test_annotate_merge_patches_pod_replicaset_and_deployment(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(rules("type: annotate"), **kube(cluster))
    outcomes = await dispatcher.dispatch(None, verdict())
    assert [o["status"] for o in outcomes] == ["success"]
    assert outcomes[0]["detail"]["patched"] == ["Pod/web-7d4", "ReplicaSet/web-7d", "Deployment/web"]
    expected = {
        "metadata": {
            "annotations": {
                "tribunal.io/last-verdict": "deny",
                "tribunal.io/last-verdict-at": "2024-05-01T10:00:00+00:00",
                "tribunal.io/evidence": "falco/ev-1",
                "tribunal.io/violated-policies": "shell_in_container",
                "tribunal.io/violation-counts": "high=1",
                "tribunal.io/rule": "r",
            }
        }
    }
    patches = [(r.path, r.content_type, r.body) for r in cluster.mutations()]
    assert patches == [
        ("/api/v1/namespaces/shop/pods/web-7d4", MERGE_PATCH, expected),
        ("/apis/apps/v1/namespaces/shop/replicasets/web-7d", MERGE_PATCH, expected),
        ("/apis/apps/v1/namespaces/shop/deployments/web", MERGE_PATCH, expected),
    ]
    assert cluster.pods[("shop", "web-7d4")]["metadata"]["annotations"]["tribunal.io/last-verdict"] == "deny"
    assert (
        cluster.owners[("deployments", "shop", "web")]["metadata"]["annotations"]["tribunal.io/rule"] == "r"
    )
    assert "annotations" not in cluster.owners[("deployments", "shop", "web")]["spec"]["template"]["metadata"]
    assert cluster.invalid == []


async def test_label_patches_labels_only(cluster: TestApiServer, make_dispatcher: MakeDispatcher) -> None:
    text = "rules:\n  - name: r\n    dedupe: 0\n    actions:\n      - type: label\n        params: {owners: false, labels: {tribunal.io/team: sec}}\n"
    dispatcher = await make_dispatcher(text, **kube(cluster))
    assert [o["status"] for o in await dispatcher.dispatch(None, verdict())] == ["success"]
    [patch] = cluster.mutations()
    assert patch.body == {
        "metadata": {
            "labels": {
                "tribunal.io/verdict": "deny",
                "tribunal.io/severity": "high",
                "tribunal.io/team": "sec",
            }
        }
    }
    assert cluster.pods[("shop", "web-7d4")]["metadata"]["labels"]["app"] == "web"  # merged, not replaced


async def test_event_is_an_events_k8s_io_warning(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(rules("type: event"), **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["status"] == "success"
    [request] = cluster.mutations()
    assert request.path == "/apis/events.k8s.io/v1/namespaces/shop/events"
    event = request.body
    assert {
        k: event[k] for k in ("apiVersion", "kind", "type", "reason", "action", "reportingController")
    } == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "type": "Warning",
        "reason": "PolicyViolation",
        "action": "Judged",
        "reportingController": "tribunal.io/tribunal",
    }
    assert event["regarding"] == {"apiVersion": "v1", "kind": "Pod", "name": "web-7d4", "namespace": "shop"}
    assert event["note"] == "Tribunal deny (high): shell_in_container: shell_in_container happened"
    assert event["metadata"]["generateName"] == "web-7d4.tribunal-"
    assert cluster.invalid == [] and len(cluster.events) == 1


async def test_quarantine_ensures_deny_all_policy_then_labels_pod(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    cluster.add_pod("shop", "web-other")
    dispatcher = await make_dispatcher(rules("type: quarantine"), **kube(cluster))
    [first] = await dispatcher.dispatch(None, verdict())
    [second] = await dispatcher.dispatch(None, verdict(pod="web-other"))
    assert (first["status"], first["detail"]["created"]) == ("success", True)
    assert (second["status"], second["detail"]["created"]) == ("success", False)  # found it, did not recreate
    expected = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "tribunal-quarantine",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/managed-by": "tribunal"},
        },
        "spec": {
            "podSelector": {"matchLabels": {"tribunal.io/quarantine": "true"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    assert [(r.method, r.path, r.body) for r in cluster.mutations()] == [
        ("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", expected),
        (
            "PATCH",
            "/api/v1/namespaces/shop/pods/web-7d4",
            {"metadata": {"labels": {"tribunal.io/quarantine": "true"}}},
        ),
        (
            "PATCH",
            "/api/v1/namespaces/shop/pods/web-other",
            {"metadata": {"labels": {"tribunal.io/quarantine": "true"}}},
        ),
    ]
    assert cluster.invalid == []


async def test_quarantine_treats_409_on_create_as_already_there(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    cluster.fail("POST", r"/networkpolicies$", 409)
    dispatcher = await make_dispatcher(rules("type: quarantine"), **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["detail"]["created"]) == ("success", 1, False)
    assert cluster.pods[("shop", "web-7d4")]["metadata"]["labels"]["tribunal.io/quarantine"] == "true"


async def test_terminate_evicts_with_policy_v1_eviction(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    text = "rules:\n  - name: r\n    dedupe: 0\n    actions:\n      - type: terminate\n        params: {grace_period_seconds: 5}\n"
    dispatcher = await make_dispatcher(text, **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["status"] == "success"
    [request] = cluster.mutations()
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/shop/pods/web-7d4/eviction")
    assert request.body == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "web-7d4", "namespace": "shop"},
        "deleteOptions": {"gracePeriodSeconds": 5},
    }
    assert ("shop", "web-7d4") not in cluster.pods and cluster.invalid == []


async def test_terminate_delete_mode_sends_grace_period(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    text = "rules:\n  - name: r\n    dedupe: 0\n    actions:\n      - type: terminate\n        params: {mode: delete, grace_period_seconds: 0}\n"
    dispatcher = await make_dispatcher(text, **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["status"] == "success"
    [request] = cluster.mutations()
    assert (request.method, request.path, request.query) == (
        "DELETE",
        "/api/v1/namespaces/shop/pods/web-7d4",
        {"gracePeriodSeconds": "0"},
    )


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


async def test_other_4xx_stops_at_once(cluster: TestApiServer, make_dispatcher: MakeDispatcher) -> None:
    cluster.fail("POST", r"/eviction$", 403, times=5)
    dispatcher = await make_dispatcher(rules("type: terminate"), **kube(cluster))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["http_status"], outcome["retriable"]) == (
        "failure",
        1,
        403,
        False,
    )
    assert len(cluster.mutations()) == 1 and ("shop", "web-7d4") in cluster.pods


async def test_retries_are_bounded(cluster: TestApiServer, make_dispatcher: MakeDispatcher) -> None:
    cluster.fail("POST", r"/events$", 500, times=100)
    dispatcher = await make_dispatcher(rules("type: event"), **kube(cluster, max_attempts=3))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"], outcome["http_status"]) == ("failure", 3, 500)
    assert len(cluster.mutations()) == 3


async def test_failed_action_is_not_deduplicated_next_time(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    cluster.fail("POST", r"/events$", 403)
    dispatcher = await make_dispatcher(rules("type: event", dedupe="10m"), **kube(cluster))
    [first] = await dispatcher.dispatch(None, verdict())
    [second] = await dispatcher.dispatch(None, verdict())
    [third] = await dispatcher.dispatch(None, verdict())
    assert [first["status"], second["status"], third["status"]] == ["failure", "success", "deduplicated"]


async def test_blast_radius_caps_destructive_actions_per_namespace(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    for name in ("a", "b", "c"):
        cluster.add_pod("shop", name)
    cluster.add_pod("blog", "d")
    dispatcher = await make_dispatcher(
        rules("type: quarantine", "type: annotate"),
        actions={"kube_api_url": cluster.url, "destructive_per_minute": 2},
    )
    statuses = []
    for ns, pod in (("shop", "a"), ("shop", "b"), ("shop", "c"), ("blog", "d")):
        outcomes = await dispatcher.dispatch(None, verdict(namespace=ns, pod=pod))
        statuses.append([o["status"] for o in outcomes])
    assert statuses == [
        ["success", "success"],
        ["success", "success"],
        ["rate_limited", "success"],
        ["success", "success"],
    ]
    assert "tribunal.io/quarantine" not in cluster.pods[("shop", "c")]["metadata"]["labels"]


async def test_protected_pod_is_never_touched(
    kube_api: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    kube_api.add_pod("shop", "web-7d4", labels={"tribunal.io/protected": "true"})
    dispatcher = await make_dispatcher(
        rules("type: quarantine", "type: terminate", "type: annotate", "type: label"), **kube(kube_api)
    )
    outcomes = await dispatcher.dispatch(None, verdict())
    assert [o["status"] for o in outcomes] == ["skipped"] * 4
    assert all("protected" in o["reason"] for o in outcomes)
    assert kube_api.mutations() == []


async def test_protected_owner_is_not_patched(
    kube_api: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    kube_api.add_owner("deployments", "shop", "web", labels={"tribunal.io/protected": "true"})
    kube_api.add_owner("replicasets", "shop", "web-7d", owner=("Deployment", "web"))
    kube_api.add_pod("shop", "web-7d4", owner=("ReplicaSet", "web-7d"))
    dispatcher = await make_dispatcher(rules("type: annotate"), **kube(kube_api))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["detail"]["patched"] == ["Pod/web-7d4", "ReplicaSet/web-7d"]
    assert outcome["detail"]["protected"] == ["Deployment/web"]
    assert [r.path for r in kube_api.mutations()][-1].endswith("/replicasets/web-7d")


async def test_exempt_namespace_is_never_touched(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    cluster.add_pod("kube-system", "coredns-1")
    dispatcher = await make_dispatcher(rules("type: quarantine", "type: event"), **kube(cluster))
    outcomes = await dispatcher.dispatch(None, verdict(namespace="kube-system", pod="coredns-1"))
    assert [o["status"] for o in outcomes] == ["exempt", "exempt"]
    assert cluster.requests == []


async def test_dry_run_sends_nothing_and_says_what_it_would_do(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(
        rules("type: annotate", "type: event", "type: quarantine", "type: terminate"),
        dry_run=True,
        **kube(cluster),
    )
    outcomes = await dispatcher.dispatch(None, verdict())
    assert [o["status"] for o in outcomes] == ["dry_run"] * 4
    assert outcomes[2]["plan"]["network_policy"]["spec"]["podSelector"] == {
        "matchLabels": {"tribunal.io/quarantine": "true"}
    }
    assert outcomes[3]["plan"]["would"] == "evict pod shop/web-7d4 (grace 30s)"
    assert cluster.requests == []


async def test_rule_dry_run_applies_to_that_rule_only(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    text = (
        "rules:\n  - name: quiet\n    dry_run: true\n    dedupe: 0\n    actions: [{type: quarantine}]\n"
        "  - name: loud\n    dedupe: 0\n    actions: [{type: event}]\n"
    )
    dispatcher = await make_dispatcher(text, **kube(cluster))
    outcomes = await dispatcher.dispatch(None, verdict())
    assert [(o["rule"], o["status"]) for o in outcomes] == [("quiet", "dry_run"), ("loud", "success")]
    assert [r.path for r in cluster.mutations()] == ["/apis/events.k8s.io/v1/namespaces/shop/events"]


async def test_terminate_runs_after_the_other_actions_of_its_rule(
    cluster: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(rules("type: terminate", "type: label"), **kube(cluster))
    outcomes = await dispatcher.dispatch(None, verdict())
    assert [o["status"] for o in outcomes] == ["success", "success"]
    assert cluster.mutations()[-1].path.endswith("/eviction")


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


async def test_a_vanished_owner_ends_the_owner_chain(
    kube_api: TestApiServer, make_dispatcher: MakeDispatcher
) -> None:
    kube_api.add_pod("shop", "web-7d4", owner=("ReplicaSet", "gone"))
    dispatcher = await make_dispatcher(rules("type: annotate"), **kube(kube_api))
    [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["detail"]["patched"]) == ("success", ["Pod/web-7d4"])
