"""PolicyReports in the cluster: Tribunal's open findings as ``wgpolicyk8s.io/v1alpha2`` PolicyReport
(one per namespace) and ClusterPolicyReport (subjects without a namespace) resources, kept up to date
by a reconciler, so that Policy Reporter and ``kubectl get policyreports`` show them as they show
Kyverno's. ``openreports.io/v1alpha1`` (Report, ClusterReport: the successor API, same shape) is
written instead of, or besides, them when asked.

Each result is one finding: ``policy`` (and ``rule``) the Tribunal policy, ``result`` ``fail`` for an
open finding and ``skip`` for an excepted one (with the exception in ``properties``), the subject in
``resources``. A resolved finding has no result: its result goes at the next pass, and a report left
with none is deleted. A report holds at most ``max_results`` results: a namespace with more gets
several reports (``tribunal``, ``tribunal-2``, ...), each saying which part it is; so does one whose
results would take more than ``MAX_REPORT_BYTES`` (etcd refuses objects over 1.5 MiB).

Reports are written by server-side apply (field manager ``tribunal``), and only when their content
changed (a hash of it is kept in an annotation); Tribunal's reports are the ones labelled
``tribunal.dev/report=findings`` (the ``policyreport`` export of ``tribunal report``, labelled with its
framework instead, is never touched)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter, Gauge

from tribunal.model import EvidenceKind, Severity
from tribunal.settings import Settings
from tribunal.store import FindingQuery, FindingRow, FindingStatus, Page

log = logging.getLogger("tribunal.reports.cluster")

SOURCE = "tribunal"
REPORT_NAME = "tribunal"
MANAGED_BY = "app.kubernetes.io/managed-by"
REPORT_LABEL = "tribunal.dev/report"
LABELS = {MANAGED_BY: SOURCE, REPORT_LABEL: "findings"}
SELECTOR = ",".join(f"{k}={v}" for k, v in LABELS.items())
HASH_ANNOTATION = "tribunal.dev/content-hash"
PART_ANNOTATION = "tribunal.dev/part"
APPLY_PATCH = "application/apply-patch+yaml"
# Messages and property values are cut to this many characters: a report stays far below etcd's
# object size limit (1.5 MiB) with thousands of results.
MAX_TEXT = 1024
# The results of one report take at most this many bytes (as JSON), whatever max_results allows.
MAX_REPORT_BYTES = 1024 * 1024
CATEGORIES = {
    EvidenceKind.ADMISSION: "Tribunal admission",
    EvidenceKind.FALCO: "Tribunal runtime",
    EvidenceKind.TRIVY: "Tribunal vulnerability",
}
# apiVersion of the kinds a subject names (others are referenced by kind and name only).
API_VERSIONS = {
    "Pod": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Namespace": "v1",
    "Node": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
}


@dataclass(frozen=True)
class ReportApi:
    """One API group of policy reports: its namespaced and cluster-scoped kinds."""

    group: str
    version: str
    kind: str
    plural: str
    cluster_kind: str
    cluster_plural: str
    # openreports.io names the source once per report too.
    report_source: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


WGPOLICY = ReportApi(
    "wgpolicyk8s.io",
    "v1alpha2",
    "PolicyReport",
    "policyreports",
    "ClusterPolicyReport",
    "clusterpolicyreports",
)
OPENREPORTS = ReportApi(
    "openreports.io", "v1alpha1", "Report", "reports", "ClusterReport", "clusterreports", report_source=True
)
REPORT_APIS = {
    "wgpolicyk8s.io": (WGPOLICY,),
    "openreports.io": (OPENREPORTS,),
    "both": (WGPOLICY, OPENREPORTS),
}


# -- findings -> reports ----------------------------------------------------------------------


def build_reports(
    findings: Iterable[FindingRow], api: ReportApi = WGPOLICY, max_results: int = 500
) -> list[dict[str, Any]]:
    """The reports of ``findings`` (open ones fail, excepted ones skip, resolved ones are left
    out): one per namespace, one cluster report for the findings without a namespace, split in
    parts of at most ``max_results`` results. Sorted, and deterministic for the same findings."""
    if max_results < 1:
        raise ValueError("max_results must be at least 1")
    by_scope: dict[str, list[FindingRow]] = {}
    for finding in findings:
        if finding.status is FindingStatus.RESOLVED:
            continue
        by_scope.setdefault(finding.namespace or "", []).append(finding)
    reports = []
    for namespace, rows in sorted(by_scope.items()):
        rows.sort(key=lambda f: (f.policy, f.subject_key))
        parts = _parts([_result(f) for f in rows], max_results)
        for number, part in enumerate(parts, start=1):
            reports.append(_report(api, namespace or None, number, len(parts), part))
    return reports


def _parts(results: list[dict[str, Any]], max_results: int) -> list[list[dict[str, Any]]]:
    """``results`` in order, cut in parts of at most ``max_results`` and ``MAX_REPORT_BYTES``."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for result in results:
        length = len(orjson.dumps(result))
        if parts[-1] and (len(parts[-1]) >= max_results or size + length > MAX_REPORT_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(result)
        size += length
    return parts


def report_name(part: int) -> str:
    return REPORT_NAME if part == 1 else f"{REPORT_NAME}-{part}"


def _report(
    api: ReportApi, namespace: str | None, part: int, parts: int, results: list[dict[str, Any]]
) -> dict[str, Any]:
    summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for result in results:
        summary[result["result"]] += 1
    content = {"summary": summary, "results": results}
    annotations = {HASH_ANNOTATION: hashlib.sha256(orjson.dumps(content)).hexdigest()[:32]}
    if parts > 1:
        annotations[PART_ANNOTATION] = (
            f"{part}/{parts}: this scope has more findings than one report holds "
            "(TRIBUNAL_POLICY_REPORTS_MAX_RESULTS results, 1 MiB); "
            f"the others are in the reports named {REPORT_NAME}-*"
        )
    metadata: dict[str, Any] = {"name": report_name(part), "labels": dict(LABELS), "annotations": annotations}
    if namespace is not None:
        metadata["namespace"] = namespace
    report: dict[str, Any] = {
        "apiVersion": api.api_version,
        "kind": api.kind if namespace is not None else api.cluster_kind,
        "metadata": metadata,
    }
    if api.report_source:
        report["source"] = SOURCE
    report.update(content)
    return report


def _result(f: FindingRow) -> dict[str, Any]:
    result: dict[str, Any] = {
        "source": SOURCE,
        "policy": f.policy,
        "rule": f.policy,
        "category": CATEGORIES.get(f.kind, SOURCE),
        "severity": _severity(f.severity),
        "result": "skip" if f.status is FindingStatus.EXCEPTED else "fail",
        "scored": True,
        "message": _cut(f.msg),
        "timestamp": _timestamp(f.last_seen),
        "properties": _properties(f),
    }
    reference = _reference(f)
    if reference is not None:
        result["resources"] = [reference]
    return result


def _severity(severity: Severity) -> str:
    return severity.value  # critical, high, medium, low, info: the reports' own scale


def _reference(f: FindingRow) -> dict[str, str] | None:
    """The resource the finding is about, as an ObjectReference; None when the subject names no
    resource (a Trivy report on an image alone, a Falco alert on the host)."""
    s = f.subject
    if s.workload_kind and s.workload_name:
        kind, name = s.workload_kind, s.workload_name
    elif s.pod:
        kind, name = "Pod", s.pod
    else:
        return None
    ref = {"kind": kind, "name": name}
    if kind in API_VERSIONS:
        ref = {"apiVersion": API_VERSIONS[kind], **ref}
    if f.namespace:
        ref["namespace"] = f.namespace
    return ref


def _properties(f: FindingRow) -> dict[str, str]:
    s = f.subject
    props = {
        "controls": ",".join(f.controls),
        "evidence": f.last_evidence_id,
        "firstEvidence": f.first_evidence_id,
        "evidenceKind": f.kind.value,
        "firstSeen": f.first_seen.isoformat(),
        "lastSeen": f.last_seen.isoformat(),
        "count": str(f.count),
        "subject": f.subject_key,
    }
    for name, value in (("image", s.image), ("container", s.container), ("host", s.host)):
        if value:
            props[name] = value
    if f.exception:
        props["exception"] = f.exception
    return {k: _cut(v) for k, v in props.items() if v}


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _timestamp(at: datetime) -> dict[str, int]:
    return {"seconds": int(at.timestamp()), "nanos": at.microsecond * 1000}


# -- the reconciler ---------------------------------------------------------------------------


class FindingSource(Protocol):
    """Where the findings come from: the store (``SqlStore.findings``)."""

    async def findings(self, query: FindingQuery) -> Page[FindingRow]: ...


@dataclass(frozen=True)
class ClusterReportsConfig:
    apis: tuple[ReportApi, ...] = (WGPOLICY,)
    interval_seconds: float = 60.0
    max_results: int = 500
    field_manager: str = "tribunal"
    request_timeout: float = 10.0


@dataclass
class Reconciled:
    """What one pass did: reports applied (created or changed), left as they were, deleted, and
    skipped (their namespace is gone, or going)."""

    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class ClusterReports:
    """Keeps the cluster's policy reports equal to the store's findings: every ``interval_seconds``
    (and at start), reads the open and excepted findings, applies the reports that changed and
    deletes Tribunal's reports no finding needs any more. A pass that fails (the API server down,
    the CRDs not installed, RBAC) is logged, reported by ``probe`` and tried again next interval."""

    def __init__(
        self,
        findings: FindingSource,
        kube_api: Callable[[], Awaitable[Any]],
        config: ClusterReportsConfig | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.findings = findings
        self.kube_api = kube_api
        self.config = config or ClusterReportsConfig()
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._wake = asyncio.Event()
        registry = registry or CollectorRegistry()
        self._passes = Counter(
            "tribunal_policy_report_passes",
            "Passes of the PolicyReport reconciler, by outcome (ok, error).",
            ["outcome"],
            registry=registry,
        )
        self._writes = Counter(
            "tribunal_policy_report_writes",
            "PolicyReports written to the cluster, by operation (apply, delete).",
            ["operation"],
            registry=registry,
        )
        self._reports = Gauge(
            "tribunal_policy_reports",
            "Tribunal's policy reports in the cluster after the last pass.",
            registry=registry,
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tribunal-policy-reports")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def probe(self) -> str | None:
        """The last pass's failure, None once a pass succeeds."""
        return self._error

    def trigger(self) -> None:
        """Run a pass now rather than at the end of the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                done = await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._passes.labels("error").inc()
                problem = _problem(exc)
                if problem != self._error:
                    log.error(
                        "policy reports: %s; trying again in %g s", problem, self.config.interval_seconds
                    )
                self._error = problem
            else:
                self._passes.labels("ok").inc()
                if self._error is not None:
                    log.info("policy reports: written again")
                self._error = None
                if done.applied or done.deleted:
                    log.info(
                        "policy reports: %d applied, %d deleted, %d unchanged, %d skipped (namespace gone)",
                        len(done.applied),
                        len(done.deleted),
                        len(done.unchanged),
                        len(done.skipped),
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval_seconds)
            self._wake.clear()

    async def read_findings(self) -> list[FindingRow]:
        """Every open and excepted finding, a page at a time."""
        rows: list[FindingRow] = []
        for status in (FindingStatus.OPEN, FindingStatus.EXCEPTED):
            cursor: str | None = None
            while True:
                page = await self.findings.findings(FindingQuery(status=status, limit=1000, cursor=cursor))
                rows.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        return rows

    async def reconcile(self) -> Reconciled:
        """One pass: the reports of the findings now, applied; the others deleted."""
        findings = await self.read_findings()
        objects = client.CustomObjectsApi(await self.kube_api())
        done = Reconciled()
        present = 0
        for api in self.config.apis:
            wanted = build_reports(findings, api, self.config.max_results)
            existing = await self._existing(objects, api)
            for report in wanted:
                key = _key(report)
                current = existing.pop(key, None)
                if current is not None and _hash(current) == _hash(report):
                    done.unchanged.append(_describe(report))
                    continue
                try:
                    await self._apply(objects, api, report)
                except ApiException as exc:
                    if not _namespace_gone(exc, report):
                        raise
                    # Findings outlive their namespace: there is nowhere to put their report.
                    done.skipped.append(_describe(report))
                    continue
                done.applied.append(_describe(report))
            for (namespace, name), report in sorted(existing.items()):
                await self._delete(objects, api, namespace, name)
                done.deleted.append(_describe(report))
            present += len(wanted)
        self._reports.set(present)
        return done

    async def _existing(self, objects: Any, api: ReportApi) -> dict[tuple[str, str], dict[str, Any]]:
        timeout = self.config.request_timeout
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for plural in (api.plural, api.cluster_plural):
            listing = await objects.list_cluster_custom_object(
                api.group, api.version, plural, label_selector=SELECTOR, _request_timeout=timeout
            )
            for item in listing.get("items") or []:
                item.setdefault("kind", api.kind if plural == api.plural else api.cluster_kind)
                found[_key(item)] = item
        return found

    async def _apply(self, objects: Any, api: ReportApi, report: dict[str, Any]) -> None:
        meta = report["metadata"]
        options = {
            "field_manager": self.config.field_manager,
            "force": True,
            "_content_type": APPLY_PATCH,
            "_request_timeout": self.config.request_timeout,
        }
        if "namespace" in meta:
            await objects.patch_namespaced_custom_object(
                api.group, api.version, meta["namespace"], api.plural, meta["name"], report, **options
            )
        else:
            await objects.patch_cluster_custom_object(
                api.group, api.version, api.cluster_plural, meta["name"], report, **options
            )
        self._writes.labels("apply").inc()

    async def _delete(self, objects: Any, api: ReportApi, namespace: str, name: str) -> None:
        timeout = self.config.request_timeout
        try:
            if namespace:
                await objects.delete_namespaced_custom_object(
                    api.group, api.version, namespace, api.plural, name, _request_timeout=timeout
                )
            else:
                await objects.delete_cluster_custom_object(
                    api.group, api.version, api.cluster_plural, name, _request_timeout=timeout
                )
        except ApiException as exc:
            if exc.status != 404:  # gone already (its namespace deleted)
                raise
        self._writes.labels("delete").inc()


def _key(report: dict[str, Any]) -> tuple[str, str]:
    meta = report.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _hash(report: dict[str, Any]) -> str | None:
    annotations = (report.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(HASH_ANNOTATION)
    return str(value) if value else None


def _describe(report: dict[str, Any]) -> str:
    namespace, name = _key(report)
    return f"{report.get('kind')} {namespace + '/' if namespace else ''}{name}"


def _namespace_gone(exc: ApiException, report: dict[str, Any]) -> bool:
    """The API server refused a namespaced report because its namespace does not exist (404) or is
    being deleted (403 with that reason)."""
    if "namespace" not in report["metadata"]:
        return False
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    return exc.status == 404 or (exc.status == 403 and "being terminated" in body)


def _problem(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        if exc.status == 404:
            return (
                "the policy report API is not served (404): install the wgpolicyk8s.io (or openreports.io) "
                "CRDs, e.g. with Policy Reporter's or Kyverno's chart"
            )
        if exc.status == 403:
            return f"forbidden (403): the ServiceAccount lacks the policy report grants: {exc.reason}"
        return f"the API server answered {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def policy_reports(
    settings: Settings,
    findings: FindingSource,
    kube_api: Callable[[], Awaitable[Any]],
    registry: CollectorRegistry | None = None,
) -> Sequence[ClusterReports]:
    """The reconciler of ``TRIBUNAL_POLICY_REPORTS`` (none when it is off), for ``build_server``'s
    components that start once the store has connected."""
    if not settings.policy_reports:
        return []
    config = ClusterReportsConfig(
        apis=REPORT_APIS[settings.policy_reports_api],
        interval_seconds=settings.policy_reports_interval_seconds,
        max_results=settings.policy_reports_max_results,
        field_manager=settings.actions.field_manager,
        request_timeout=settings.actions.timeout_seconds,
    )
    return [ClusterReports(findings, kube_api, config, registry)]
