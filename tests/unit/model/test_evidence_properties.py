"""Property tests of the evidence parsers (hypothesis): whatever JSON arrives, as the webhook, ingest,
the Kafka consumers and `tribunal judge` read it, detection and validation answer with Evidence or an
EvidenceError, never another exception; an error that names a field names one the document has (or a
member missing from an object it has); the raw-text depth check in C agrees with the walk; reading
labels and redacting for storage never raise. Over arbitrary values, documents shaped like each kind,
and real samples (examples/, ../shared/fixtures where present) mutated a few places at a time."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.unit.model.json_strategies import FAST, as_read, documents, json_values, mutated, real_samples
from tribunal.model import Evidence, EvidenceError, EvidenceKind, detect_kind, parse_evidence
from tribunal.model.detect import MAX_DEPTH, deeper_than, is_kubernetes_object, review_for_object
from tribunal.model.labels import labels_of
from tribunal.model.redact import Redaction, redact

KINDS = st.sampled_from([None, *EvidenceKind])
SAMPLES = real_samples()
MAX_MESSAGE = 1024  # an error goes into a 400 body, a dead letter's headers and the logs


def _resolves(node: Any, parts: list[str]) -> bool:
    """Whether the dotted path ``parts`` leads to a node of ``node``, or to a member missing from an
    object of it (pydantic names a required field that is absent). Keys may hold dots themselves."""
    if not parts:
        return True
    if isinstance(node, dict):
        for key, value in node.items():
            key_parts = str(key).split(".")
            if parts[: len(key_parts)] == key_parts and _resolves(value, parts[len(key_parts) :]):
                return True
        return len(parts) == 1  # a missing member of this object
    if isinstance(node, list):
        head = parts[0]
        return head.isdigit() and int(head) < len(node) and _resolves(node[int(head)], parts[1:])
    return False


def _is_bare_manifest(doc: Any) -> bool:
    try:
        detected = detect_kind(doc)
    except EvidenceError:
        return False
    return (
        detected is EvidenceKind.ADMISSION
        and doc.get("kind") != "AdmissionReview"
        and is_kubernetes_object(doc)
    )


def _parse(doc: Any, kind: EvidenceKind | None, raw: bytes | None = None) -> Evidence | EvidenceError:
    """The outcome of parsing; any exception other than EvidenceError fails the test."""
    try:
        return parse_evidence(doc, "doc.json", kind, raw=raw)
    except EvidenceError as exc:
        return exc


def _check(doc: Any, kind: EvidenceKind | None) -> Evidence | EvidenceError:
    doc, raw = as_read(doc)
    outcome = _parse(doc, kind)
    if isinstance(outcome, EvidenceError):
        assert outcome.source == "doc.json" and str(outcome).startswith("doc.json: ")
        assert len(outcome.message) <= MAX_MESSAGE, outcome.message[:200]
        if outcome.field is not None:
            assert outcome.field and str(outcome).startswith(f"doc.json: {outcome.field}: ")
            # A bare manifest is judged as the review that would create it: fields are the review's.
            judged = review_for_object(doc) if _is_bare_manifest(doc) else doc
            assert _resolves(judged, outcome.field.split(".")), (outcome.field, doc)
    else:
        assert outcome.kind is (kind or detect_kind(doc))
        assert 1 <= len(outcome.id) <= 256
    # The depth checked on the JSON text (documents up to 256 KiB) gives the same answer as the walk.
    with_raw = _parse(doc, kind, raw)
    assert type(with_raw) is type(outcome)
    if isinstance(outcome, EvidenceError):
        assert isinstance(with_raw, EvidenceError)
        assert (with_raw.message, with_raw.field) == (outcome.message, outcome.field)
    else:
        assert isinstance(with_raw, Evidence)
        assert (with_raw.id, with_raw.subject) == (outcome.id, outcome.subject)
    return outcome


@FAST
@given(doc=documents(), kind=KINDS)
def test_any_document_is_evidence_or_an_evidence_error_naming_a_field_it_has(
    doc: Any, kind: EvidenceKind | None
) -> None:
    _check(doc, kind)


@pytest.mark.skipif(not SAMPLES, reason="no samples")
@FAST
@given(sample=mutated(SAMPLES), kind=KINDS)
def test_mutated_real_evidence_is_evidence_or_an_evidence_error_naming_a_field_it_has(
    sample: tuple[str, Any], kind: EvidenceKind | None
) -> None:
    _check(sample[1], kind)


def test_every_real_sample_is_evidence() -> None:
    """The baseline of the mutations: unmutated, every sample reads (manifests as reviews)."""
    assert SAMPLES
    for name, doc in SAMPLES:
        outcome = _check(doc, None)
        assert isinstance(outcome, Evidence), (name, outcome)


@FAST
@given(doc=documents())
def test_detection_answers_a_kind_or_an_evidence_error(doc: Any) -> None:
    try:
        outcome: EvidenceKind | EvidenceError = detect_kind(doc, "doc.json")
    except EvidenceError as exc:
        outcome = exc
    if isinstance(outcome, EvidenceError):
        assert outcome.field is None and outcome.source == "doc.json"
    else:
        assert isinstance(outcome, EvidenceKind)


def _nested(depth: int, leaf: Any) -> Any:
    doc = leaf
    for level in range(depth - 1):
        doc = [doc] if level % 2 else {"a": doc}
    return doc


@FAST
@given(
    depth=st.integers(1, 2 * MAX_DEPTH), leaf=json_values(4), padding=st.text(alphabet="[]{}", max_size=30)
)
def test_the_depth_check_in_c_matches_the_walk(depth: int, leaf: Any, padding: str) -> None:
    doc = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "pad": padding,
        "x": _nested(depth, leaf),
    }
    doc, raw = as_read(doc)
    walked = _parse(doc, None)
    deep = isinstance(walked, EvidenceError) and "nested deeper" in walked.message
    assert deeper_than(raw, MAX_DEPTH) == deep
    with_raw = _parse(doc, None, raw)
    assert not deep or (isinstance(with_raw, EvidenceError) and "nested deeper" in with_raw.message)


@FAST
@given(doc=documents(), kind=st.sampled_from(list(EvidenceKind)))
def test_labels_of_any_document_are_text_and_never_raise(doc: Any, kind: EvidenceKind) -> None:
    assume(isinstance(doc, dict))
    labels = labels_of(kind, doc)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())


@pytest.mark.parametrize("mode", list(Redaction))
@FAST
@given(doc=documents() | (mutated(SAMPLES).map(lambda s: s[1]) if SAMPLES else documents()))
def test_redaction_of_any_document_is_json_and_stable(mode: Redaction, doc: Any) -> None:
    """The store redacts every document before writing it: never a failure there (a batch lost)."""
    raw = orjson.dumps(doc)
    for kind in EvidenceKind:
        kept = redact(kind, raw, mode)
        assert orjson.loads(kept) is not None or doc is None
        assert redact(kind, kept, mode) == kept  # nothing left to take out
        if mode is Redaction.NONE:
            assert kept == raw
