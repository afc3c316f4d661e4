"""``sarif``: SARIF 2.1.0 for code-scanning tools. One rule per control, one result per failing
resource (level from its severity), located logically by the resource's subject key; the evidence
ids ride in the result's properties."""

from __future__ import annotations

from typing import Any

import orjson

from tribunal import __version__
from tribunal.model import Severity
from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def build(report: ComplianceReport) -> dict[str, Any]:
    rules, results = [], []
    for index, control in enumerate(report.controls):
        rule: dict[str, Any] = {
            "id": control.id,
            "name": control.control_id,
            "shortDescription": {"text": control.title},
            "fullDescription": {"text": control.description or control.title},
            "properties": {
                "tags": [report.framework.id, *([control.group] if control.group else [])],
                "policies": control.policies,
                "evidence": None if control.evidence is None else [k.value for k in control.evidence],
                "status": control.status.value,
            },
        }
        if report.framework.url:
            rule["helpUri"] = report.framework.url
        rules.append(rule)
        for scope in control.scopes:
            for r in scope.failing:
                results.append(
                    {
                        "ruleId": control.id,
                        "ruleIndex": index,
                        "kind": "fail",
                        "level": LEVELS[r.severity],
                        "message": {"text": f"{r.subject_key}: {r.message} (policy {r.policy})"},
                        "locations": [
                            {
                                "logicalLocations": [
                                    {
                                        "name": r.workload_name or r.image or r.subject_key,
                                        "fullyQualifiedName": r.subject_key,
                                        "kind": "resource",
                                    }
                                ]
                            }
                        ],
                        "partialFingerprints": {"tribunalFinding/v1": f"{r.policy}|{r.subject_key}"},
                        "properties": {
                            "scope": scope.scope,
                            "policy": r.policy,
                            "severity": r.severity.value,
                            "evidenceIds": r.evidence_ids,
                            "firstSeen": r.first_seen.isoformat(),
                            "lastSeen": r.last_seen.isoformat(),
                            "count": r.count,
                        },
                    }
                )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Tribunal",
                        "version": __version__,
                        "informationUri": "https://github.com/tribunal-dev/tribunal",
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True, "endTimeUtc": report.generated_at.isoformat()}],
                "results": results,
                "properties": {
                    "framework": report.framework.model_dump(),
                    "summary": report.summary.model_dump(),
                },
            }
        ],
    }


def render(report: ComplianceReport) -> bytes:
    return orjson.dumps(build(report), option=orjson.OPT_INDENT_2) + b"\n"


FORMAT = Format("sarif", "application/sarif+json", ".sarif", render)
