"""Helpers and fixtures of the cluster-action e2e tests: the chart's ServiceAccount and RBAC objects as
Helm renders them for given values (installed as ``helm upgrade`` would leave them), the settings its
Deployment gives Tribunal for the same values, a TokenRequest token for a ServiceAccount and a
kubeconfig that uses it, workloads created as their controllers would create them (nothing runs
controllers here), and dispatchers built the way ``tribunal serve`` builds them, acting through such a
kubeconfig with those settings.

Fixtures are imported by the test modules that use them (``from tests.e2e.actions_support import ...``).
The chart values are the ``chart_values`` fixture (the chart's defaults): a test gives others with
``@with_values(...)``, a module by defining its own ``chart_values`` fixture."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tests.e2e.conftest import RELEASE_NAMESPACE, apply, ensure_namespace, render_chart
from tests.e2e.control_plane import ControlPlane
from tests.integration.actions.conftest import MakeDispatcher, dispatchers
from tribunal.actions import Dispatcher
from tribunal.settings import Settings

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# A ServiceAccount that no binding names: what any authenticated ServiceAccount may do anyway.
UNBOUND_ACCOUNT = "tribunal-e2e-unbound"
# The labels the chart puts on every object of the release (tribunal.labels).
RELEASE_SELECTOR = "app.kubernetes.io/name=tribunal,app.kubernetes.io/instance=tribunal"
ACTIONS_ROLE = "tribunal-actions"  # the ClusterRole of the cluster actions, and its bindings

# The chart's `actions` values: the cluster actions, and owners (annotate/label of owning workloads).
CLUSTER_ACTIONS = ("annotate", "label", "event", "quarantine", "terminate")
OWNERS_ON: dict[str, Any] = {"actions": {"owners": True}}
TERMINATE_ON: dict[str, Any] = {"actions": {"terminate": True}}
ALL_ON: dict[str, Any] = {"actions": {**dict.fromkeys(CLUSTER_ACTIONS, True), "owners": True}}
ALL_OFF: dict[str, Any] = {"actions": {**dict.fromkeys(CLUSTER_ACTIONS, False), "owners": False}}

# (API group, resource[/subresource], verb)
Right = tuple[str, str, str]


def with_values(values: dict[str, Any], name: str) -> pytest.MarkDecorator:
    """Run the test with the chart installed with ``values`` and Tribunal given the settings its
    Deployment would get from them (``chart_identity``, ``chart_dispatcher``)."""
    return pytest.mark.parametrize("chart_values", [values], ids=[name])


@dataclass(frozen=True)
class Identity:
    """A ServiceAccount as the API server authenticates its token (TokenReview), with a kubeconfig
    that presents that token."""

    namespace: str
    name: str
    username: str
    groups: tuple[str, ...]
    kubeconfig: Path


def chart_rbac_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, roles and bindings, exactly as Helm renders them."""
    return [obj for obj in render_chart(values) if obj["kind"] in RBAC_KINDS]


