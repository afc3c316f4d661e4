"""The labels of the object a piece of evidence is about, read from the document as it arrived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribunal.model.evidence import EvidenceKind


def labels_of(kind: EvidenceKind, doc: Mapping[str, Any]) -> dict[str, str]:
    """Labels of the object ``doc`` (evidence of ``kind``, as it arrived) is about, where it says: the
    admitted object's, Falco's ``k8s.pod.labels`` field, a Trivy Operator report's."""
    labels: Any = None
    if kind is EvidenceKind.ADMISSION:
        request = doc.get("request") or {}
        obj = request.get("object") or request.get("oldObject") or {}
        labels = (obj.get("metadata") or {}).get("labels") if isinstance(obj, dict) else None
    elif kind is EvidenceKind.FALCO:
        labels = (doc.get("output_fields") or {}).get("k8s.pod.labels")
        if isinstance(labels, str):  # Falco prints "[app:web, tier:front]" or "app:web, tier:front"
            pairs = [p.strip() for p in labels.strip("[]").split(",") if ":" in p]
            labels = dict(p.split(":", 1) for p in pairs)
    elif kind is EvidenceKind.TRIVY:
        labels = (doc.get("metadata") or {}).get("labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
