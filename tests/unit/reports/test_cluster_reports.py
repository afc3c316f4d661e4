"""Findings -> PolicyReports (reports/cluster_reports.py): the mapping, its bounds, its shape against the
wgpolicyk8s.io CRD's own schema, and the reconciler's create / leave / delete against a stand-in for
the custom objects API (the real API server is tests/e2e/test_policy_reports.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_asyncio.client.exceptions import ApiException

from tests import components
from tests.conftest import SHARED
from tribunal.model import EvidenceKind, Severity, Subject
from tribunal.reports import cluster_reports
from tribunal.reports.cluster_reports import (
    HASH_ANNOTATION,
    OPENREPORTS,
    PART_ANNOTATION,
    SELECTOR,
    WGPOLICY,
    ClusterReports,
    ClusterReportsConfig,
    build_reports,
    policy_reports,
)
from tribunal.settings import Settings
from tribunal.store import FindingQuery, FindingRow, FindingStatus, Page

SEEN = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)


def finding(
    policy: str = "privileged",
    namespace: str | None = "shop",
    name: str = "web",
    kind: str = "Deployment",
    status: FindingStatus = FindingStatus.OPEN,
    severity: Severity = Severity.HIGH,
    evidence_kind: EvidenceKind = EvidenceKind.ADMISSION,
    **subject: Any,
) -> FindingRow:
    subj = Subject(namespace=namespace, workload_kind=kind or None, workload_name=name or None, **subject)
    return FindingRow(
        policy=policy,
        subject_key=subj.key(),
        kind=evidence_kind,
        namespace=namespace,
        subject=subj,
        severity=severity,
        status=status,
        first_seen=SEEN - timedelta(hours=1),
        last_seen=SEEN,
        count=3,
        first_evidence_id="uid-first",
        last_evidence_id="uid-last",
        msg=f"{policy} on {name}",
        controls=["cis-k8s:5.2.2", "pss-baseline:privileged-containers"],
        exception="break-glass" if status is FindingStatus.EXCEPTED else None,
        last_judged=SEEN,
    )


def by_name(reports: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in reports}


# -- the mapping ------------------------------------------------------------------------------


def test_one_report_per_namespace_and_a_cluster_report_for_the_rest() -> None:
    reports = build_reports(
        [
            finding("privileged", "shop", "web"),
            finding("latest_tag", "shop", "web", severity=Severity.MEDIUM),
            finding("privileged", "billing", "api", status=FindingStatus.EXCEPTED),
            finding("privileged", "billing", "old", status=FindingStatus.RESOLVED),
            finding("rbac_wildcard", None, "admin", kind="ClusterRole", severity=Severity.CRITICAL),
        ]
    )
    found = by_name(reports)
    assert set(found) == {
        ("PolicyReport", "billing", "tribunal"),
        ("PolicyReport", "shop", "tribunal"),
        ("ClusterPolicyReport", "", "tribunal"),
    }
    shop = found[("PolicyReport", "shop", "tribunal")]
    assert shop["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert shop["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tribunal",
        "tribunal.dev/report": "findings",
    }
    assert shop["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert [r["policy"] for r in shop["results"]] == ["latest_tag", "privileged"]  # sorted
    result = shop["results"][1]
    assert result == {
        "source": "tribunal",
        "policy": "privileged",
        "rule": "privileged",
        "category": "Tribunal admission",
        "severity": "high",
        "result": "fail",
        "scored": True,
        "message": "privileged on web",
        "timestamp": {"seconds": int(SEEN.timestamp()), "nanos": 250000000},
        "properties": {
            "controls": "cis-k8s:5.2.2,pss-baseline:privileged-containers",
            "evidence": "uid-last",
            "firstEvidence": "uid-first",
            "evidenceKind": "admission",
            "firstSeen": (SEEN - timedelta(hours=1)).isoformat(),
            "lastSeen": SEEN.isoformat(),
            "count": "3",
            "subject": "shop/Deployment/web",
        },
        "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"}],
    }
    # An excepted finding is a skip, with its exception; a resolved one has no result at all.
    billing = found[("PolicyReport", "billing", "tribunal")]
    assert billing["summary"] == {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 1}
    (skipped,) = billing["results"]
    assert skipped["result"] == "skip" and skipped["properties"]["exception"] == "break-glass"
    cluster = found[("ClusterPolicyReport", "", "tribunal")]
    assert "namespace" not in cluster["metadata"]
    (role,) = cluster["results"]
    assert role["severity"] == "critical"
    assert role["resources"] == [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "admin"}
    ]


def test_subjects_without_a_resource_are_described_by_properties() -> None:
    image_only = finding(
        "image_critical_cve",
        None,
        "",
        kind="",
        evidence_kind=EvidenceKind.TRIVY,
        image="ghcr.io/example/api:1.0",
    )
    falco_pod = finding(
        "falco_alert", "shop", "", kind="", evidence_kind=EvidenceKind.FALCO, pod="web-7d9c", container="app"
    )
    found = by_name(build_reports([image_only, falco_pod]))
    (image,) = found[("ClusterPolicyReport", "", "tribunal")]["results"]
    assert "resources" not in image
    assert image["category"] == "Tribunal vulnerability"
    assert image["properties"]["image"] == "ghcr.io/example/api:1.0"
    assert image["properties"]["subject"] == "-/-/ghcr.io/example/api:1.0"
    (pod,) = found[("PolicyReport", "shop", "tribunal")]["results"]
    assert pod["resources"] == [{"apiVersion": "v1", "kind": "Pod", "name": "web-7d9c", "namespace": "shop"}]
    assert pod["category"] == "Tribunal runtime"
    assert pod["properties"]["container"] == "app"


def test_a_scope_with_more_results_than_the_bound_is_split_in_parts() -> None:
    rows = [finding("privileged", "shop", f"web-{i:02}") for i in range(7)]
    reports = build_reports(rows, max_results=3)
    assert [r["metadata"]["name"] for r in reports] == ["tribunal", "tribunal-2", "tribunal-3"]
    assert [len(r["results"]) for r in reports] == [3, 3, 1]
    assert [r["summary"]["fail"] for r in reports] == [3, 3, 1]
    assert reports[1]["metadata"]["annotations"][PART_ANNOTATION].startswith("2/3: ")
    names = [res["resources"][0]["name"] for r in reports for res in r["results"]]
    assert names == [f"web-{i:02}" for i in range(7)]  # every finding once, in order
    assert PART_ANNOTATION not in build_reports(rows, max_results=7)[0]["metadata"]["annotations"]
    with pytest.raises(ValueError, match="max_results"):
        build_reports(rows, max_results=0)


def test_a_scope_whose_results_would_be_too_large_is_split_too(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        finding("privileged", "shop", f"web-{i:02}").model_copy(update={"msg": "m" * 900}) for i in range(6)
    ]
    monkeypatch.setattr(cluster_reports, "MAX_REPORT_BYTES", 3000)  # about two results of ~1.4 KB
    reports = build_reports(rows, max_results=500)
    assert [len(r["results"]) for r in reports] == [2, 2, 2]
    assert [r["metadata"]["name"] for r in reports] == ["tribunal", "tribunal-2", "tribunal-3"]
    monkeypatch.setattr(cluster_reports, "MAX_REPORT_BYTES", 10)  # a result larger than the bound is alone
    assert [len(r["results"]) for r in build_reports(rows[:2])] == [1, 1]


def test_long_messages_are_cut() -> None:
    row = finding().model_copy(update={"msg": "x" * 5000})
    (report,) = build_reports([row])
    message = report["results"][0]["message"]
    assert len(message) == 1024 and message.endswith("…")


def test_the_content_hash_follows_the_content_only() -> None:
    rows = [finding("privileged"), finding("latest_tag")]
    (first,) = build_reports(rows)
    (again,) = build_reports(list(reversed(rows)))
    assert first == again  # deterministic whatever order the store answers in
    (changed,) = build_reports([*rows, finding("host_network")])
    assert (
        first["metadata"]["annotations"][HASH_ANNOTATION]
        != changed["metadata"]["annotations"][HASH_ANNOTATION]
    )
    assert build_reports([finding(status=FindingStatus.RESOLVED)]) == []


def test_openreports_have_the_same_shape_in_their_own_group() -> None:
    rows = [finding(), finding("rbac_wildcard", None, "admin", kind="ClusterRole")]
    wg = build_reports(rows, WGPOLICY)
    openreports = build_reports(rows, OPENREPORTS)
    assert [(r["apiVersion"], r["kind"]) for r in openreports] == [
        ("openreports.io/v1alpha1", "ClusterReport"),
        ("openreports.io/v1alpha1", "Report"),
    ]
    assert all(r["source"] == "tribunal" for r in openreports)
    assert [r["results"] for r in openreports] == [r["results"] for r in wg]


CRDS = {
    "PolicyReport": SHARED / "schemas" / "wgpolicyk8s.io_v1alpha2_policyreports.yaml",
    "ClusterPolicyReport": SHARED / "schemas" / "wgpolicyk8s.io_v1alpha2_clusterpolicyreports.yaml",
}


def crd_schema(kind: str) -> dict[str, Any]:
    path = CRDS[kind]
    if not path.is_file():
        components.missing(str(path), "the wgpolicyk8s.io CRDs of ../shared/schemas")
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2"]
    assert version["served"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_reports_are_valid_against_the_crds_schema() -> None:
    rows = [
        finding(),
        finding(
            "falco_alert",
            "shop",
            "",
            kind="",
            evidence_kind=EvidenceKind.FALCO,
            pod="p",
            severity=Severity.INFO,
        ),
        finding("privileged", "shop", "x", status=FindingStatus.EXCEPTED, severity=Severity.LOW),
        finding("rbac_wildcard", None, "admin", kind="ClusterRole", severity=Severity.CRITICAL),
        finding("image_cve", None, "", kind="", evidence_kind=EvidenceKind.TRIVY, image="nginx:1"),
    ]
    for report in build_reports(rows):
        jsonschema.validate(report, crd_schema(report["kind"]))


# -- the reconciler ---------------------------------------------------------------------------


class FakeStore:
    def __init__(self, rows: list[FindingRow]) -> None:
        self.rows = rows
        self.queries: list[FindingQuery] = []

    async def findings(self, query: FindingQuery) -> Page[FindingRow]:
        self.queries.append(query)
        rows = [r for r in self.rows if r.status is query.status]
        start = int(query.cursor or 0)
        items = rows[start : start + 2]  # small pages: the reconciler must follow the cursor
        more = start + 2 < len(rows)
        return Page[FindingRow](items=items, next_cursor=str(start + 2) if more else None)


class FakeObjects:
    """The calls of kubernetes-asyncio's CustomObjectsApi the reconciler makes, on a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name)
        self.calls: list[str] = []

    async def list_cluster_custom_object(self, group: str, version: str, plural: str, **kw: Any) -> Any:
        assert kw["label_selector"] == SELECTOR
        return {"items": [o for (p, _, _), o in self.objects.items() if p == plural]}

    async def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any, **kw: Any
    ) -> Any:
        assert kw["field_manager"] == "tribunal" and kw["force"] is True
        assert kw["_content_type"] == "application/apply-patch+yaml"
        self.calls.append(f"apply {plural} {namespace}/{name}")
        self.objects[(plural, namespace, name)] = body
        return body

    async def patch_cluster_custom_object(
        self, group: str, version: str, plural: str, name: str, body: Any, **kw: Any
    ) -> Any:
        self.calls.append(f"apply {plural} {name}")
        self.objects[(plural, "", name)] = body
        return body

    async def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> Any:
        self.calls.append(f"delete {plural} {namespace}/{name}")
        del self.objects[(plural, namespace, name)]

    async def delete_cluster_custom_object(
        self, group: str, version: str, plural: str, name: str, **kw: Any
    ) -> Any:
        self.calls.append(f"delete {plural} {name}")
        del self.objects[(plural, "", name)]