def deployment_env(values: dict[str, Any] | None = None) -> dict[str, str]:
    """The literal environment variables of the chart's Tribunal container, as Helm renders them."""
    (deployment,) = [o for o in render_chart(values) if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def deployment_settings(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the chart's Deployment tells Tribunal it may do in the cluster with these values:
    ``actions.cluster_actions``, ``owners`` and ``namespaces`` as ``Settings`` reads them from the
    rendered TRIBUNAL_ACTIONS__* variables (nothing else in the environment)."""
    env = {k: v for k, v in deployment_env(values).items() if k.startswith("TRIBUNAL_ACTIONS__")}
    assert {"TRIBUNAL_ACTIONS__CLUSTER_ACTIONS", "TRIBUNAL_ACTIONS__OWNERS"} <= set(env), env
    with pytest.MonkeyPatch.context() as patch:
        for name in os.environ:
            if name.startswith("TRIBUNAL_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        actions = Settings().actions
    return {
        "cluster_actions": list(actions.cluster_actions),
        "owners": actions.owners,
        "namespaces": list(actions.namespaces),
    }


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


async def release_rbac_objects(api: client.ApiClient) -> list[dict[str, Any]]:
    """The chart release's roles and bindings now in the cluster (by the chart's labels)."""
    rbac = client.RbacAuthorizationV1Api(api)
    found: list[dict[str, Any]] = []
    for kind, list_them in (
        ("ClusterRole", rbac.list_cluster_role),
        ("ClusterRoleBinding", rbac.list_cluster_role_binding),
        ("Role", rbac.list_role_for_all_namespaces),
        ("RoleBinding", rbac.list_role_binding_for_all_namespaces),
    ):
        listed = await list_them(label_selector=RELEASE_SELECTOR)
        found += [{**api.sanitize_for_serialization(item), "kind": kind} for item in listed.items]
    return found


async def delete_rbac_object(api: client.ApiClient, obj: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    kind, namespace, name = _key(obj)
    try:
        if kind == "ClusterRole":
            await rbac.delete_cluster_role(name)
        elif kind == "ClusterRoleBinding":
            await rbac.delete_cluster_role_binding(name)
        elif kind == "Role":
            await rbac.delete_namespaced_role(name, namespace)
        else:
            await rbac.delete_namespaced_role_binding(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


async def install_chart_rbac(
    api: client.ApiClient, values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The chart's RBAC objects for ``values`` as ``helm upgrade --install`` leaves them: the rendered
    ones applied (server-side apply, idempotent), and the release's roles and bindings that these
    values do not render deleted (an earlier test may have installed other values: the ClusterRoles
    and their bindings outlive it). Namespaces a rendered RoleBinding is in are created if missing.
    Returns the objects applied."""
    await ensure_namespace(api, RELEASE_NAMESPACE)
    objects = chart_rbac_objects(values)
    for obj in objects:
        if obj["metadata"].get("namespace"):
            await ensure_namespace(api, obj["metadata"]["namespace"])
        await apply(api, obj)
    rendered = {_key(o) for o in objects}
    for stale in await release_rbac_objects(api):
        if _key(stale) not in rendered:
            await delete_rbac_object(api, stale)
    return objects


async def service_account_identity(
    api: client.ApiClient, plane: ControlPlane, namespace: str, name: str, kubeconfig: Path
) -> Identity:
    """A token for ServiceAccount ``namespace/name`` from the TokenRequest API (as the kubelet gets the
    pod's projected token), who the API server says it is, and a kubeconfig that uses it."""
    core = client.CoreV1Api(api)
    request = {"spec": {"expirationSeconds": 3600}}
    issued = await core.create_namespaced_service_account_token(name, namespace, request)
    token = issued.status.token
    review = await client.AuthenticationV1Api(api).create_token_review({"spec": {"token": token}})
    assert review.status.authenticated, review.status.error
    plane.write_kubeconfig(kubeconfig, token=token)
    return Identity(
        namespace, name, review.status.user.username, tuple(review.status.user.groups or ()), kubeconfig
    )


async def service_account_rights(
    api: client.ApiClient, objects: list[dict[str, Any]], namespace: str, name: str, where: str
) -> set[Right]:
    """The resource rights in namespace ``where`` that the rendered bindings give ServiceAccount
    ``namespace/name``: the rules of the roles its ClusterRoleBindings, and its RoleBindings in
    ``where``, name (rendered ones, or the API server's own such as ``system:auth-delegator``)."""
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] == "ClusterRole"}
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    rights: set[Right] = set()
    for binding in objects:
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != where:
            continue
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if subject not in binding.get("subjects") or []:
            continue
        ref = binding["roleRef"]
        if (ref["kind"], ref["name"]) in rendered:
            role = rendered[(ref["kind"], ref["name"])]
        else:
            assert ref["kind"] == "ClusterRole", ref  # the chart renders no Role
            role = api.sanitize_for_serialization(
                await client.RbacAuthorizationV1Api(api).read_cluster_role(ref["name"])
            )
        rights |= flatten(role.get("rules") or [])
    return rights


def flatten(rules: list[dict[str, Any]]) -> set[Right]:
    """The (group, resource, verb) triples of RBAC rules (or of a rules review's resourceRules)."""
    found: set[Right] = set()
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    found.add((group, resource, verb))
    return found


async def allowed(
    api: client.ApiClient, who: Identity, right: Right, namespace: str | None = None
) -> tuple[bool, str]:
    """The authorizer's answer (SubjectAccessReview) to: may ``who`` do ``right`` in ``namespace``?"""
    group, resource, verb = right
    resource, _, subresource = resource.partition("/")
    attributes = {"group": group, "resource": resource, "subresource": subresource, "verb": verb}
    if namespace is not None:
        attributes["namespace"] = namespace
    review = await client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": who.username, "groups": list(who.groups), "resourceAttributes": attributes},
        }
    )
    return bool(review.status.allowed), str(review.status.reason or "")


@pytest.fixture
async def unbound_identity(api: client.ApiClient, control_plane: ControlPlane, tmp_path: Path) -> Identity:
    """A ServiceAccount in the release namespace that no role is bound to, with a kubeconfig."""
    await ensure_namespace(api, RELEASE_NAMESPACE)
    await apply(
        api,
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": UNBOUND_ACCOUNT, "namespace": RELEASE_NAMESPACE}},
    )  # fmt: skip
    return await service_account_identity(
        api, control_plane, RELEASE_NAMESPACE, UNBOUND_ACCOUNT, tmp_path / "unbound.kubeconfig"
    )


