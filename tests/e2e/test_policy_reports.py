"""PolicyReports in the cluster (TRIBUNAL_POLICY_REPORTS) against a real kube-apiserver: the
wgpolicyk8s.io CRDs of ../shared/schemas installed, Tribunal (`tribunal serve`, recording in SQLite)
judging admission reviews posted to /validate and writing its findings as reports through a token of
the chart's ServiceAccount, whose only grants are the chart's policy-reports ClusterRole: the reports
appear with the findings' results and counts, change when a finding resolves, and are deleted when
none is left. What is read back is what `kubectl get policyreports` shows (the admin's view)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests import components
from tests.conftest import POLICY_DIR, RULES_DIR, SHARED
from tests.e2e.conftest import (
    RELEASE_NAMESPACE,
    RESTRICTED_CONTAINER,
    apply,
    compliant_pod,
    ensure_namespace,
    eventually,
    install_crds,
    render_chart,
)
from tests.e2e.control_plane import ControlPlane
from tribunal.app import build_server
from tribunal.server import Server
from tribunal.settings import Settings

pytestmark = pytest.mark.e2e

GROUP, VERSION = "wgpolicyk8s.io", "v1alpha2"
CRDS = [
    SHARED / "schemas" / "wgpolicyk8s.io_v1alpha2_policyreports.yaml",
    SHARED / "schemas" / "wgpolicyk8s.io_v1alpha2_clusterpolicyreports.yaml",
]
SELECTOR = "app.kubernetes.io/managed-by=tribunal,tribunal.dev/report=findings"


# -- the CRDs, the chart's rights ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def report_crds(control_plane: ControlPlane) -> None:
    """The PolicyReport and ClusterPolicyReport CRDs created once per session, Established and
    served at v1alpha2."""
    for path in CRDS:
        if not path.is_file():
            components.missing(str(path), "the wgpolicyk8s.io CRDs of ../shared/schemas")
    await install_crds(control_plane, [yaml.safe_load(path.read_text()) for path in CRDS])


@pytest.fixture
async def chart_kubeconfig(
    api: client.ApiClient, control_plane: ControlPlane, report_crds: None, tmp_path: Path
) -> Path:
    """A kubeconfig with a token of the chart's ServiceAccount, bound by the chart (default values:
    policyReports.enabled) to its policy-reports ClusterRole, and applied with nothing else."""
    objects = [
        o
        for o in render_chart()
        if o["kind"] == "ServiceAccount"
        or (
            o["kind"] in ("ClusterRole", "ClusterRoleBinding")
            and o["metadata"]["name"].endswith("policy-reports")
        )
    ]
    assert sorted(o["kind"] for o in objects) == ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]
    await ensure_namespace(api, RELEASE_NAMESPACE)
    for obj in objects:
        await apply(api, obj)
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    token = await client.CoreV1Api(api).create_namespaced_service_account_token(
        account["metadata"]["name"], RELEASE_NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    )
    # RBAC's authorizer learns of new bindings through informers: wait until it lets the account list.
    review = {
        "spec": {
            "user": f"system:serviceaccount:{RELEASE_NAMESPACE}:{account['metadata']['name']}",
            "resourceAttributes": {"group": GROUP, "resource": "policyreports", "verb": "list"},
        }
    }
    authorization = client.AuthorizationV1Api(api)

    async def allowed() -> bool:
        answer = await authorization.create_subject_access_review(review)
        return bool(answer.status.allowed)

    await eventually(allowed, 30, "the chart's ServiceAccount may list policyreports")
    return control_plane.write_kubeconfig(tmp_path / "tribunal.kubeconfig", token=token.status.token)


@pytest.fixture
async def tribunal_reports(
    chart_kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Server]:
    """`tribunal serve` with TRIBUNAL_POLICY_REPORTS on (a pass every 0.2 s), the cluster reached as
    the chart's ServiceAccount; plain HTTP on loopback (the reviews are posted to it directly)."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # the kubeconfig, not in-cluster
    settings = Settings.model_validate(
        {
            "host": "127.0.0.1",
            "port": 0,
            "plain_http": True,
            "policy_dir": POLICY_DIR,
            "rules_dir": RULES_DIR,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}",
            "actions": {"state_dir": tmp_path / "state", "kubeconfig": chart_kubeconfig, "cluster": False},
            "judge_workers": 0,
            "policy_reports": True,
            "policy_reports_interval_seconds": 0.2,
        }
    )
    server = build_server(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def cluster_role_name(api: client.ApiClient) -> AsyncIterator[str]:
    """A ClusterRole name for the test; the cluster report is deleted after it (no other test
    writes Tribunal's reports, and this one's store is gone with it)."""
    yield f"e2e-reports-{uuid.uuid4().hex[:8]}"
    objects = client.CustomObjectsApi(api)
    for item in (
        await objects.list_cluster_custom_object(
            GROUP, VERSION, "clusterpolicyreports", label_selector=SELECTOR
        )
    )["items"]:
        await objects.delete_cluster_custom_object(
            GROUP, VERSION, "clusterpolicyreports", item["metadata"]["name"]
        )


# -- reviews --------------------------------------------------------------------------------------


def admission(obj: dict[str, Any], namespace: str, operation: str = "CREATE") -> dict[str, Any]:
    kind = obj["kind"]
    group, _, version = obj["apiVersion"].rpartition("/")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "name": obj["metadata"]["name"],
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
        },
    }


