"""``json``: the report model as it is (``$schema`` names its version; docs/reports.md describes it)."""

from __future__ import annotations

from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport


def render(report: ComplianceReport) -> bytes:
    return report.model_dump_json(by_alias=True, indent=2).encode() + b"\n"


FORMAT = Format("json", "application/json", ".json", render)
