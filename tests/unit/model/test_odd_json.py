"""Odd but valid JSON: a field Tribunal reads holding the wrong JSON type is refused naming the field
(never an AttributeError deep in an accessor), and reading labels never raises whatever the document."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import falco_alert, pod, review
from tribunal.model import EvidenceError, EvidenceKind, parse_evidence
from tribunal.model.labels import labels_of

OPERATOR = {
    "apiVersion": "aquasecurity.github.io/v1alpha1",
    "kind": "VulnerabilityReport",
    "metadata": {"name": "replicaset-web-app", "namespace": "shop"},
    "report": {
        "artifact": {"repository": "library/nginx", "tag": "1.27"},
        "registry": {"server": "index.docker.io"},
        "vulnerabilities": [],
    },
}
ODD = ["nginx:1.27", ["a"], 5, True]


@pytest.mark.parametrize("value", ODD, ids=repr)
@pytest.mark.parametrize("field", ["artifact", "registry"])
def test_an_operator_report_part_that_is_not_an_object_names_its_field(field: str, value: Any) -> None:
    doc = {**OPERATOR, "report": {**OPERATOR["report"], field: value}}
    with pytest.raises(EvidenceError) as caught:
        parse_evidence(doc, "report.json")
    assert caught.value.field == f"report.{field}"
    assert "dictionary" in caught.value.message or "object" in caught.value.message


def test_an_operator_report_without_artifact_or_registry_still_reads() -> None:
    doc = {**OPERATOR, "report": {"artifact": None, "vulnerabilities": []}}
    evidence = parse_evidence(doc, "report.json")
    assert evidence.subject.image is None and evidence.subject.image_digest is None
    assert parse_evidence(OPERATOR, "r").subject.image == "index.docker.io/library/nginx:1.27"


def _review_with(metadata: Any, key: str = "object") -> dict[str, Any]:
    doc = review(pod({"name": "app", "image": "nginx:1.27"}), uid="odd")
    obj = doc["request"].pop("object")
    obj["metadata"] = metadata
    doc["request"][key] = obj
    return doc


@pytest.mark.parametrize("metadata", ["x", ["a", "b"], 5, None, {"labels": "x"}, {"labels": ["a"]}], ids=repr)
@pytest.mark.parametrize("key", ["object", "oldObject"])
def test_labels_of_a_review_never_raise(metadata: Any, key: str) -> None:
    assert labels_of(EvidenceKind.ADMISSION, _review_with(metadata, key)) == {}


@pytest.mark.parametrize(
    "doc",
    [
        {"request": "x"},
        {"request": ["x"]},
        {"request": {"object": "x"}},
        {"request": {"object": ["x"], "oldObject": {"metadata": "x"}}},
        {"request": None},
        {},
    ],
    ids=repr,
)
def test_labels_of_any_json_never_raise(doc: dict[str, Any]) -> None:
    assert labels_of(EvidenceKind.ADMISSION, doc) == {}


@pytest.mark.parametrize(
    "fields", ["x", ["a"], 5, {"k8s.pod.labels": ["a"]}, {"k8s.pod.labels": 5}], ids=repr
)
def test_labels_of_a_falco_alert_never_raise(fields: Any) -> None:
    assert labels_of(EvidenceKind.FALCO, {**falco_alert(), "output_fields": fields}) == {}


@pytest.mark.parametrize("metadata", ["x", ["a"], 5, {"labels": "x"}], ids=repr)
def test_labels_of_a_trivy_report_never_raise(metadata: Any) -> None:
    assert labels_of(EvidenceKind.TRIVY, {**OPERATOR, "metadata": metadata}) == {}


def test_labels_are_still_read_where_they_are() -> None:
    labels = {"app": "web", "tier": "front"}
    assert labels_of(EvidenceKind.ADMISSION, _review_with({"name": "web", "labels": labels})) == labels
    alert = falco_alert()
    alert["output_fields"]["k8s.pod.labels"] = "[app:web, tier:front]"
    assert labels_of(EvidenceKind.FALCO, alert) == labels
    assert labels_of(EvidenceKind.TRIVY, {**OPERATOR, "metadata": {"labels": labels}}) == labels


def test_a_review_with_metadata_not_an_object_is_judged() -> None:
    evidence = parse_evidence(_review_with("x"), "review.json")
    assert evidence.subject.workload_kind == "Pod" and evidence.subject.namespace is not None