def privileged_pod(name: str, namespace: str) -> dict[str, Any]:
    pod = compliant_pod(name)
    pod["metadata"]["namespace"] = namespace
    container = {**RESTRICTED_CONTAINER, "securityContext": {**RESTRICTED_CONTAINER["securityContext"]}}
    container["securityContext"]["privileged"] = True
    container["securityContext"]["allowPrivilegeEscalation"] = True
    pod["spec"]["containers"] = [container]
    return pod


def fine_pod(name: str, namespace: str) -> dict[str, Any]:
    """A pod without a finding of any admission policy, warnings included (the e2e ``compliant_pod``
    is admitted, with warnings: its image is not pinned by digest, it has no probes, it mounts the
    ServiceAccount token)."""
    pod = compliant_pod(name, automountServiceAccountToken=False)
    pod["metadata"]["namespace"] = namespace
    probe = {"httpGet": {"path": "/healthz", "port": 8080}}
    image = "ghcr.io/example/checkout@sha256:" + "a" * 64
    pod["spec"]["containers"] = [
        {**RESTRICTED_CONTAINER, "image": image, "livenessProbe": probe, "readinessProbe": probe}
    ]
    return pod


def cluster_role(name: str, verbs: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs}],
    }


async def judge(server: Server, obj: dict[str, Any], namespace: str = "", operation: str = "CREATE") -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/validate", json=admission(obj, namespace, operation)) as resp,
    ):
        assert resp.status == 200, await resp.text()


def open_findings(db: Path, namespace: str) -> set[tuple[str, str]]:
    """(policy, subject key) of the open findings on record in ``namespace`` ("": cluster-scoped)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT policy, subject_key FROM findings WHERE status = 'open' AND COALESCE(namespace, '') = ?",
            (namespace,),
        ).fetchall()
    return {(p, k) for p, k in rows}


async def report(api: client.ApiClient, namespace: str) -> dict[str, Any] | None:
    """Tribunal's report of ``namespace`` ("": the ClusterPolicyReport), None when there is none."""
    objects = client.CustomObjectsApi(api)
    try:
        if namespace:
            found = await objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "policyreports", "tribunal"
            )
        else:
            found = await objects.get_cluster_custom_object(
                GROUP, VERSION, "clusterpolicyreports", "tribunal"
            )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    assert isinstance(found, dict)
    return found


def results(found: dict[str, Any] | None) -> set[tuple[str, str]]:
    """(policy, namespace/Kind/name) of a report's results, as findings name their subjects."""
    if found is None:
        return set()
    out = set()
    for r in found.get("results") or []:
        (ref,) = r["resources"]
        out.add((r["policy"], f"{ref.get('namespace') or '-'}/{ref['kind']}/{ref['name']}"))
    return out


