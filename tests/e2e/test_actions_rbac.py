"""Every response action under the chart's own rights, against a real kube-apiserver with RBAC: the
chart's ServiceAccount, ClusterRole and bindings as Helm renders them for given values (`actions`,
`rbac.scope`), a token for that ServiceAccount from the TokenRequest API, and Tribunal's actions built
as ``tribunal serve`` builds them from the settings the chart's Deployment passes for the same values,
with a kubeconfig that has that token. Each action's effect is read back as the admin; what the chart
does not grant is refused by the real authorizer; the authorizer's answers show that the chart grants
exactly the rights the enabled actions need; and what is not enabled, or outside the namespaces of a
namespaced install, Tribunal skips with the reason and the authorizer refuses."""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.conftest import PROJECT, RULES_DIR
from tests.e2e import actions_support
from tests.e2e.actions_support import (
    ACTIONS_ROLE,
    ALL_OFF,
    ALL_ON,
    OWNERS_ON,
    Identity,
    MakeDispatcher,
    Right,
    allowed,
    chart_rbac_objects,
    client_for,
    create_owner,
    create_pod,
    deployment_settings,
    deployment_workload,
    events_about,
    read_object,
    read_pod,
    rules,
    rules_review,
    with_values,
)
from tests.e2e.conftest import (
    RELEASE_NAMESPACE,
    RESTRICTED_CONTAINER,
    SERVICE_HOST,
    StartTribunal,
    compliant_pod,
)
from tests.e2e.control_plane import ControlPlane
from tests.integration.actions.conftest import verdict
from tribunal.actions import kube
from tribunal.actions.registry import BUILTIN_TARGETS

pytestmark = pytest.mark.e2e

# The fixtures of actions_support that this module's tests use.
chart_identity = actions_support.chart_identity
unbound_identity = actions_support.unbound_identity
chart_dispatcher = actions_support.chart_dispatcher
chart_values = actions_support.chart_values

# What each cluster action calls (tribunal/actions/kube.py), as (API group, resource, verb).
OWNERS = {  # (apiVersion, kind) the owner chain follows -> (group, resource)
    ("apps/v1", "ReplicaSet"): ("apps", "replicasets"),
    ("apps/v1", "Deployment"): ("apps", "deployments"),
    ("apps/v1", "StatefulSet"): ("apps", "statefulsets"),
    ("apps/v1", "DaemonSet"): ("apps", "daemonsets"),
    ("batch/v1", "Job"): ("batch", "jobs"),
    ("batch/v1", "CronJob"): ("batch", "cronjobs"),
}
# annotate and label of the owning workloads (actions.owners): get_owner, patch_owner
OWNER_NEEDS: set[Right] = {
    (group, resource, verb) for group, resource in OWNERS.values() for verb in ("get", "patch")
}
NEEDS: dict[str, set[Right]] = {
    "annotate": {("", "pods", "get"), ("", "pods", "patch")},  # get_pod, patch_pod
    "label": {("", "pods", "get"), ("", "pods", "patch")},
    "event": {("events.k8s.io", "events", "create")},  # create_event
    "quarantine": {  # get_pod, get_network_policy, create_network_policy, patch_pod
        ("", "pods", "get"),
        ("", "pods", "patch"),
        ("networking.k8s.io", "networkpolicies", "get"),
        ("networking.k8s.io", "networkpolicies", "create"),
    },
    "terminate": {  # get_pod, then evict_pod (mode evict) or delete_pod (mode delete)
        ("", "pods", "get"),
        ("", "pods/eviction", "create"),
        ("", "pods", "delete"),
    },
}
ALL_NEEDS: set[Right] = set().union(*NEEDS.values()) | OWNER_NEEDS
# The chart's defaults: annotate, label, event and quarantine; no terminate, no owners.
DEFAULT_NEEDS: set[Right] = {
    ("", "pods", "get"),
    ("", "pods", "patch"),
    ("events.k8s.io", "events", "create"),
    ("networking.k8s.io", "networkpolicies", "get"),
    ("networking.k8s.io", "networkpolicies", "create"),
}
# Not an action: with settings.auth.kubernetes (on in the chart by default) the server asks the API
# server who a caller's token belongs to and whether it may use the path (tribunal/server/kube_auth.py);
# the chart binds its ServiceAccount to the bootstrap role system:auth-delegator for it.
AUTH_NEEDS: set[Right] = {
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
}
# Not an action either: policyReports.enabled (on in the chart by default) has Tribunal keep its findings
# as PolicyReports (tribunal/reports/cluster_reports.py, tests/e2e/test_policy_reports.py).
REPORT_NEEDS: set[Right] = {
    ("wgpolicyk8s.io", plural, verb)
    for plural in ("policyreports", "clusterpolicyreports")
    for verb in ("create", "get", "list", "patch", "delete")
}


