"""``csv``: one row per control per scope, with its failing resources and evidence ids joined by ``;``."""

from __future__ import annotations

import csv
import io

from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport, ControlResult

COLUMNS = (
    "framework",
    "control",
    "title",
    "group",
    "scope",
    "status",
    "policies",
    "verdicts",
    "failing_count",
    "failing_resources",
    "evidence_ids",
    "excepted_resources",
    "evidence",
)


def _evidence(control: ControlResult) -> str:
    """The kinds of evidence that assess the control, ``;``-joined; ``not assessed`` when none does."""
    if control.evidence is None:
        return ""
    return ";".join(k.value for k in control.evidence) or "not assessed"


def render(report: ComplianceReport) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for control in report.controls:
        if not control.scopes:  # nothing judged yet: the control still gets its row
            writer.writerow(
                {"framework": report.framework.id, "control": control.id, "title": control.title,
                 "group": control.group, "scope": "", "status": control.status.value,
                 "policies": ";".join(control.policies), "verdicts": 0, "failing_count": 0,
                 "evidence": _evidence(control)}
            )  # fmt: skip
        for scope in control.scopes:
            writer.writerow(
                {
                    "framework": report.framework.id,
                    "control": control.id,
                    "title": control.title,
                    "group": control.group,
                    "scope": scope.scope,
                    "status": scope.status.value,
                    "policies": ";".join(control.policies),
                    "verdicts": scope.verdicts,
                    "failing_count": len(scope.failing),
                    "failing_resources": ";".join(sorted({r.subject_key for r in scope.failing})),
                    "evidence_ids": ";".join(sorted({e for r in scope.failing for e in r.evidence_ids})),
                    "excepted_resources": ";".join(sorted({r.subject_key for r in scope.excepted})),
                    "evidence": _evidence(control),
                }
            )
    return out.getvalue().encode()


FORMAT = Format("csv", "text/csv; charset=utf-8", ".csv", render)
