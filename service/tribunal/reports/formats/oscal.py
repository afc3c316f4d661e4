"""``oscal``: an OSCAL 1.1 assessment-results document for GRC tools. One result covering the
period; one finding per control (``satisfied`` / ``not-satisfied``; a control not assessed has no
status and says so in a prop, never satisfied); one observation per failing resource, with the
evidence ids as relevant evidence. UUIDs are derived from content, so the same report is the same
document."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

import orjson

from tribunal import __version__
from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport, ControlResult, ControlStatus, Resource

OSCAL_VERSION = "1.1.2"
_NS = uuid.UUID("6b1f7a5e-8c2d-4f0e-9a3b-7472696275e1")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "|".join(parts)))


def control_token(control_id: str) -> str:
    """An OSCAL token for a control id (``cis-k8s:5.2.2`` → ``cis-k8s_5.2.2``)."""
    token = re.sub(r"[^A-Za-z0-9._-]", "_", control_id)
    return token if re.match(r"[A-Za-z_]", token) else "_" + token


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": "https://tribunal.dev/ns/oscal", "value": value}


def _observation(report: ComplianceReport, control: ControlResult, r: Resource) -> dict[str, Any]:
    return {
        "uuid": _uuid(report.generated_at.isoformat(), control.id, r.policy, r.subject_key),
        "title": f"{r.policy} on {r.subject_key}",
        "description": r.message,
        "props": [
            _prop("severity", r.severity.value),
            _prop("policy", r.policy),
            _prop("count", str(r.count)),
        ],
        "methods": ["AUTOMATED"],
        "types": ["finding"],
        "subjects": [
            {
                "subject-uuid": _uuid("subject", r.subject_key),
                "type": "resource",
                "title": r.subject_key,
            }
        ],
        "relevant-evidence": [
            {
                "href": f"urn:tribunal:evidence:{quote(e, safe='')}",
                "description": f"{r.evidence_kind.value} evidence {e}",
            }
            for e in r.evidence_ids
        ],
        "collected": r.last_seen.isoformat(),
    }


def build(report: ComplianceReport) -> dict[str, Any]:
    at = report.generated_at.isoformat()
    observations: list[dict[str, Any]] = []
    findings = []
    for control in report.controls:
        related = [_observation(report, control, r) for r in control.failing]
        observations += related
        target: dict[str, Any] = {"type": "objective-id", "target-id": control_token(control.id)}
        if control.status is not ControlStatus.NOT_ASSESSED:
            state = "satisfied" if control.status is ControlStatus.PASS else "not-satisfied"
            target["status"] = {"state": state}
        finding: dict[str, Any] = {
            "uuid": _uuid(at, "finding", control.id),
            "title": f"{control.id} {control.title}",
            "description": control.description or control.title,
            "props": [_prop("assessment-status", control.status.value), _prop("control-id", control.id)],
            "target": target,
        }
        if related:
            finding["related-observations"] = [{"observation-uuid": o["uuid"]} for o in related]
        findings.append(finding)
    result: dict[str, Any] = {
        "uuid": _uuid(at, "result", report.framework.id),
        "title": f"{report.framework.title} assessment",
        "description": f"Tribunal's assessment of {report.framework.title} from recorded verdicts.",
        "start": (report.filters.since or report.generated_at).isoformat(),
        "end": at,
        "props": [_prop("score", str(report.summary.score))] if report.summary.score is not None else [],
        "reviewed-controls": {
            "control-selections": [
                {"include-controls": [{"control-id": control_token(c.id)} for c in report.controls]}
            ]
        },
        "findings": findings,
    }
    if not result["props"]:
        del result["props"]
    if observations:
        result["observations"] = observations
    return {
        "assessment-results": {
            "uuid": _uuid(at, "assessment-results", report.framework.id),
            "metadata": {
                "title": f"{report.framework.title}: Tribunal compliance report",
                "last-modified": at,
                "version": __version__,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": f"urn:tribunal:assessment-plan:{report.framework.id}"},
            "results": [result],
        }
    }


def render(report: ComplianceReport) -> bytes:
    return orjson.dumps(build(report), option=orjson.OPT_INDENT_2) + b"\n"


FORMAT = Format("oscal", "application/json", ".oscal.json", render)