def served(needs: set[Right], rights: set[tuple[str, str, str, bool]]) -> set[Right]:
    """Those of ``needs`` on resources the API server serves (the reports' CRDs may be installed)."""
    return {need for need in needs if any(right[:3] == need for right in rights)}


def needs_of(settings: dict[str, Any]) -> set[Right]:
    """What Tribunal with these settings may call in the cluster: the enabled actions' needs, and the
    owner workloads' get and patch when annotate or label may follow owners."""
    enabled = set(settings["cluster_actions"])
    needed: set[Right] = set().union(*(NEEDS[action] for action in enabled))
    if settings["owners"] and enabled & {"annotate", "label"}:
        needed |= OWNER_NEEDS
    return needed


def test_needs_covers_every_action_that_touches_the_cluster() -> None:
    """A new cluster action must say what it needs here, or the RBAC checks below would not see it."""
    assert set(NEEDS) == {spec.action for spec in BUILTIN_TARGETS if spec.touches_cluster}
    assert set(OWNERS) == set(kube._OWNERS)  # the owner kinds annotate and label follow and patch


@pytest.mark.parametrize(("auth", "roles"), [(True, {"tribunal-actions", "system:auth-delegator"}),
                                             (False, {"tribunal-actions"})])  # fmt: skip
def test_the_chart_binds_its_service_account_to_the_actions_role_and_no_other(
    auth: bool, roles: set[str]
) -> None:
    """The ServiceAccount's only bindings: the actions' ClusterRole, the policy reports' one
    (policyReports.enabled, the default; tests/e2e/test_policy_reports.py), and system:auth-delegator
    while the server's Kubernetes authentication is on. The chart's other ClusterRoles are for its
    callers."""
    roles = {*roles, "tribunal-policy-reports"}
    objects = chart_rbac_objects({"settings": {"auth": {"kubernetes": auth}}})
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding")]
    (account,) = [o["metadata"] for o in objects if o["kind"] == "ServiceAccount"]
    assert account == {**account, "name": "tribunal", "namespace": RELEASE_NAMESPACE}
    subject = {"kind": "ServiceAccount", "name": "tribunal", "namespace": RELEASE_NAMESPACE}
    bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert all(b["subjects"] == [subject] for b in bindings)
    assert {b["roleRef"]["name"] for b in bindings} == roles
    callers = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"} - roles
    for role in (o for o in objects if o["metadata"]["name"] in callers):
        assert all("nonResourceURLs" in rule and "resources" not in rule for rule in role["rules"])


# -- every action, as the chart's ServiceAccount -------------------------------------------------------