@pytest.fixture
def objects(monkeypatch: pytest.MonkeyPatch) -> FakeObjects:
    fake = FakeObjects()
    monkeypatch.setattr(cluster_reports.client, "CustomObjectsApi", lambda api: fake)
    return fake


async def kube_api() -> object:
    return object()


async def test_the_reconciler_applies_what_changed_and_deletes_what_no_finding_needs(
    objects: FakeObjects,
) -> None:
    store = FakeStore(
        [
            finding("privileged", "shop", "web"),
            finding("latest_tag", "shop", "web"),
            finding("host_network", "shop", "db"),
            finding("privileged", "billing", "api", status=FindingStatus.EXCEPTED),
            finding("rbac_wildcard", None, "admin", kind="ClusterRole"),
        ]
    )
    reconciler = ClusterReports(store, kube_api)
    done = await reconciler.reconcile()
    assert sorted(done.applied) == [
        "ClusterPolicyReport tribunal",
        "PolicyReport billing/tribunal",
        "PolicyReport shop/tribunal",
    ]
    assert {q.status for q in store.queries} == {FindingStatus.OPEN, FindingStatus.EXCEPTED}
    assert len(objects.objects[("policyreports", "shop", "tribunal")]["results"]) == 3  # every page read

    objects.calls.clear()
    again = await reconciler.reconcile()
    assert objects.calls == [] and len(again.unchanged) == 3  # nothing changed, nothing written

    # shop/web's privileged finding resolves; billing's and the cluster's findings all do.
    store.rows = [
        finding("latest_tag", "shop", "web"),
        finding("host_network", "shop", "db"),
        finding("privileged", "shop", "web", status=FindingStatus.RESOLVED),
    ]
    done = await reconciler.reconcile()
    assert objects.calls == [
        "apply policyreports shop/tribunal",
        "delete clusterpolicyreports tribunal",
        "delete policyreports billing/tribunal",
    ]
    shop = objects.objects[("policyreports", "shop", "tribunal")]
    assert [r["policy"] for r in shop["results"]] == ["host_network", "latest_tag"]
    assert shop["summary"]["fail"] == 2
    assert reconciler.probe() is None


