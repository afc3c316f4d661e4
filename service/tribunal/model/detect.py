"""Turn a parsed document into Evidence: tell its kind, validate it, find its id and subject.

Every failure is an :class:`EvidenceError` naming the source and, where known, the field."""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tribunal.model.admission import ADMISSION_API_VERSIONS, CLUSTER_SCOPED_KINDS, AdmissionReview
from tribunal.model.errors import EvidenceError
from tribunal.model.evidence import Evidence, EvidenceKind, Subject
from tribunal.model.falco import FalcoAlert
from tribunal.model.trivy import OPERATOR_API_GROUP, TrivyK8sReport, TrivyOperatorReport, TrivyReport

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 100
"""Deepest nesting accepted. Kubernetes objects and Trivy reports stay under 20 levels; anything near
Python's recursion limit is hostile, and would crash a recursive validator."""
# orjson.loads refuses objects and arrays nested deeper than this (documented; pinned by a unit test).
ORJSON_MAX_DEPTH = 1024
# Up to this size the depth is checked by parsing the raw text again in C (deeper_than); above it by
# walking the parsed document, which costs about as much for a large report (measured: 14-21 ms
# either way for a 3.3 MB Trivy report) without holding a second copy of it in memory (48 MB there).
DEPTH_PARSE_MAX_BYTES = 256 * 1024


def detect_kind(doc: Any, source: str = "<input>") -> EvidenceKind:
    """The evidence kind of a parsed document, from the fields each producer always writes."""
    if not isinstance(doc, dict):
        raise EvidenceError(source, f"expected a JSON object, got {type(doc).__name__}")
    api_version = doc.get("apiVersion")
    if doc.get("kind") == "AdmissionReview" or api_version in ADMISSION_API_VERSIONS:
        return EvidenceKind.ADMISSION
    if isinstance(api_version, str) and api_version.startswith(OPERATOR_API_GROUP + "/"):
        return EvidenceKind.TRIVY
    if "SchemaVersion" in doc or "ClusterName" in doc or "ArtifactName" in doc:
        return EvidenceKind.TRIVY
    if isinstance(doc.get("Results"), list) and "rule" not in doc:
        return EvidenceKind.TRIVY  # a report with every omitempty field left out but its Results
    if "rule" in doc and "priority" in doc:
        return EvidenceKind.FALCO
    if is_kubernetes_object(doc):
        return EvidenceKind.ADMISSION  # a bare manifest, judged as if it were being created
    raise EvidenceError(
        source,
        "cannot tell what evidence this is: expected an AdmissionReview (apiVersion admission.k8s.io/*), "
        "a Kubernetes object (apiVersion, kind, metadata), a Falco alert (rule, priority, time) or a Trivy "
        "report (SchemaVersion, ArtifactName, Results, ClusterName or a Trivy Operator resource)",
    )


def parse_evidence(
    doc: Any, source: str = "<input>", kind: EvidenceKind | None = None, *, raw: bytes | None = None
) -> Evidence:
    """Validate ``doc`` as evidence of ``kind`` (detected when not given). ``raw``, the JSON bytes
    ``doc`` was parsed from, lets the depth of a document up to 256 KiB be checked in C instead of
    walking ``doc``."""
    if raw is None or len(raw) > DEPTH_PARSE_MAX_BYTES:
        check_depth(doc, source)
    elif deeper_than(raw, MAX_DEPTH):
        raise EvidenceError(source, f"nested deeper than {MAX_DEPTH} levels")
    detected = detect_kind(doc, source)
    if kind is not None and detected is not kind:
        raise EvidenceError(source, f"expected {kind.value} evidence, this looks like {detected.value}")
    assert isinstance(doc, dict)
    as_arrived = True
    if detected is EvidenceKind.ADMISSION and _bare_manifest(doc):
        doc, as_arrived = review_for_object(doc), False
    if detected is EvidenceKind.ADMISSION:
        evidence = _admission(doc, source)
    elif detected is EvidenceKind.FALCO:
        evidence = _falco(doc, source)
    else:
        evidence = _trivy(doc, source)
    evidence._document = doc
    if as_arrived:
        evidence._raw = raw
    return evidence


def is_kubernetes_object(doc: dict[str, Any]) -> bool:
    """A manifest: ``apiVersion``, ``kind`` and ``metadata`` as Kubernetes writes them."""
    return (
        isinstance(doc.get("apiVersion"), str)
        and isinstance(doc.get("kind"), str)
        and isinstance(doc.get("metadata"), dict)
    )


def _bare_manifest(doc: dict[str, Any]) -> bool:
    """Admission evidence that is not a review: a manifest (detect_kind checked its shape). An
    ``admission.k8s.io`` document of another kind is a malformed review, refused naming ``kind``."""
    return doc.get("kind") != "AdmissionReview" and doc.get("apiVersion") not in ADMISSION_API_VERSIONS