@pytest.fixture
def chart_values() -> dict[str, Any]:
    """The chart values ``chart_identity`` installs and ``chart_dispatcher`` takes its settings from:
    the chart's defaults. Override with ``@with_values(...)`` or a module's own fixture."""
    return {}


@pytest.fixture
async def chart_identity(
    api: client.ApiClient,
    control_plane: ControlPlane,
    unbound_identity: Identity,
    chart_values: dict[str, Any],
    tmp_path: Path,
) -> AsyncIterator[Identity]:
    """The chart's ServiceAccount, ClusterRoles and bindings as Helm renders them with
    ``chart_values`` (the server's Kubernetes authentication on by default), installed as ``helm
    upgrade`` would leave them, and a kubeconfig with a token of that ServiceAccount.

    Roles and bindings are cluster-wide and outlive the test; another test may have installed other
    values, and this one's are put back to the defaults' after it (with RoleBindings' namespaces that
    were made for them deleted). RBAC's authorizer learns of changes through informers, so this waits
    until the ServiceAccount's rules, as the authorizer resolves them in ``default`` and in each
    namespace a RoleBinding is in, are the rendered ones (plus what every ServiceAccount may do): a
    bounded number of tries, nothing asserted about time."""
    core = client.CoreV1Api(api)
    existing = {ns.metadata.name for ns in (await core.list_namespace()).items}
    objects = await install_chart_rbac(api, chart_values)
    bound_in = sorted({o["metadata"]["namespace"] for o in objects if o["kind"] == "RoleBinding"})
    made = set(bound_in) - existing
    try:
        (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
        name = account["metadata"]["name"]
        identity = await service_account_identity(
            api, control_plane, RELEASE_NAMESPACE, name, tmp_path / "chart.kubeconfig"
        )
        places = ["default", *bound_in]
        expected = {
            where: await service_account_rights(api, objects, RELEASE_NAMESPACE, name, where)
            | await rules_review(unbound_identity, where)
            for where in places
        }
        current: dict[str, set[Right]] = {}
        for _ in range(400):
            current = {where: await rules_review(identity, where) for where in places}
            if current == expected:
                break
            await asyncio.sleep(0.025)
        else:
            differences = {w: sorted(current[w] ^ expected[w]) for w in places if current[w] != expected[w]}
            raise AssertionError(f"the authorizer never settled on the chart's rules: {differences}")
        yield identity
    finally:
        if chart_values:
            await install_chart_rbac(api)
        for namespace in sorted(made):
            await core.delete_namespace(namespace)


async def rules_review(who: Identity, namespace: str = "default") -> set[Right]:
    """What ``who`` may do in ``namespace``, as it asks the API server itself with its own token
    (SelfSubjectRulesReview: ``kubectl auth can-i --list``)."""
    async with client_for(who) as as_who:
        review = await client.AuthorizationV1Api(as_who).create_self_subject_rules_review(
            {"spec": {"namespace": namespace}}
        )
        status: dict[str, Any] = as_who.sanitize_for_serialization(review.status)
    assert status["incomplete"] is False, status.get("evaluationError")
    return flatten(status["resourceRules"])


@contextlib.asynccontextmanager
async def client_for(identity: Identity) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio client that authenticates with the identity's token."""
    configuration = client.Configuration()
    await config.load_kube_config(str(identity.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        yield api_client


# -- objects, as their controllers would have made them ---------------------------------------------

POD_SPEC: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
OWNER_API = {
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def _template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": POD_SPEC}


def _owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def create_owner(
    api: client.ApiClient,
    namespace: str,
    kind: str,
    name: str,
    *,
    owner: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    app: str = "web",
) -> dict[str, Any]:
    """A workload of ``kind`` (owned by ``owner`` when given, as a ReplicaSet by its Deployment)."""
    selector = {"matchLabels": {"app": app}}
    specs: dict[str, dict[str, Any]] = {
        "Deployment": {"selector": selector, "template": _template(app)},
        "ReplicaSet": {"selector": selector, "template": _template(app)},
        "StatefulSet": {"selector": selector, "serviceName": name, "template": _template(app)},
        "DaemonSet": {"selector": selector, "template": _template(app)},
        "Job": {"template": {**_template(app), "spec": {**POD_SPEC, "restartPolicy": "Never"}}},
        "CronJob": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {"template": {**_template(app), "spec": {**POD_SPEC, "restartPolicy": "Never"}}}
            },
        },
    }
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {"app": app}}
    if owner is not None:
        metadata["ownerReferences"] = [_owner_reference(owner)]
    obj = {"apiVersion": OWNER_API[kind], "kind": kind, "metadata": metadata, "spec": specs[kind]}
    return await apply(api, obj)


async def create_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    owner: dict[str, Any] | None = None,
    owner_reference: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    image: str = "nginx:1.27",
) -> dict[str, Any]:
    """A pod (unscheduled: no node runs it), owned by ``owner`` when given."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {"app": "web"}}
    if owner is not None:
        owner_reference = _owner_reference(owner)
    if owner_reference is not None:
        metadata["ownerReferences"] = [owner_reference]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    return await apply(api, pod)


@dataclass
class Workload:
    namespace: str
    pod: str
    replicaset: str
    deployment: str


async def deployment_workload(
    api: client.ApiClient,
    namespace: str,
    *,
    deployment_labels: dict[str, str] | None = None,
    pod_labels: dict[str, str] | None = None,
) -> Workload:
    """Deployment ``web`` -> ReplicaSet ``web-7d`` -> Pod ``web-7d4``, with their ownerReferences, as the
    Deployment and ReplicaSet controllers would have created them."""
    deployment = await create_owner(api, namespace, "Deployment", "web", labels=deployment_labels)
    replicaset = await create_owner(api, namespace, "ReplicaSet", "web-7d", owner=deployment)
    await create_pod(api, namespace, "web-7d4", owner=replicaset, labels=pod_labels)
    return Workload(namespace, "web-7d4", "web-7d", "web")


async def read_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The pod as a dict (camelCase, as the API serves it), or None when it is gone."""
    try:
        pod = await client.CoreV1Api(api).read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    found: dict[str, Any] = api.sanitize_for_serialization(pod)
    return found


