"""``policyreport``: ``wgpolicyk8s.io/v1alpha2`` resources, as Kyverno writes them and Policy Reporter and
kubectl read them: one PolicyReport per namespace, one ClusterPolicyReport for cluster-scoped subjects.
Output is multi-document YAML (``kubectl apply -f`` takes it). Each result is one control on one
resource (fail), or one control passing in the scope; controls not assessed are ``skip``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import yaml

from tribunal.reports.formats.base import Format
from tribunal.reports.model import (
    CLUSTER_SCOPE,
    ComplianceReport,
    ControlResult,
    ControlStatus,
    Resource,
    ScopeResult,
)

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "tribunal"


def build(report: ComplianceReport) -> list[dict[str, Any]]:
    """The resources, as dicts."""
    by_scope: dict[str, list[tuple[ControlResult, ScopeResult]]] = {}
    for control in report.controls:
        for scope in control.scopes:
            by_scope.setdefault(scope.scope, []).append((control, scope))
    docs = []
    for scope_name, pairs in sorted(by_scope.items()):
        results = [r for control, scope in pairs for r in _results(report, control, scope)]
        summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
        for r in results:
            summary[r["result"]] += 1
        name = f"tribunal-{report.framework.id}"
        metadata: dict[str, Any] = {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "tribunal",
                "tribunal.dev/framework": report.framework.id,
            },
            "annotations": {"tribunal.dev/generated-at": report.generated_at.isoformat()},
        }
        kind = "ClusterPolicyReport"
        if scope_name != CLUSTER_SCOPE:
            kind = "PolicyReport"
            metadata["namespace"] = scope_name
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": kind,
                "metadata": metadata,
                "summary": summary,
                "results": results,
            }
        )
    return docs


def _results(report: ComplianceReport, control: ControlResult, scope: ScopeResult) -> list[dict[str, Any]]:
    base = {
        "policy": control.id,
        "category": control.group or report.framework.title,
        "source": SOURCE,
        "scored": True,
    }
    if scope.status is ControlStatus.FAIL:
        return [
            {
                **base,
                "rule": r.policy,
                "result": "fail",
                "severity": r.severity.value,
                "message": r.message,
                "timestamp": _timestamp(r.last_seen),
                "resources": [_reference(r)],
                "properties": _properties(r),
            }
            for r in scope.failing
        ]
    result = "pass" if scope.status is ControlStatus.PASS else "skip"
    message = control.title if result == "pass" else f"not assessed: {control.title}"
    return [{**base, "rule": control.control_id, "result": result, "message": message,
             "timestamp": _timestamp(report.generated_at)}]  # fmt: skip


def _reference(r: Resource) -> dict[str, str]:
    ref = {"kind": r.workload_kind or "Unknown", "name": r.workload_name or r.image or r.subject_key}
    if r.namespace:
        ref["namespace"] = r.namespace
    return ref


def _properties(r: Resource) -> dict[str, str]:
    props = {
        "evidence": ",".join(r.evidence_ids),
        "evidenceKind": r.evidence_kind.value,
        "firstSeen": r.first_seen.isoformat(),
        "lastSeen": r.last_seen.isoformat(),
        "count": str(r.count),
        "subject": r.subject_key,
    }
    if r.image:
        props["image"] = r.image
    return props


def _timestamp(at: datetime) -> dict[str, int]:
    seconds = int(at.timestamp())
    return {"seconds": seconds, "nanos": at.microsecond * 1000}


class _Dumper(yaml.SafeDumper):
    """PyYAML's dumper, quoting also the strings YAML 1.2 readers (kubectl's, Go's yaml) take for
    numbers and PyYAML does not: ``1e10``, ``-2E+5`` (a namespace may well be called ``1e10``)."""


_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def render(report: ComplianceReport) -> bytes:
    return yaml.dump_all(build(report), Dumper=_Dumper, sort_keys=False).encode()


FORMAT = Format("policyreport", "application/yaml", ".yaml", render)
