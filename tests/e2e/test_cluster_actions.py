"""The cluster actions' behaviour on a real kube-apiserver, each acting as the chart's ServiceAccount
through a dispatcher built as ``tribunal serve`` builds it, with the settings the chart's Deployment
passes: what lands on the objects (read back as the admin), what the real server answers (403 from
RBAC, 404, 429 from a PodDisruptionBudget), and the guards (protected objects, exempt namespaces,
blast radius, dry-run) leaving the cluster untouched. The chart's defaults enable neither owners nor
terminate: the tests of those install it with the values that do (``@with_values``).

Faults a real server does not produce on demand (a 409 race, a transient 429 or 500) are tested
against the stand-in, tests/integration/actions/test_cluster_actions.py."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from tests.e2e import actions_support
from tests.e2e.actions_support import (
    ALL_ON,
    OWNERS_ON,
    TERMINATE_ON,
    Identity,
    MakeDispatcher,
    create_pod,
    deployment_workload,
    events_about,
    read_object,
    read_pod,
    rules,
    with_values,
)
from tests.e2e.conftest import RELEASE_NAMESPACE
from tests.integration.actions.conftest import verdict

pytestmark = pytest.mark.e2e

# The fixtures of actions_support that this module's tests use.
chart_identity = actions_support.chart_identity
unbound_identity = actions_support.unbound_identity
chart_dispatcher = actions_support.chart_dispatcher
chart_values = actions_support.chart_values

VERDICT_ANNOTATIONS = {
    "tribunal.io/last-verdict": "deny",
    "tribunal.io/last-verdict-at": "2024-05-01T10:00:00+00:00",
    "tribunal.io/evidence": "falco/ev-1",
    "tribunal.io/violated-policies": "shell_in_container",
    "tribunal.io/violation-counts": "high=1",
    "tribunal.io/rule": "r",
}


def managed_by(obj: dict[str, Any], manager: str) -> list[dict[str, Any]]:
    """The managedFields entries of ``manager``: which fields the API server says it wrote."""
    return [m for m in obj["metadata"].get("managedFields") or [] if m["manager"] == manager]


def owned_keys(entry: dict[str, Any], field: str) -> set[str]:
    fields = entry["fieldsV1"]["f:metadata"].get(f"f:{field}") or {}
    return {key.removeprefix("f:") for key in fields if key.startswith("f:")}


async def network_policies(api: client.ApiClient, namespace: str) -> list[str]:
    listed = await client.NetworkingV1Api(api).list_namespaced_network_policy(namespace)
    return [p.metadata.name for p in listed.items]


@with_values(OWNERS_ON, "owners")
async def test_annotate_merge_patches_the_pod_replicaset_and_deployment_metadata_only(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(api, namespace)
    before = await read_object(api, namespace, "Deployment", "web")
    dispatcher = await chart_dispatcher(rules("{type: annotate}"))
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert outcome["status"] == "success", outcome
    assert outcome["detail"]["patched"] == ["Pod/web-7d4", "ReplicaSet/web-7d", "Deployment/web"]

    pod = await read_pod(api, namespace, workload.pod)
    assert pod is not None
    replicaset = await read_object(api, namespace, "ReplicaSet", "web-7d")
    deployment = await read_object(api, namespace, "Deployment", "web")
    for obj in (pod, replicaset, deployment):
        assert obj["metadata"]["annotations"] == VERDICT_ANNOTATIONS, obj["kind"]
        # the API server's record of who wrote what: Tribunal's field manager, metadata only
        [entry] = managed_by(obj, "tribunal")
        assert entry["operation"] == "Update" and set(entry["fieldsV1"]) == {"f:metadata"}
        assert owned_keys(entry, "annotations") == set(VERDICT_ANNOTATIONS)
    # no rollout: the Deployment's spec, pod template included, is what it was. (Its generation does
    # move: the API server bumps it on annotation changes, which its controller copies to the
    # ReplicaSet; an unchanged template makes no new ReplicaSet.)
    assert deployment["spec"] == before["spec"]
    assert pod["metadata"]["labels"] == {"app": "web"}


@with_values(OWNERS_ON, "owners")
async def test_label_merges_labels_into_the_pod_only_when_owners_is_false(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(api, namespace)
    dispatcher = await chart_dispatcher(
        rules("{type: label, params: {owners: false, labels: {tribunal.io/team: sec}}}")
    )
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert (outcome["status"], outcome["detail"]["patched"]) == ("success", ["Pod/web-7d4"])
    pod = await read_pod(api, namespace, workload.pod)
    assert pod is not None
    assert pod["metadata"]["labels"] == {
        "app": "web",  # merged, not replaced
        "tribunal.io/verdict": "deny",
        "tribunal.io/severity": "high",
        "tribunal.io/team": "sec",
    }
    assert "annotations" not in pod["metadata"]
    replicaset = await read_object(api, namespace, "ReplicaSet", "web-7d")
    assert replicaset["metadata"]["labels"] == {"app": "web"}
    assert managed_by(replicaset, "tribunal") == []


async def test_event_is_an_events_k8s_io_warning_that_describe_shows(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(api, namespace)
    dispatcher = await chart_dispatcher(rules("{type: event}"))
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert outcome["status"] == "success", outcome
    [listed] = await events_about(api, namespace, workload.pod)
    assert listed["metadata"]["name"] == outcome["detail"]["event"]
    event = api.sanitize_for_serialization(
        await client.EventsV1Api(api).read_namespaced_event(outcome["detail"]["event"], namespace)
    )
    assert event["metadata"]["name"].startswith("web-7d4.tribunal-")
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
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-7d4",
        "namespace": namespace,
    }
    assert event["note"] == "Tribunal deny (high): shell_in_container: shell_in_container happened"
    assert event["reportingInstance"] and event["eventTime"]
    # `kubectl describe pod` reads the core/v1 view of the same Event
    core = await client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={workload.pod}"
    )
    assert [(e.reason, e.type, e.involved_object.kind) for e in core.items] == [
        ("PolicyViolation", "Warning", "Pod")
    ]


async def test_quarantine_ensures_one_deny_all_policy_then_labels_each_pod(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(api, namespace)
    await create_pod(api, namespace, "web-other")
    await create_pod(api, namespace, "bystander", labels={"app": "other"})
    dispatcher = await chart_dispatcher(rules("{type: quarantine}"))
    [first] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    [second] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-other"))
    assert (first["status"], first["detail"]["created"]) == ("success", True)
    assert (second["status"], second["detail"]["created"]) == ("success", False)  # found it, not recreated

    assert await network_policies(api, namespace) == ["tribunal-quarantine"]
    policy = await client.NetworkingV1Api(api).read_namespaced_network_policy(
        "tribunal-quarantine", namespace
    )
    body = api.sanitize_for_serialization(policy)
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tribunal"}
    assert body["spec"] == {
        "podSelector": {"matchLabels": {"tribunal.io/quarantine": "true"}},
        "policyTypes": ["Ingress", "Egress"],  # no ingress or egress rules: nothing allowed
    }
    selected = await client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector="tribunal.io/quarantine=true"
    )
    assert sorted(p.metadata.name for p in selected.items) == ["web-7d4", "web-other"]


@pytest.mark.parametrize(
    ("params", "grace"),
    [("{grace_period_seconds: 5}", 5), ("{mode: delete, grace_period_seconds: 7}", 7)],
    ids=["evict", "delete"],
)
@with_values(TERMINATE_ON, "terminate")
async def test_terminate_deletes_a_running_pod_gracefully(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher, params: str, grace: int
) -> None:
    """A pod on a node is deleted gracefully: the API server marks it with the grace period it was
    given and leaves it to the kubelet (none runs here), so the grace period is visible."""
    await apply_running_pod(api, namespace, "web-7d4")
    dispatcher = await chart_dispatcher(rules(f"{{type: terminate, params: {params}}}"))
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert outcome["status"] == "success", outcome
    pod = await read_pod(api, namespace, "web-7d4")
    assert pod is not None
    assert pod["metadata"]["deletionTimestamp"]
    assert pod["metadata"]["deletionGracePeriodSeconds"] == grace


@pytest.mark.parametrize("mode", ["evict", "delete"])
@with_values(TERMINATE_ON, "terminate")
async def test_terminate_with_no_grace_or_node_removes_the_pod(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher, mode: str
) -> None:
    await create_pod(api, namespace, "web-7d4")
    dispatcher = await chart_dispatcher(
        rules(f"{{type: terminate, params: {{mode: {mode}, grace_period_seconds: 0}}}}")
    )
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert outcome["status"] == "success", outcome
    assert await read_pod(api, namespace, "web-7d4") is None


async def apply_running_pod(api: client.ApiClient, namespace: str, name: str) -> None:
    """A pod bound to a node, Running and Ready, as the scheduler and the kubelet would leave it."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx:1.27"}]},
        },
    )
    await core.patch_namespaced_pod_status(
        name,
        namespace,
        {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
    )


@with_values(TERMINATE_ON, "terminate")
async def test_a_pod_disruption_budget_is_honoured(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    """While a budget allows no disruption the real API server answers the eviction with 429: retried
    within the dispatcher's bounds, then a failure, the pod untouched. Once the budget allows one (as
    the disruption controller would write it), the eviction goes through."""
    await apply_running_pod(api, namespace, "web-7d4")
    policy = client.PolicyV1Api(api)
    await policy.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )

    async def budget(allowed: int) -> None:
        status = {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": 1 + allowed,
                  "desiredHealthy": 1, "expectedPods": 1 + allowed}  # fmt: skip
        await policy.patch_namespaced_pod_disruption_budget_status("web", namespace, {"status": status})

    await budget(0)
    registry = CollectorRegistry()
    dispatcher = await chart_dispatcher(
        rules("{type: terminate}"), actions={"max_attempts": 3}, registry=registry
    )
    [refused] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert (refused["status"], refused["attempts"], refused["http_status"]) == ("failure", 3, 429)
    assert "disruption budget" in refused["error"]
    labels = {"action": "terminate", "target": "kubernetes"}
    assert registry.get_sample_value("tribunal_action_retries_total", labels) == 2
    pod = await read_pod(api, namespace, "web-7d4")
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]

    await budget(1)
    [evicted] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert (evicted["status"], evicted["attempts"]) == ("success", 1)
    pod = await read_pod(api, namespace, "web-7d4")
    assert pod is not None and pod["metadata"]["deletionTimestamp"]