async def test_findings_of_a_namespace_that_is_gone_do_not_stop_the_others(objects: FakeObjects) -> None:
    real_patch = objects.patch_namespaced_custom_object

    async def patch(group: str, version: str, namespace: str, *args: Any, **kw: Any) -> Any:
        if namespace == "deleted":
            raise ApiException(status=404, reason="Not Found")
        if namespace == "terminating":
            error = ApiException(status=403, reason="Forbidden")
            error.body = b'{"message": "unable to create new content in namespace terminating because it is being terminated"}'
            raise error
        return await real_patch(group, version, namespace, *args, **kw)

    objects.patch_namespaced_custom_object = patch  # type: ignore[method-assign]
    store = FakeStore(
        [finding(namespace="deleted"), finding(namespace="terminating"), finding(namespace="shop")]
    )
    done = await ClusterReports(store, kube_api).reconcile()
    assert done.applied == ["PolicyReport shop/tribunal"]
    assert done.skipped == ["PolicyReport deleted/tribunal", "PolicyReport terminating/tribunal"]

    async def forbidden(*args: Any, **kw: Any) -> Any:
        raise ApiException(status=403, reason="Forbidden")

    objects.patch_namespaced_custom_object = forbidden  # type: ignore[method-assign]
    with pytest.raises(ApiException):  # any other refusal fails the pass (and is reported)
        await ClusterReports(FakeStore([finding(namespace="other")]), kube_api).reconcile()