@with_values(ALL_ON, "all-on")
async def test_every_cluster_action_succeeds_with_the_charts_rights(
    api: client.ApiClient, namespace: str, chart_identity: Identity, chart_dispatcher: MakeDispatcher
) -> None:
    assert chart_identity.username == f"system:serviceaccount:{RELEASE_NAMESPACE}:tribunal"
    workload = await deployment_workload(api, namespace)
    await create_pod(api, namespace, "web-7d4-delete")
    dispatcher = await chart_dispatcher(
        rules("{type: annotate}", "{type: label}", "{type: event}", "{type: quarantine}")
    )
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert {o["action"]: (o["status"], o.get("error")) for o in outcomes} == {
        a: ("success", None) for a in ("annotate", "label", "event", "quarantine")
    }
    # annotate and label: the pod and its owner chain
    pod = await read_pod(api, namespace, workload.pod)
    assert pod is not None
    objects = [
        ("Pod", pod["metadata"]),
        *[
            (kind, (await read_object(api, namespace, kind, name))["metadata"])
            for kind, name in (("ReplicaSet", workload.replicaset), ("Deployment", workload.deployment))
        ],
    ]
    for kind, meta in objects:
        assert meta["annotations"]["tribunal.io/last-verdict"] == "deny", kind
        assert meta["annotations"]["tribunal.io/violated-policies"] == "shell_in_container", kind
        assert meta["labels"]["tribunal.io/verdict"] == "deny", kind
        assert meta["labels"]["tribunal.io/severity"] == "high", kind
    # event: about the pod
    [event] = await events_about(api, namespace, workload.pod)
    assert (event["reason"], event["type"], event["reportingController"]) == (
        "PolicyViolation",
        "Warning",
        "tribunal.io/tribunal",
    )
    assert event["regarding"]["kind"] == "Pod" and event["regarding"]["namespace"] == namespace
    # quarantine: a deny-all policy, and the pod carries the label it selects
    policy = await client.NetworkingV1Api(api).read_namespaced_network_policy(
        "tribunal-quarantine", namespace
    )
    assert policy.spec.pod_selector.match_labels == {"tribunal.io/quarantine": "true"}
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
    assert pod["metadata"]["labels"]["tribunal.io/quarantine"] == "true"

    # terminate, both modes: the pods are gone
    evicting = await chart_dispatcher(rules("{type: terminate, params: {grace_period_seconds: 5}}"))
    [evicted] = await evicting.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    assert (evicted["status"], evicted["detail"]["mode"]) == ("success", "evict")
    assert await read_pod(api, namespace, workload.pod) is None
    deleting = await chart_dispatcher(
        rules("{type: terminate, params: {mode: delete, grace_period_seconds: 0}}")
    )
    [deleted] = await deleting.dispatch(None, verdict(namespace=namespace, pod="web-7d4-delete"))
    assert (deleted["status"], deleted["detail"]["mode"]) == ("success", "delete")
    assert await read_pod(api, namespace, "web-7d4-delete") is None


@pytest.mark.parametrize(
    "chain",
    [
        [("Deployment", "web"), ("ReplicaSet", "web-7d")],
        [("StatefulSet", "db")],
        [("DaemonSet", "agent")],
        [("CronJob", "nightly"), ("Job", "nightly-28934")],
    ],
    ids=["deployment", "statefulset", "daemonset", "cronjob"],
)
@with_values(OWNERS_ON, "owners")
async def test_annotate_and_label_patch_every_kind_of_owner(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher, chain: list[tuple[str, str]]
) -> None:
    """The owner chain of each workload kind the chart grants with actions.owners (apps and batch),
    top owner first."""
    owner = None
    for kind, name in chain:
        owner = await create_owner(api, namespace, kind, name, owner=owner)
    await create_pod(api, namespace, "pod-0", owner=owner)
    dispatcher = await chart_dispatcher(rules("{type: annotate}", "{type: label}"))
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod="pod-0"))
    expected = ["Pod/pod-0", *(f"{kind}/{name}" for kind, name in reversed(chain))]
    assert [(o["status"], o["detail"]["patched"]) for o in outcomes] == [("success", expected)] * 2
    for kind, name in chain:
        meta = (await read_object(api, namespace, kind, name))["metadata"]
        assert meta["annotations"]["tribunal.io/rule"] == "r", kind
        assert meta["labels"]["tribunal.io/verdict"] == "deny", kind


