"""The labels of the object a piece of evidence is about, read from the document as it arrived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tribunal.model.evidence import EvidenceKind


def labels_of(kind: EvidenceKind, doc: Mapping[str, Any]) -> dict[str, str]:
    """Labels of the object ``doc`` (evidence of ``kind``, as it arrived) is about, where it says: the
    admitted object's, Falco's ``k8s.pod.labels`` field, a Trivy Operator report's. Never raises: any
    part of the way that is not the JSON type expected (a ``metadata`` that is a string or a list,
    say, which the API server would never send but anyone can post) means no labels."""
    labels: Any = None
    if kind is EvidenceKind.ADMISSION:
        request = _object(doc.get("request"))
        obj = _object(request.get("object")) or _object(request.get("oldObject"))
        labels = _object(obj.get("metadata")).get("labels")
    elif kind is EvidenceKind.FALCO:
        labels = _object(doc.get("output_fields")).get("k8s.pod.labels")
        if isinstance(labels, str):  # Falco prints "[app:web, tier:front]" or "app:web, tier:front"
            pairs = [p.strip() for p in labels.strip("[]").split(",") if ":" in p]
            labels = dict(p.split(":", 1) for p in pairs)
    elif kind is EvidenceKind.TRIVY:
        labels = _object(doc.get("metadata")).get("labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def _object(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
