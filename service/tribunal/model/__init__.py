"""Typed evidence, verdicts and the errors reading them can raise. Imports nothing else from tribunal."""

from tribunal.model.admission import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    PodSpec,
    update_changes_nothing_judged,
)
from tribunal.model.common import Severity
from tribunal.model.detect import content_id, detect_kind, parse_evidence
from tribunal.model.errors import EvidenceError, TribunalError
from tribunal.model.evidence import Evidence, EvidenceKind, Subject
from tribunal.model.falco import FalcoAlert, FalcoPriority
from tribunal.model.trivy import TrivyK8sReport, TrivyOperatorReport, TrivyReport
from tribunal.model.verdict import Decision, Enforcement, Verdict, Violation, decide

__all__ = [
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "Decision",
    "Enforcement",
    "Evidence",
    "EvidenceError",
    "EvidenceKind",
    "FalcoAlert",
    "FalcoPriority",
    "PodSpec",
    "Severity",
    "Subject",
    "TribunalError",
    "TrivyK8sReport",
    "TrivyOperatorReport",
    "TrivyReport",
    "Verdict",
    "Violation",
    "content_id",
    "decide",
    "detect_kind",
    "parse_evidence",
    "update_changes_nothing_judged",
]