async def test_with_the_default_values_annotate_and_label_stop_at_the_pod_and_terminate_is_skipped(
    api: client.ApiClient, namespace: str, chart_dispatcher: MakeDispatcher
) -> None:
    """The chart's defaults grant no patch on workloads and no pod delete or eviction, and tell
    Tribunal so (TRIBUNAL_ACTIONS__OWNERS=false, terminate not in TRIBUNAL_ACTIONS__CLUSTER_ACTIONS):
    a rule asking for the owners too patches the pod alone, nothing fails with a 403, and terminate is
    skipped with the reason, the pod left where it is."""
    assert deployment_settings({}) == {
        "cluster_actions": ["annotate", "label", "event", "quarantine"],
        "owners": False,
        "namespaces": [],
    }
    workload = await deployment_workload(api, namespace)
    dispatcher = await chart_dispatcher(
        rules("{type: annotate, params: {owners: true}}", "{type: label}", "{type: terminate}")
    )
    outcomes = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=workload.pod))
    by_action = {o["action"]: o for o in outcomes}
    assert {a: (o["status"], o.get("detail", {}).get("patched")) for a, o in by_action.items()} == {
        "annotate": ("success", ["Pod/web-7d4"]),
        "label": ("success", ["Pod/web-7d4"]),
        "terminate": ("skipped", None),
    }
    assert by_action["terminate"]["reason"] == (
        "the terminate action is not enabled in this installation "
        "(TRIBUNAL_ACTIONS__CLUSTER_ACTIONS; the chart's actions values)"
    )
    pod = await read_pod(api, namespace, workload.pod)
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]
    assert pod["metadata"]["annotations"]["tribunal.io/rule"] == "r"
    assert pod["metadata"]["labels"]["tribunal.io/verdict"] == "deny"
    for kind, name in (("ReplicaSet", workload.replicaset), ("Deployment", workload.deployment)):
        meta = (await read_object(api, namespace, kind, name))["metadata"]
        assert "annotations" not in meta and meta["labels"] == {"app": "web"}, kind
        assert all(m["manager"] != "tribunal" for m in meta.get("managedFields") or []), kind


# -- block-image: the API server refuses the image -----------------------------------------------------

CHECKOUT_IMAGE = "ghcr.io/example/checkout:1.4.2"
CHECKOUT_DIGEST = "sha256:8d4b2c6e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c"


def restricted_pod(name: str, image: str) -> dict[str, Any]:
    """A pod that passes every admission policy (Pod Security restricted, limits, a pinned tag)."""
    pod = compliant_pod(name)
    pod["metadata"]["labels"] = {"app": "checkout"}
    pod["spec"]["containers"] = [{**RESTRICTED_CONTAINER, "image": image}]
    return pod


async def refusal(core: client.CoreV1Api, namespace: str, pod: dict[str, Any], dry_run: bool) -> str | None:
    """The API server's message when it refuses ``pod``, None when it admits it."""
    try:
        await core.create_namespaced_pod(namespace, pod, dry_run="All" if dry_run else None)
    except ApiException as exc:
        if exc.status != 403:
            raise
        return str(exc.body)
    return None


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def test_block_image_makes_the_api_server_refuse_the_image_until_a_clean_report(
    api: client.ApiClient,
    namespace: str,
    tribunal: StartTribunal,
    chart_identity: Identity,
    control_plane: ControlPlane,
    tmp_path: Path,
) -> None:
    """Tribunal as ``tribunal serve`` runs in the cluster (the chart's webhook, its ServiceAccount's
    token for the actions): a Trivy report with a fixable critical CVE, posted to /ingest/trivy, blocks
    the image; the real API server then refuses pods with it, through Tribunal's webhook; a clean
    report lifts the block."""
    published = await tribunal(
        namespace=RELEASE_NAMESPACE,
        actions={"state_dir": tmp_path / "state", "kubeconfig": chart_identity.kubeconfig},
    )
    core = client.CoreV1Api(api)
    checkout = restricted_pod("checkout", CHECKOUT_IMAGE)
    assert await refusal(core, namespace, checkout, dry_run=True) is None  # nothing else refuses it

    report = json.loads((PROJECT / "examples" / "trivy" / "checkout-image.json").read_text())
    clean = copy.deepcopy(report)
    for result in clean["Results"]:
        result["Vulnerabilities"] = []
    tls = ssl.create_default_context(cafile=str(control_plane.ca.cert_file))
    url = f"https://{published.address}:{published.port}/ingest/trivy"

    async def ingest(body: dict[str, Any]) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, ssl=tls, server_hostname=SERVICE_HOST) as response,
        ):
            assert response.status == 202, await response.text()
            decision: str = (await response.json())["decision"]
        return decision

    assert await ingest(report) == "deny"

    async def refused() -> bool:
        return await refusal(core, namespace, checkout, dry_run=True) is not None

    await eventually(refused, "the image refused at admission")
    message = await refusal(core, namespace, checkout, dry_run=False)
    assert message is not None and "[blocked_images]" in message and "validate.tribunal.io" in message
    by_digest = restricted_pod("by-digest", f"ghcr.io/example/checkout@{CHECKOUT_DIGEST}")
    assert "[blocked_images]" in (await refusal(core, namespace, by_digest, dry_run=False) or "")
    assert (
        await refusal(core, namespace, restricted_pod("other", "ghcr.io/example/checkout:1.4.3"), False)
        is None
    )
    assert await read_pod(api, namespace, "checkout") is None

    assert await ingest(clean) == "allow"

    async def admitted() -> bool:
        return await refusal(core, namespace, checkout, dry_run=True) is None

    await eventually(admitted, "the image admitted again")
    assert await refusal(core, namespace, checkout, dry_run=False) is None
    assert (await read_pod(api, namespace, "checkout")) is not None


