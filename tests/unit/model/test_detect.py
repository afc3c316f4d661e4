"""Evidence detection and validation, on good, malformed, truncated and hostile input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import falco_alert, pod, review, trivy_report
from tribunal.model import (
    AdmissionReview,
    EvidenceError,
    EvidenceKind,
    FalcoAlert,
    TrivyOperatorReport,
    TrivyReport,
    content_id,
    detect_kind,
    parse_evidence,
)
from tribunal.model.detect import DEPTH_PARSE_MAX_BYTES, ORJSON_MAX_DEPTH, check_depth, deeper_than


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        (review(pod()), EvidenceKind.ADMISSION),
        (falco_alert(), EvidenceKind.FALCO),
        (trivy_report(), EvidenceKind.TRIVY),
        ({"ClusterName": "kind", "Resources": []}, EvidenceKind.TRIVY),
        (
            {"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport"},
            EvidenceKind.TRIVY,
        ),
    ],
)
def test_detect_kind_tells_each_producer_apart(doc: dict[str, Any], kind: EvidenceKind) -> None:
    assert detect_kind(doc) is kind


def test_admission_evidence_takes_uid_and_subject() -> None:
    evidence = parse_evidence(review(pod({"name": "a", "image": "nginx:1.27"}), uid="abc", namespace="shop"))
    assert evidence.id == "abc"
    assert isinstance(evidence.body, AdmissionReview)
    assert evidence.subject.namespace == "shop"
    assert evidence.subject.workload_kind == "Pod"
    assert evidence.subject.pod == "web"
    assert evidence.subject.image == "nginx:1.27"


def test_v1beta1_review_is_accepted() -> None:
    evidence = parse_evidence(review(pod(), api_version="admission.k8s.io/v1beta1"))
    assert isinstance(evidence.body, AdmissionReview)
    assert evidence.body.api_version == "admission.k8s.io/v1beta1"


def test_pod_specs_of_every_template_kind() -> None:
    template = {"spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    objects = {
        "Deployment": {"kind": "Deployment", "spec": {"template": template}},
        "CronJob": {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}},
        "Job": {"kind": "Job", "spec": {"template": template}},
    }
    for kind, obj in objects.items():
        specs = parse_evidence(review(obj)).body.pod_specs()  # type: ignore[union-attr]
        assert len(specs) == 1, kind
        assert specs[0][1].containers[0].image == "busybox:1.36"


def test_images_come_from_every_container_list_in_order_and_from_templates() -> None:
    spec = {
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
        "containers": [{"name": "a", "image": "nginx:1.27"}, {"name": "b", "image": ""}, {"name": "c"}],
        "ephemeralContainers": [{"name": "debug", "image": "alpine:3.20"}],
    }
    pod_review = parse_evidence(review({"kind": "Pod", "metadata": {"name": "p"}, "spec": spec}))
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": spec}}}
    for evidence in (pod_review, parse_evidence(review(deployment))):
        body = evidence.body
        assert isinstance(body, AdmissionReview)
        assert body.images() == ["nginx:1.27", "busybox:1.36", "alpine:3.20"]
        assert body.images() == [c.image for _, s in body.pod_specs() for c in s.all_containers() if c.image]
        assert evidence.subject.image == "nginx:1.27"


def test_a_malformed_container_list_is_judged_not_refused() -> None:
    # The API server validates objects before it calls webhooks; a file or a Kafka message need not.
    spec = {"containers": "oops", "initContainers": [5, {"image": 7}, {"image": "busybox:1.36"}]}
    evidence = parse_evidence(review({"kind": "Pod", "metadata": {"name": "p"}, "spec": spec}))
    assert evidence.subject.image == "busybox:1.36"
    assert parse_evidence(review({"kind": "Pod", "spec": "oops"})).subject.image is None


def test_non_workload_has_no_pod_spec() -> None:
    body = parse_evidence(review({"kind": "ConfigMap", "data": {"a": "b"}})).body
    assert isinstance(body, AdmissionReview)
    assert body.pod_specs() == []


def test_review_response_keeps_api_version_and_uid() -> None:
    body = parse_evidence(review(pod(), uid="u-9", api_version="admission.k8s.io/v1beta1")).body
    assert isinstance(body, AdmissionReview)
    from tribunal.model import AdmissionResponse

    answer = body.respond(AdmissionResponse(uid="u-9", allowed=True, warnings=["w"]))
    assert answer == {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-9", "allowed": True, "warnings": ["w"]},
    }


def test_falco_priority_maps_onto_severity_any_case() -> None:
    cases = {"Emergency": "critical", "ERROR": "high", "warning": "medium", "Notice": "low", "info": "info"}
    for priority, severity in cases.items():
        alert = parse_evidence(falco_alert(priority=priority)).body
        assert isinstance(alert, FalcoAlert)
        assert alert.severity.value == severity


def test_falco_alert_without_uuid_gets_a_content_id() -> None:
    doc = falco_alert()
    del doc["uuid"]
    first, second = parse_evidence(doc), parse_evidence(dict(doc))
    assert first.id.startswith("sha256:")
    assert first.id == second.id == content_id(doc)
    assert first.subject.namespace == "shop"
    assert first.subject.image == "nginx:1.27"


def test_falco_alert_without_optional_fields_loads() -> None:
    alert = parse_evidence({"time": "2024-01-01T00:00:00Z", "rule": "r", "priority": "Warning"}).body
    assert isinstance(alert, FalcoAlert)
    assert alert.tags == [] and alert.hostname == "" and alert.source == "syscall"


def test_trivy_report_subject_is_the_image() -> None:
    evidence = parse_evidence(trivy_report({"VulnerabilityID": "CVE-1", "Severity": "HIGH"}))
    assert isinstance(evidence.body, TrivyReport)
    assert evidence.subject.image == "nginx:1.27"
    assert evidence.subject.image_digest == "sha256:" + "a" * 64
    assert evidence.body.results[0].vulnerabilities[0].vulnerability_id == "CVE-1"


def test_trivy_null_lists_are_empty() -> None:
    doc = trivy_report()
    doc["Results"][0]["Vulnerabilities"] = None
    body = parse_evidence(doc).body
    assert isinstance(body, TrivyReport)
    assert body.results[0].vulnerabilities == []


def test_trivy_operator_report_subject_from_labels() -> None:
    doc = {
        "apiVersion": "aquasecurity.github.io/v1alpha1",
        "kind": "VulnerabilityReport",
        "metadata": {
            "name": "replicaset-web-app",
            "namespace": "shop",
            "labels": {
                "trivy-operator.resource.kind": "ReplicaSet",
                "trivy-operator.resource.name": "web-5d",
                "trivy-operator.container.name": "app",
            },
        },
        "report": {
            "artifact": {"repository": "library/nginx", "tag": "1.25"},
            "registry": {"server": "index.docker.io"},
            "vulnerabilities": [],
        },
    }
    evidence = parse_evidence(doc)
    assert isinstance(evidence.body, TrivyOperatorReport)
    assert evidence.subject.namespace == "shop"
    assert evidence.subject.workload_kind == "ReplicaSet"
    assert evidence.subject.workload_name == "web-5d"
    assert evidence.subject.image == "index.docker.io/library/nginx:1.25"


# --- malformed, truncated, hostile -------------------------------------------------------------


def _error(doc: Any, kind: EvidenceKind | None = None) -> EvidenceError:
    with pytest.raises(EvidenceError) as caught:
        parse_evidence(doc, "case.json", kind)
    assert caught.value.source == "case.json"
    assert str(caught.value).startswith("case.json: ")
    return caught.value


def test_not_an_object_is_refused() -> None:
    assert "expected a JSON object, got list" in str(_error([1, 2]))


def test_unknown_document_says_what_was_expected() -> None:
    assert "cannot tell what evidence this is" in str(_error({"hello": "world"}))


def test_review_without_uid_names_the_field() -> None:
    doc = review(pod())
    del doc["request"]["uid"]
    assert _error(doc).field == "request.uid"


def test_review_without_request_names_the_field() -> None:
    doc = review(pod())
    del doc["request"]
    assert _error(doc).field == "request"


def test_wrong_type_names_field_and_value() -> None:
    doc = review(pod())
    doc["request"]["operation"] = 42
    error = _error(doc)
    assert error.field == "request.operation"
    assert "42" in error.message


def test_wrong_kind_when_a_kind_is_expected() -> None:
    assert "expected falco evidence" in str(_error(review(pod()), EvidenceKind.FALCO))


def test_falco_priority_outside_the_scale() -> None:
    assert _error(falco_alert(priority="Loud")).field == "priority"


def test_falco_time_not_a_time() -> None:
    assert _error(falco_alert(time="yesterday")).field == "time"


def test_huge_string_is_refused_with_its_field() -> None:
    error = _error(falco_alert(rule="x" * 100_000))
    assert error.field == "rule"
    assert "at most 1024" in error.message
    assert len(str(error)) < 400  # the value is shown cut short


def test_huge_uid_is_refused() -> None:
    assert _error(review(pod(), uid="u" * 10_000)).field == "request.uid"


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(50_000):
        node["a"] = {}
        node = node["a"]
    doc = review(pod())
    doc["request"]["object"]["metadata"]["labels"] = deep
    assert "nested deeper than" in str(_error(doc))


def test_orjson_refuses_exactly_past_the_depth_deeper_than_relies_on() -> None:
    limit = ORJSON_MAX_DEPTH
    assert orjson.loads(b"[" * limit + b"]" * limit)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b"[" * (limit + 1) + b"]" * (limit + 1))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b'{"a":' * (limit + 1) + b"1" + b"}" * (limit + 1))


def _nested(depth: int) -> bytes:
    """A JSON text of exactly ``depth`` levels, objects and arrays alternating, with brackets in a
    string at every level (which must not count)."""
    text = b'"[{["'
    for level in range(depth):
        text = b'{"s": "{{", "a": ' + text + b"}" if level % 2 else b'["]]", ' + text + b"]"
    return text


@pytest.mark.parametrize("limit", [1, 5, 100])
def test_deeper_than_counts_nesting_exactly(limit: int) -> None:
    for depth in range(max(1, limit - 3), limit + 4):
        text = _nested(depth)
        assert deeper_than(text, limit) is (depth > limit), (depth, limit)
        assert _walked_deeper(orjson.loads(text), limit) is (depth > limit)


def _walked_deeper(doc: Any, limit: int) -> bool:
    try:
        check_depth(doc, "x", limit)
    except EvidenceError:
        return True
    return False


def test_deep_raw_document_is_refused_with_its_source() -> None:
    deep = (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": ' + _nested(120) + b"}"
    )
    with pytest.raises(EvidenceError, match="nested deeper than 100 levels") as caught:
        parse_evidence(orjson.loads(deep), "topic[0]@7", raw=deep)
    assert caught.value.source == "topic[0]@7"


def test_trivy_schema_version_other_than_2() -> None:
    doc = trivy_report()
    doc["SchemaVersion"] = 1
    assert _error(doc).field == "SchemaVersion"


def test_several_errors_are_counted() -> None:
    doc = {"time": 1, "rule": None, "priority": None}
    assert "more error" in _error(doc).message


def test_bare_manifest_is_judged_as_a_create_review() -> None:
    manifest = pod({"name": "a", "image": "nginx:1.27"}, name="web")
    manifest["metadata"].pop("namespace")
    evidence = parse_evidence(manifest, "web.yaml")
    assert evidence.kind is EvidenceKind.ADMISSION
    assert isinstance(evidence.body, AdmissionReview)
    request = evidence.body.request
    assert request is not None
    assert (request.operation, request.namespace, request.name, request.dry_run) == (
        "CREATE",
        "default",
        "web",
        True,
    )
    assert request.kind.kind == "Pod"
    assert evidence.id == content_id(manifest)
    assert evidence.event()["request"]["object"] == manifest


def test_grouped_manifest_kind_keeps_group_and_version() -> None:
    evidence = parse_evidence(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    )
    assert isinstance(evidence.body, AdmissionReview)
    assert evidence.body.request is not None
    assert (evidence.body.request.kind.group, evidence.body.request.kind.version) == ("apps", "v1")


def test_a_deep_document_past_the_parse_size_is_refused_by_the_walk() -> None:
    pad = b" " * (DEPTH_PARSE_MAX_BYTES + 1)
    deep = (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": '
        + _nested(120)
        + pad
        + b"}"
    )
    with pytest.raises(EvidenceError, match="nested deeper than 100 levels"):
        parse_evidence(orjson.loads(deep), "big.json", raw=deep)