async def read_object(api: client.ApiClient, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """A workload as a dict (camelCase)."""
    reads = {
        "Deployment": (client.AppsV1Api, "read_namespaced_deployment"),
        "ReplicaSet": (client.AppsV1Api, "read_namespaced_replica_set"),
        "StatefulSet": (client.AppsV1Api, "read_namespaced_stateful_set"),
        "DaemonSet": (client.AppsV1Api, "read_namespaced_daemon_set"),
        "Job": (client.BatchV1Api, "read_namespaced_job"),
        "CronJob": (client.BatchV1Api, "read_namespaced_cron_job"),
    }
    api_class, read = reads[kind]
    obj = await getattr(api_class(api), read)(name, namespace)
    found: dict[str, Any] = api.sanitize_for_serialization(obj)
    return found


async def events_about(api: client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """events.k8s.io Events in ``namespace`` whose ``regarding`` object is named ``name``."""
    listed = await client.EventsV1Api(api).list_namespaced_event(
        namespace, field_selector=f"regarding.name={name}"
    )
    return [api.sanitize_for_serialization(e) for e in listed.items]


# -- dispatchers ------------------------------------------------------------------------------------


def rules(*actions: str, dedupe: str = "0", name: str = "r") -> str:
    """One rule that matches anything, with ``actions`` given as YAML flow mappings."""
    lines = "\n".join(f"      - {a}" for a in actions)
    return f"rules:\n  - name: {name}\n    dedupe: {dedupe}\n    actions:\n{lines}\n"


@pytest.fixture
async def chart_dispatcher(
    chart_identity: Identity,
    chart_values: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[MakeDispatcher]:
    """``await chart_dispatcher(rules_yaml, **settings)``: a started dispatcher built as ``tribunal
    serve`` builds it (``build_dispatcher``), whose cluster actions authenticate as the chart's
    ServiceAccount (``kubeconfig=`` for another identity's), with the cluster actions, owners and
    namespaces the chart's Deployment gives it for ``chart_values`` (``deployment_settings``); fast
    retries; stopped after the test."""
    granted = deployment_settings(chart_values)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # the kubeconfig, not in-cluster config
    defaults = {
        "namespace": RELEASE_NAMESPACE,  # TRIBUNAL_NAMESPACE, as the chart sets it
        "actions": {"kubeconfig": chart_identity.kubeconfig, **granted},
    }
    async with dispatchers(tmp_path, defaults) as make:

        async def make_as(
            rules_yaml: str | None = None,
            *,
            kubeconfig: Path | None = None,
            actions: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> Dispatcher:
            identity = {"kubeconfig": kubeconfig} if kubeconfig is not None else {}
            return await make(rules_yaml, actions={**identity, **(actions or {})}, **kwargs)

        yield make_as