# -- least privilege, as the real authorizer decides it --------------------------------------------------


async def test_what_the_chart_does_not_grant_is_refused_with_403(
    api: client.ApiClient, namespace: str, chart_identity: Identity
) -> None:
    """With the default values; owners and terminate off, so no workload is read or patched and no
    pod deleted or evicted either."""
    core = client.CoreV1Api(api)
    workload = await deployment_workload(api, namespace)
    await core.create_namespaced_secret(namespace, {"metadata": {"name": "db"}, "stringData": {"pw": "x"}})
    await client.NetworkingV1Api(api).create_namespaced_network_policy(
        namespace, {"metadata": {"name": "tribunal-quarantine"}, "spec": {"podSelector": {}}}
    )
    async with client_for(chart_identity) as as_chart:
        sa_core, sa_apps = client.CoreV1Api(as_chart), client.AppsV1Api(as_chart)
        sa_net = client.NetworkingV1Api(as_chart)
        attempts: dict[str, Callable[[], Awaitable[Any]]] = {
            "list secrets": lambda: sa_core.list_namespaced_secret(namespace),
            "read a secret": lambda: sa_core.read_namespaced_secret("db", namespace),
            "list pods": lambda: sa_core.list_namespaced_pod(namespace),
            "create a pod": lambda: sa_core.create_namespaced_pod(
                namespace, restricted_pod("x", "nginx:1.27")
            ),
            "delete a deployment": lambda: sa_apps.delete_namespaced_deployment(
                workload.deployment, namespace
            ),
            "scale a deployment": lambda: sa_apps.patch_namespaced_deployment_scale(
                workload.deployment, namespace, {"spec": {"replicas": 0}}
            ),
            "patch a deployment's metadata": lambda: sa_apps.patch_namespaced_deployment(
                workload.deployment, namespace, {"metadata": {"annotations": {"tribunal.io/rule": "r"}}}
            ),
            "read a replicaset": lambda: sa_apps.read_namespaced_replica_set(workload.replicaset, namespace),
            "delete a pod": lambda: sa_core.delete_namespaced_pod(workload.pod, namespace),
            "evict a pod": lambda: sa_core.create_namespaced_pod_eviction(
                workload.pod,
                namespace,
                {"metadata": {"name": workload.pod, "namespace": namespace}},
            ),
            "patch a namespace": lambda: sa_core.patch_namespace(
                namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
            ),
            "delete a network policy": lambda: sa_net.delete_namespaced_network_policy(
                "tribunal-quarantine", namespace
            ),
            "patch a network policy": lambda: sa_net.patch_namespaced_network_policy(
                "tribunal-quarantine", namespace, {"spec": {"podSelector": {"matchLabels": {"a": "b"}}}}
            ),
            "create a core/v1 event": lambda: sa_core.create_namespaced_event(
                namespace,
                {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": workload.pod}},
            ),
        }
        answers: dict[str, tuple[int, str]] = {}
        for what, attempt in attempts.items():
            try:
                await attempt()
                answers[what] = (200, "")
            except ApiException as exc:
                body = json.loads(exc.body)
                answers[what] = (exc.status, body["reason"])
                assert chart_identity.username in body["message"], body["message"]
    assert answers == dict.fromkeys(attempts, (403, "Forbidden"))
    # and nothing changed
    deployment = await read_object(api, namespace, "Deployment", workload.deployment)
    assert deployment["metadata"]["name"] == "web" and "annotations" not in deployment["metadata"]
    pod = await read_pod(api, namespace, workload.pod)
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]
    policy = await client.NetworkingV1Api(api).read_namespaced_network_policy(
        "tribunal-quarantine", namespace
    )
    assert policy.spec.pod_selector.match_labels is None