async def report_of(
    api: client.ApiClient, db: Path, namespace: str, ready: Callable[[set[tuple[str, str]]], bool]
) -> dict[str, Any] | None:
    """The report of ``namespace`` once it holds exactly the open findings on record there and
    those satisfy ``ready``; fails with both after 30 s."""
    found: dict[str, Any] | None = None
    wanted: set[tuple[str, str]] = set()
    try:
        async with asyncio.timeout(30):
            while True:
                wanted = open_findings(db, namespace) if db.exists() else set()
                found = await report(api, namespace)
                if ready(wanted) and results(found) == wanted:
                    return found
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"report of {namespace or '(cluster)'}: {results(found)}; open findings: {wanted}")


# -- the test -------------------------------------------------------------------------------------


async def test_reports_follow_the_findings_as_they_open_and_resolve(
    api: client.ApiClient,
    namespace: str,
    cluster_role_name: str,
    tribunal_reports: Server,
    tmp_path: Path,
) -> None:
    server, db = tribunal_reports, tmp_path / "tribunal.db"
    await judge(server, privileged_pod("web", namespace), namespace)
    await judge(server, privileged_pod("api", namespace), namespace)
    await judge(server, cluster_role(cluster_role_name, ["*"]))

    web, api_pod = f"{namespace}/Pod/web", f"{namespace}/Pod/api"
    shop = await report_of(
        api,
        db,
        namespace,
        lambda open_: {("privileged_containers", web), ("privileged_containers", api_pod)} <= open_,
    )
    assert shop is not None
    assert shop["kind"] == "PolicyReport" and shop["apiVersion"] == f"{GROUP}/{VERSION}"
    assert shop["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tribunal"
    assert [m["manager"] for m in shop["metadata"]["managedFields"] if m["operation"] == "Apply"] == [
        "tribunal"
    ]
    total = len(shop["results"])
    assert shop["summary"] == {"pass": 0, "fail": total, "warn": 0, "error": 0, "skip": 0}
    privileged = [r for r in shop["results"] if r["policy"] == "privileged_containers"]
    assert {r["resources"][0]["name"] for r in privileged} == {"web", "api"}
    for r in privileged:
        assert r["source"] == "tribunal" and r["result"] == "fail" and r["severity"] in ("critical", "high")
        assert r["category"] == "Tribunal admission" and r["scored"] is True
        assert r["resources"][0] == {
            **r["resources"][0],
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
        }
        assert r["properties"]["evidenceKind"] == "admission"
        assert r["properties"]["evidence"] and r["properties"]["controls"]
        assert r["timestamp"]["seconds"] > 0
    cluster = await report_of(
        api, db, "", lambda open_: ("rbac_wildcards", f"-/ClusterRole/{cluster_role_name}") in open_
    )
    assert cluster is not None and cluster["kind"] == "ClusterPolicyReport"
    assert "namespace" not in cluster["metadata"]
    assert cluster["summary"]["fail"] == len(cluster["results"]) >= 1

    # web is fixed: its results go, api's stay.
    await judge(server, fine_pod("web", namespace), namespace, "UPDATE")
    shop = await report_of(
        api, db, namespace, lambda open_: bool(open_) and not any(k == web for _, k in open_)
    )
    assert shop is not None and {r["resources"][0]["name"] for r in shop["results"]} == {"api"}
    assert shop["summary"]["fail"] == len(shop["results"]) < total

    # Everything is fixed: no finding is left open, and no report either.
    await judge(server, fine_pod("api", namespace), namespace, "UPDATE")
    await judge(server, cluster_role(cluster_role_name, ["get", "list"]), operation="UPDATE")
    assert await report_of(api, db, namespace, lambda open_: not open_) is None
    assert await report_of(api, db, "", lambda open_: not open_) is None
    listing = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "policyreports", label_selector=SELECTOR
    )
    assert listing["items"] == []