async def until(check: Callable[[], bool], seconds: float = 5) -> None:
    """Returns once ``check()`` holds; fails the test after ``seconds``."""
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"not within {seconds} s")


async def test_a_failing_pass_is_reported_and_retried(objects: FakeObjects) -> None:
    calls = 0

    async def failing_list(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ApiException(status=404, reason="Not Found")
        return {"items": []}

    objects.list_cluster_custom_object = failing_list  # type: ignore[method-assign]
    reconciler = ClusterReports(FakeStore([finding()]), kube_api, ClusterReportsConfig(interval_seconds=0.05))
    await reconciler.start()
    try:
        await until(lambda: reconciler.probe() is not None)
        assert "CRDs" in (reconciler.probe() or "")
        await until(lambda: reconciler.probe() is None)
    finally:
        await reconciler.stop()
    assert ("policyreports", "shop", "tribunal") in objects.objects


def test_the_setting_builds_the_reconciler_or_nothing(tmp_path: Any) -> None:
    base = {"policy_dir": tmp_path, "rules_dir": tmp_path}
    off = Settings.model_validate(base)
    assert off.policy_reports is False
    assert policy_reports(off, FakeStore([]), kube_api) == []
    on = Settings.model_validate(
        {
            **base,
            "policy_reports": True,
            "policy_reports_api": "both",
            "policy_reports_interval_seconds": 5,
            "policy_reports_max_results": 100,
        }
    )
    (reconciler,) = policy_reports(on, FakeStore([]), kube_api)
    assert reconciler.config.apis == (WGPOLICY, OPENREPORTS)
    assert reconciler.config.interval_seconds == 5 and reconciler.config.max_results == 100