async def resource_rights(api: client.ApiClient) -> set[tuple[str, str, str, bool]]:
    """Every (group, resource, verb, namespaced) the API server serves, from its discovery documents,
    plus the verbs RBAC knows that discovery does not list (bind, escalate, impersonate) and wildcards."""

    async def get(path: str) -> dict[str, Any]:
        found: dict[str, Any] = await api.call_api(
            path, "GET", response_types_map={200: "object"}, _return_http_data_only=True
        )
        return found

    lists = [("", await get("/api/v1"))]
    for group in (await get("/apis"))["groups"]:
        for version in group["versions"]:
            lists.append((group["name"], await get(f"/apis/{version['groupVersion']}")))
    rights = {
        (group, resource["name"], verb, resource["namespaced"])
        for group, listing in lists
        for resource in listing["resources"]
        for verb in resource["verbs"]
    }
    rbac = "rbac.authorization.k8s.io"
    rights |= {(rbac, "roles", v, True) for v in ("bind", "escalate")}
    rights |= {(rbac, "clusterroles", v, False) for v in ("bind", "escalate")}
    rights |= {("", "serviceaccounts", "impersonate", True), ("", "users", "impersonate", False)}
    rights |= {("", "groups", "impersonate", False), ("*", "*", "*", True), ("", "pods", "*", True)}
    return rights


async def granted_by_authorizer(
    api: client.ApiClient, who: Identity, rights: set[tuple[str, str, str, bool]], namespace: str
) -> set[Right]:
    limit = asyncio.Semaphore(32)

    async def check(right: tuple[str, str, str, bool]) -> Right | None:
        group, resource, verb, namespaced = right
        async with limit:
            ok, _ = await allowed(api, who, (group, resource, verb), namespace if namespaced else None)
        return (group, resource, verb) if ok else None

    answers = await asyncio.gather(*(check(r) for r in sorted(rights)))
    return {a for a in answers if a is not None}


# The values matrix: what the authorizer grants beyond any ServiceAccount (the TokenReview and
# SubjectAccessReview of system:auth-delegator aside).
GRANTS = [
    pytest.param({}, DEFAULT_NEEDS, id="default"),
    pytest.param(ALL_ON, ALL_NEEDS, id="all-on"),
    pytest.param(ALL_OFF, set(), id="all-off"),
    pytest.param(  # no pod rule at all: the role holds the events rule alone
        {"actions": {"annotate": False, "label": False, "quarantine": False, "owners": True}},
        NEEDS["event"],
        id="event-only",
    ),
]


@pytest.mark.parametrize(("chart_values", "granted"), GRANTS)
async def test_the_authorizer_grants_the_chart_exactly_what_the_enabled_actions_need(
    api: client.ApiClient,
    namespace: str,
    chart_values: dict[str, Any],
    granted: set[Right],
    chart_identity: Identity,
    unbound_identity: Identity,
) -> None:
    """SubjectAccessReviews over every resource and verb the API server serves (``kubectl auth can-i``
    for each): what the chart's ServiceAccount may do beyond any authenticated ServiceAccount is
    exactly what the actions its values enable call, which is what the settings its Deployment passes
    let Tribunal call, plus the two reviews of the server's authentication (and the policy reports'
    rights, where their CRDs are served). No secrets, no lists, no
    delete or update of workloads; with every action off, nothing and no actions role at all."""
    assert needs_of(deployment_settings(chart_values)) == granted  # Tribunal and the chart agree
    rights = await resource_rights(api)
    assert {("", "pods/eviction", "create", True), ("apps", "deployments", "delete", True)} <= rights
    chart = await granted_by_authorizer(api, chart_identity, rights, namespace)
    baseline = await granted_by_authorizer(api, unbound_identity, rights, namespace)
    assert chart - baseline == granted | AUTH_NEEDS | served(REPORT_NEEDS, rights)
    assert baseline <= chart  # the ServiceAccount is an authenticated ServiceAccount too
    # The rights reach every namespace (a ClusterRoleBinding), the service's own and exempt ones too.
    for other in (RELEASE_NAMESPACE, "kube-system"):
        for right in granted:
            assert (await allowed(api, chart_identity, right, other))[0], (other, right)
    rbac = client.RbacAuthorizationV1Api(api)
    bindings = await rbac.list_role_binding_for_all_namespaces(field_selector=f"metadata.name={ACTIONS_ROLE}")
    assert bindings.items == []
    if not granted:
        for read in (rbac.read_cluster_role, rbac.read_cluster_role_binding):
            with pytest.raises(ApiException) as refused:
                await read(ACTIONS_ROLE)
            assert refused.value.status == 404


