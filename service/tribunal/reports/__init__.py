"""Compliance reports: framework catalogues, the report builder over the store, the export formats and
the HTTP read API."""

from tribunal.reports.builder import ReportSource, build_report, fails, parse_since
from tribunal.reports.formats import FORMATS, Exporter, Format, get_format
from tribunal.reports.frameworks import (
    ControlDef,
    Framework,
    FrameworkError,
    check_evidence,
    framework_ids,
    load_framework,
    load_frameworks,
)
from tribunal.reports.model import (
    CLUSTER_SCOPE,
    SCHEMA,
    ComplianceReport,
    ControlResult,
    ControlStatus,
    Resource,
    ScopeResult,
    Summary,
    TrendPoint,
)

__all__ = [
    "CLUSTER_SCOPE",
    "FORMATS",
    "SCHEMA",
    "ComplianceReport",
    "ControlDef",
    "ControlResult",
    "ControlStatus",
    "Exporter",
    "Format",
    "Framework",
    "FrameworkError",
    "ReportSource",
    "Resource",
    "ScopeResult",
    "Summary",
    "TrendPoint",
    "build_report",
    "check_evidence",
    "fails",
    "framework_ids",
    "get_format",
    "load_framework",
    "load_frameworks",
    "parse_since",
]