def review_for_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The AdmissionReview the API server would send to create ``obj`` (as gator and the Kyverno CLI
    judge bare manifests). Its uid is the object's content hash, so the same manifest keeps its id."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = str(obj["kind"])
    metadata = obj["metadata"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": content_id(obj),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "name": str(metadata.get("name") or ""),
            "namespace": "" if kind in CLUSTER_SCOPED_KINDS else str(metadata.get("namespace") or "default"),
            "operation": "CREATE",
            "userInfo": {"username": "tribunal-judge"},
            "object": obj,
            "dryRun": True,
        },
    }


def deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the valid JSON text ``raw`` nests objects and arrays deeper than ``limit`` (< 1024).

    Checked in C, without walking the parsed document (which cost 0.26 ms for a 20 KB Deployment
    review, as much as judging it): a text that opens at most ``limit`` objects and arrays cannot
    be deeper; otherwise orjson parses it inside ``ORJSON_MAX_DEPTH - limit`` arrays, which it
    refuses exactly when ``raw`` nests deeper than ``limit`` (brackets inside strings do not count)."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return False
    padding = ORJSON_MAX_DEPTH - limit
    try:
        orjson.loads(b"[" * padding + raw + b"]" * padding)
    except orjson.JSONDecodeError:
        return True
    return False


def check_depth(doc: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Reject documents nested deeper than ``limit`` without recursing."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise EvidenceError(source, f"nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node if isinstance(value, dict | list))


def content_id(doc: Any) -> str:
    """A stable id for evidence that carries none: the SHA-256 of its canonical JSON."""
    return "sha256:" + hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _validate(model: type[M], doc: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise _evidence_error(exc, source) from None


def _evidence_error(exc: ValidationError, source: str) -> EvidenceError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if "input" in first and first["type"] not in ("missing",):
        shown = repr(first["input"])
        message += f" (got {shown[:80] + '…' if len(shown) > 80 else shown})"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return EvidenceError(source, message, field)


def _admission(doc: dict[str, Any], source: str) -> Evidence:
    review = _validate(AdmissionReview, doc, source)
    request = review.request
    if request is None:
        raise EvidenceError(source, "an AdmissionReview to judge needs a request", "request")
    obj = request.object or request.old_object or {}
    metadata: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    name = request.name or str(metadata.get("name") or metadata.get("generateName") or "") or None
    images = review.images()
    subject = Subject(
        namespace=request.namespace or metadata.get("namespace") or None,
        workload_kind=request.kind.kind,
        workload_name=name,
        pod=name if request.kind.kind == "Pod" else None,
        image=images[0] if images else None,
    )
    return Evidence(id=request.uid, kind=EvidenceKind.ADMISSION, source=source, subject=subject, body=review)


def _falco(doc: dict[str, Any], source: str) -> Evidence:
    alert = _validate(FalcoAlert, doc, source)
    repository = alert.field("container.image.repository")
    tag = alert.field("container.image.tag")
    image = f"{repository}:{tag}" if repository and tag else repository
    subject = Subject(
        namespace=alert.field("k8s.ns.name") or alert.field("ka.target.namespace"),
        pod=alert.field("k8s.pod.name"),
        workload_name=alert.field("ka.target.name"),
        workload_kind=alert.field("ka.target.resource"),
        container=alert.field("container.name") or alert.field("container.id"),
        image=image or alert.field("container.image"),
        image_digest=alert.field("container.image.digest"),
        host=alert.hostname or alert.field("evt.hostname"),
    )
    return Evidence(
        id=alert.uuid or content_id(doc), kind=EvidenceKind.FALCO, source=source, subject=subject, body=alert
    )


def _trivy(doc: dict[str, Any], source: str) -> Evidence:
    body: TrivyReport | TrivyK8sReport | TrivyOperatorReport
    if isinstance(doc.get("apiVersion"), str):
        body = operator = _validate(TrivyOperatorReport, doc, source)
        subject = Subject(
            namespace=operator.label("resource.namespace") or operator.metadata.namespace or None,
            workload_kind=operator.label("resource.kind"),
            workload_name=operator.label("resource.name") or operator.metadata.name or None,
            container=operator.label("container.name"),
            image=operator.image,
            image_digest=operator.image_digest,
        )
    elif "ClusterName" in doc:
        body = cluster = _validate(TrivyK8sReport, doc, source)
        subject = Subject(cluster=cluster.cluster_name)
    else:
        body = report = _validate(TrivyReport, doc, source)
        image = report.image
        subject = Subject(
            image=image,
            image_digest=report.image_digest,
            workload_name=None if image else report.artifact_name or None,
            workload_kind=None if image or not report.artifact_name else report.artifact_type,
        )
    return Evidence(id=content_id(doc), kind=EvidenceKind.TRIVY, source=source, subject=subject, body=body)