@pytest.mark.parametrize(("chart_values", "granted"), GRANTS)
async def test_the_service_account_sees_exactly_those_rights_in_its_rules_review(
    namespace: str,
    chart_values: dict[str, Any],
    granted: set[Right],
    chart_identity: Identity,
    unbound_identity: Identity,
) -> None:
    """``kubectl auth can-i --list`` as the ServiceAccount itself (SelfSubjectRulesReview with its
    token): this sees rules on resources the API server does not serve (CRDs not installed) too."""
    chart = await rules_review(chart_identity, namespace)
    assert chart - await rules_review(unbound_identity, namespace) == granted | AUTH_NEEDS | REPORT_NEEDS


async def test_the_default_chart_grants_no_more_than_the_shipped_rules_use(
    api: client.ApiClient, namespace: str, chart_identity: Identity, unbound_identity: Identity
) -> None:
    """The shipped rules (rules/response/) use annotate, event and quarantine, and alert and
    block-image, which need nothing in the cluster. The defaults enable those (and label, which needs
    the same pod get and patch as annotate) and neither owners nor terminate: the authorizer grants
    exactly what the shipped rules call, no pod delete or eviction, no patch on workloads."""
    used = {
        action["type"]
        for path in sorted((RULES_DIR / "response").glob("*.yaml"))
        for rule in yaml.safe_load(path.read_text())["rules"]
        for action in rule["actions"]
    }
    assert used & set(NEEDS) == {"annotate", "event", "quarantine"}
    settings = deployment_settings({})
    assert used & set(NEEDS) <= set(settings["cluster_actions"])  # every one of them runs
    needed = needs_of({"cluster_actions": used & set(NEEDS), "owners": settings["owners"]})
    rights = {r for r in await resource_rights(api) if r[0] != "*"}
    chart = await granted_by_authorizer(api, chart_identity, rights, namespace)
    baseline = await granted_by_authorizer(api, unbound_identity, rights, namespace)
    assert chart - baseline == needed | AUTH_NEEDS | served(REPORT_NEEDS, rights)


# -- rbac.scope=namespaces: the actions in the listed namespaces only ------------------------------------

# The namespace a namespaced install acts in, made (and deleted) by chart_identity with its RoleBinding.
# Unique per session: with no namespace controller here a deleted namespace stays Terminating.
SCOPED = f"e2e-scoped-{uuid.uuid4().hex[:8]}"
SCOPED_VALUES: dict[str, Any] = {"rbac": {"scope": "namespaces", "namespaces": [SCOPED]}}