@with_values(TERMINATE_ON, "terminate")
async def test_a_403_from_the_authorizer_stops_at_once(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher, unbound_identity: Identity
) -> None:
    """Acting as a ServiceAccount with no rights: RBAC refuses, and a 403 is not retried."""
    await create_pod(api, namespace, "web-7d4")
    dispatcher = await chart_dispatcher(rules("{type: terminate}"), kubeconfig=unbound_identity.kubeconfig)
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert (outcome["status"], outcome["attempts"], outcome["http_status"], outcome["retriable"]) == (
        "failure",
        1,
        403,
        False,
    )
    assert "forbidden" in outcome["error"] and unbound_identity.username in outcome["error"]
    assert await read_pod(api, namespace, "web-7d4") is not None


async def test_a_failed_action_is_not_deduplicated_next_time(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    """The first time the pod is not there yet (a real 404); the failure does not count for dedupe."""
    dispatcher = await chart_dispatcher(rules("{type: annotate, params: {owners: false}}", dedupe="10m"))
    [first] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert (first["status"], first["http_status"], first["attempts"]) == ("failure", 404, 1)
    await create_pod(api, namespace, "web-7d4")
    [second] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    [third] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert [second["status"], third["status"]] == ["success", "deduplicated"]
    pod = await read_pod(api, namespace, "web-7d4")
    assert pod is not None and pod["metadata"]["annotations"]["tribunal.io/rule"] == "r"


async def test_blast_radius_caps_destructive_actions_per_namespace(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    other = f"{namespace}-b"
    await client.CoreV1Api(api).create_namespace({"metadata": {"name": other}})
    try:
        for name in ("a", "b", "c"):
            await create_pod(api, namespace, name)
        await create_pod(api, other, "d")
        dispatcher = await chart_dispatcher(
            rules("{type: quarantine}", "{type: annotate}"), actions={"destructive_per_minute": 2}
        )
        statuses = []
        for ns, pod in ((namespace, "a"), (namespace, "b"), (namespace, "c"), (other, "d")):
            outcomes = await dispatcher.dispatch(None, verdict(namespace=ns, pod=pod))
            statuses.append([o["status"] for o in outcomes])
        assert statuses == [
            ["success", "success"],
            ["success", "success"],
            ["rate_limited", "success"],
            ["success", "success"],
        ]
        labels = {}
        for ns, pod in ((namespace, "a"), (namespace, "c"), (other, "d")):
            found = await read_pod(api, ns, pod)
            assert found is not None
            labels[pod] = found["metadata"]["labels"].get("tribunal.io/quarantine")
        assert labels == {"a": "true", "c": None, "d": "true"}
    finally:
        await client.CoreV1Api(api).delete_namespace(other)


@with_values(ALL_ON, "all-on")
async def test_a_protected_pod_is_never_touched(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    await create_pod(api, namespace, "web-7d4", labels={"tribunal.io/protected": "true"})
    before = await read_pod(api, namespace, "web-7d4")
    assert before is not None
    dispatcher = await chart_dispatcher(
        rules("{type: quarantine}", "{type: terminate}", "{type: annotate}", "{type: label}")
    )
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert [o["status"] for o in outcomes] == ["skipped"] * 4
    assert all("protected" in o["reason"] for o in outcomes)
    after = await read_pod(api, namespace, "web-7d4")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await network_policies(api, namespace) == []


@with_values(OWNERS_ON, "owners")
async def test_a_protected_owner_is_not_patched(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(
        api, namespace, deployment_labels={"app": "web", "tribunal.io/protected": "true"}
    )
    dispatcher = await chart_dispatcher(rules("{type: annotate}"))
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert outcome["detail"]["patched"] == ["Pod/web-7d4", "ReplicaSet/web-7d"]
    assert outcome["detail"]["protected"] == ["Deployment/web"]
    replicaset = await read_object(api, namespace, "ReplicaSet", "web-7d")
    deployment = await read_object(api, namespace, "Deployment", "web")
    assert replicaset["metadata"]["annotations"]["tribunal.io/rule"] == "r"
    assert "annotations" not in deployment["metadata"]


@with_values(OWNERS_ON, "owners")
async def test_a_vanished_owner_ends_the_owner_chain(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    gone = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
            "uid": "00000000-0000-0000-0000-000000000001", "controller": True}  # fmt: skip
    await create_pod(api, namespace, "web-7d4", owner_reference=gone)
    dispatcher = await chart_dispatcher(rules("{type: annotate}"))
    [outcome] = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert (outcome["status"], outcome["detail"]["patched"]) == ("success", ["Pod/web-7d4"])


@pytest.mark.parametrize("exempt", ["kube-system", RELEASE_NAMESPACE])
async def test_exempt_namespaces_are_never_touched(
    api: client.ApiClient, chart_dispatcher: MakeDispatcher, exempt: str
) -> None:
    """kube-system (TRIBUNAL_EXEMPT_NAMESPACES) and the service's own namespace (TRIBUNAL_NAMESPACE)."""
    name = f"exempt-{exempt}"
    await create_pod(api, exempt, name)
    try:
        before = await read_pod(api, exempt, name)
        assert before is not None
        dispatcher = await chart_dispatcher(rules("{type: quarantine}", "{type: event}", "{type: annotate}"))
        outcomes = await dispatcher.dispatch(None, verdict(namespace=exempt, pod=name))
        assert [o["status"] for o in outcomes] == ["exempt"] * 3
        after = await read_pod(api, exempt, name)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert "tribunal-quarantine" not in await network_policies(api, exempt)
        assert await events_about(api, exempt, name) == []
    finally:
        await client.CoreV1Api(api).delete_namespaced_pod(name, exempt, grace_period_seconds=0)


@with_values(ALL_ON, "all-on")
async def test_dry_run_changes_nothing_and_says_what_it_would_do(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    workload = await deployment_workload(api, namespace)
    before = await read_pod(api, namespace, workload.pod)
    assert before is not None
    dispatcher = await chart_dispatcher(
        rules("{type: annotate}", "{type: event}", "{type: quarantine}", "{type: terminate}"), dry_run=True
    )
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert [o["status"] for o in outcomes] == ["dry_run"] * 4
    assert outcomes[2]["plan"]["network_policy"]["spec"]["podSelector"] == {
        "matchLabels": {"tribunal.io/quarantine": "true"}
    }
    assert outcomes[3]["plan"]["would"] == f"evict pod {namespace}/web-7d4 (grace 30s)"
    after = await read_pod(api, namespace, workload.pod)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await network_policies(api, namespace) == []
    assert await events_about(api, namespace, workload.pod) == []
    deployment = await read_object(api, namespace, "Deployment", "web")
    assert managed_by(deployment, "tribunal") == []


async def test_a_rules_dry_run_applies_to_that_rule_only(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    await create_pod(api, namespace, "web-7d4")
    text = (
        "rules:\n  - name: quiet\n    dry_run: true\n    dedupe: 0\n    actions: [{type: quarantine}]\n"
        "  - name: loud\n    dedupe: 0\n    actions: [{type: event}]\n"
    )
    dispatcher = await chart_dispatcher(text)
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert [(o["rule"], o["status"]) for o in outcomes] == [("quiet", "dry_run"), ("loud", "success")]
    assert await network_policies(api, namespace) == []
    assert len(await events_about(api, namespace, "web-7d4")) == 1


@with_values(TERMINATE_ON, "terminate")
async def test_terminate_runs_after_the_other_actions_of_its_rule(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    """Listed first, terminate still runs last: the label and the Event find the pod (they would get
    404 had it gone first), then it goes."""
    await create_pod(api, namespace, "web-7d4")
    dispatcher = await chart_dispatcher(
        rules("{type: terminate, params: {grace_period_seconds: 0}}", "{type: label}", "{type: event}")
    )
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="web-7d4"))
    assert {o["action"]: o["status"] for o in outcomes} == {
        "terminate": "success",
        "label": "success",
        "event": "success",
    }
    assert await read_pod(api, namespace, "web-7d4") is None
    assert len(await events_about(api, namespace, "web-7d4")) == 1