@with_values(SCOPED_VALUES, "scope-namespaces")
async def test_a_namespaced_install_acts_in_its_namespaces_and_is_refused_elsewhere(
    api: client.ApiClient, namespace: str, chart_identity: Identity, chart_dispatcher: MakeDispatcher
) -> None:
    """rbac.scope=namespaces with [A]: a RoleBinding in A to the actions' ClusterRole and no
    ClusterRoleBinding; the Deployment tells Tribunal (TRIBUNAL_ACTIONS__NAMESPACES=A). In A every
    default action succeeds; in B (``namespace``) Tribunal skips each with the reason, and the real
    authorizer refuses the ServiceAccount's own calls there with 403: least privilege that Kubernetes
    enforces, not only Tribunal."""
    assert deployment_settings(SCOPED_VALUES)["namespaces"] == [SCOPED]
    inside, outside = await deployment_workload(api, SCOPED), await deployment_workload(api, namespace)
    dispatcher = await chart_dispatcher(
        rules("{type: annotate}", "{type: label}", "{type: event}", "{type: quarantine}")
    )
    actions = ["annotate", "label", "event", "quarantine"]

    done = await dispatcher.dispatch(None, verdict(namespace=SCOPED, pod=inside.pod))
    assert [(o["action"], o["status"], o.get("error")) for o in done] == [
        (a, "success", None) for a in actions
    ]
    pod = await read_pod(api, SCOPED, inside.pod)
    assert pod is not None and pod["metadata"]["labels"]["tribunal.io/quarantine"] == "true"
    assert pod["metadata"]["annotations"]["tribunal.io/rule"] == "r"
    assert len(await events_about(api, SCOPED, inside.pod)) == 1

    before = await read_pod(api, namespace, outside.pod)
    assert before is not None
    skipped = await dispatcher.dispatch(None, verdict(namespace=namespace, pod=outside.pod))
    reason = f"namespace {namespace} is outside those this installation acts in ({SCOPED})"
    assert [(o["action"], o["status"], o["reason"]) for o in skipped] == [
        (a, "skipped", reason) for a in actions
    ]
    after = await read_pod(api, namespace, outside.pod)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await events_about(api, namespace, outside.pod) == []

    # The same calls as the ServiceAccount itself, with its token: 403 in B (and in `default`), allowed in A.
    async def answers(where: str, pod: str) -> dict[str, int]:
        async with client_for(chart_identity) as as_chart:
            sa_core, sa_net = client.CoreV1Api(as_chart), client.NetworkingV1Api(as_chart)
            sa_events = client.EventsV1Api(as_chart)
            calls: dict[str, Callable[[], Awaitable[Any]]] = {
                "get the pod": lambda: sa_core.read_namespaced_pod(pod, where),
                "patch the pod": lambda: sa_core.patch_namespaced_pod(
                    pod, where, {"metadata": {"annotations": {"tribunal.io/e2e": "direct"}}}
                ),
                "create an event": lambda: sa_events.create_namespaced_event(
                    where,
                    {
                        "metadata": {"generateName": "e2e-"},
                        "eventTime": "2024-05-01T10:00:00.000000Z",
                        "reportingController": "tribunal.io/e2e",
                        "reportingInstance": "e2e",
                        "action": "Judged",
                        "reason": "E2E",
                        "type": "Normal",
                        "regarding": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": where},
                    },
                ),
                "create a network policy": lambda: sa_net.create_namespaced_network_policy(
                    where, {"metadata": {"name": "e2e-direct"}, "spec": {"podSelector": {}}}
                ),
            }
            found: dict[str, int] = {}
            for what, call in calls.items():
                try:
                    await call()
                    found[what] = 200
                except ApiException as exc:
                    body = json.loads(exc.body)
                    found[what] = exc.status
                    assert chart_identity.username in body["message"], body["message"]
            return found

    assert await answers(namespace, outside.pod) == {
        "get the pod": 403,
        "patch the pod": 403,
        "create an event": 403,
        "create a network policy": 403,
    }
    assert await answers(SCOPED, inside.pod) == {
        "get the pod": 200,
        "patch the pod": 200,
        "create an event": 200,
        "create a network policy": 200,
    }
    for right in DEFAULT_NEEDS:
        assert (await allowed(api, chart_identity, right, SCOPED))[0], right
        for elsewhere in (namespace, "default", RELEASE_NAMESPACE):
            assert not (await allowed(api, chart_identity, right, elsewhere))[0], (elsewhere, right)
    after = await read_pod(api, namespace, outside.pod)
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert await network_policies(api, namespace) == []


async def network_policies(api: client.ApiClient, namespace: str) -> list[str]:
    listed = await client.NetworkingV1Api(api).list_namespaced_network_policy(namespace)
    return [p.metadata.name for p in listed.items]
