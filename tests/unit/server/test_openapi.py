"""The OpenAPI document (server/openapi.py) against the server it describes: every route the server
registers is in it and everything in it is a route; the open paths are the authenticator's; its
schemas are valid JSON Schema whose references resolve, and real evidence validates against the
request bodies (the document is not stricter than the handlers). schemathesis runs it against a real
server in tests/integration/test_openapi_schemathesis.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR, shared_fixtures
from tribunal.app import build_server
from tribunal.reports.formats import FORMATS
from tribunal.server.auth import OPEN_PATHS
from tribunal.server.openapi import OPENAPI_PATH, openapi_document
from tribunal.settings import Settings
from tribunal.store import FindingQuery, VerdictQuery

DOCUMENT = openapi_document(["cis-k8s", "pss-baseline"])
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(method, path) of every route of the app `tribunal serve` builds; HEAD, which aiohttp adds
    for every GET, is checked to shadow a GET and left out."""
    tmp = tmp_path_factory.mktemp("openapi")
    settings = Settings.model_validate(
        {
            "plain_http": True,
            "policy_dir": POLICY_DIR,
            "rules_dir": RULES_DIR,
            "database_url": f"sqlite+aiosqlite:///{tmp / 'tribunal.db'}",
            "actions": {"state_dir": tmp / "state"},
            "judge_workers": 0,
        }
    )
    server = build_server(settings)
    routes = {(route.method, route.resource.canonical) for route in server.app.router.routes()}  # type: ignore[union-attr]
    heads = {(m, p) for m, p in routes if m == "HEAD"}
    assert {("GET", p) for _, p in heads} <= routes, "a HEAD route without its GET"
    return routes - heads


def test_every_route_is_documented_and_every_documented_path_is_a_route(
    registered: set[tuple[str, str]],
) -> None:
    documented = {(method, path) for method, path, _ in _operations(DOCUMENT)}
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented operations the server does not serve"
    # The routes the brief names, so that an empty app and an empty document cannot agree.
    assert {("POST", "/validate"), ("GET", "/evidence/{evidence_id}"), ("GET", OPENAPI_PATH)} <= registered


def test_open_operations_are_exactly_the_authenticators_open_paths() -> None:
    open_paths = {path for _, path, op in _operations(DOCUMENT) if op.get("security") == []}
    assert open_paths == set(OPEN_PATHS)
    assert OPENAPI_PATH in open_paths
    assert DOCUMENT["security"] == [{"bearer": []}]
    assert DOCUMENT["components"]["securitySchemes"]["bearer"] == {
        **DOCUMENT["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    for _, path, operation in _operations(DOCUMENT):
        guarded = path not in OPEN_PATHS
        assert {"401", "403", "503"} <= set(operation["responses"]) or not guarded, path
        assert "401" not in operation["responses"] or guarded, path


def test_query_parameters_are_the_query_models_fields() -> None:
    def names(path: str) -> set[str]:
        return {p["name"] for p in DOCUMENT["paths"][path]["get"]["parameters"] if p["in"] == "query"}

    assert names("/verdicts") == set(VerdictQuery.model_fields)
    assert names("/findings") == set(FindingQuery.model_fields)
    compliance = {p["name"]: p for p in DOCUMENT["paths"]["/reports/compliance"]["get"]["parameters"]}
    assert set(compliance) == {"framework", "format", "namespace", "since"}
    assert compliance["framework"]["required"] is True
    assert compliance["framework"]["schema"]["examples"] == ["cis-k8s", "pss-baseline"]
    assert compliance["format"]["schema"]["enum"] == list(FORMATS)


def test_every_answer_of_a_guarded_path_and_every_error_has_a_json_schema() -> None:
    for _, path, operation in _operations(DOCUMENT):
        for status, answer in operation["responses"].items():
            if "$ref" in answer:
                answer = DOCUMENT["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
            assert answer["content"], (path, status)
            if status.startswith(("4", "5")) and path != "/readyz":
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (path, status)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_schemas_are_valid_and_every_reference_resolves() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema), name
    refs = {n["$ref"] for n in _walk(DOCUMENT) if isinstance(n, dict) and isinstance(n.get("$ref"), str)}
    assert refs, "no references: the document is not built from the models"
    for ref in refs:
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in DOCUMENT["components"][section], ref
    json.dumps(DOCUMENT)  # plain JSON, as served


def _validator(name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return Draft202012Validator(root)


def _documents(*paths: Path) -> Iterator[tuple[str, Any]]:
    for path in paths:
        text = path.read_text()
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    yield f"{path.name}:{n}", json.loads(line)
        elif path.suffix == ".yaml":
            yield path.name, yaml.safe_load(text)
        else:
            yield path.name, json.loads(text)


EXAMPLES = PROJECT / "examples"


@pytest.mark.parametrize(
    ("schema", "folder"),
    [("AdmissionReviewRequest", "admission"), ("FalcoAlert", "falco"), ("TrivyEvidence", "trivy")],
)
def test_real_evidence_validates_against_the_request_bodies(schema: str, folder: str) -> None:
    validator = _validator(schema)
    files = [*sorted((EXAMPLES / folder).glob("*.json*")), *shared_fixtures(folder, ".json", ".jsonl")]
    checked = 0
    for name, doc in _documents(*files):
        if folder == "admission" and doc.get("kind") != "AdmissionReview":
            continue  # a bare manifest: `tribunal judge` reads those, /validate does not
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)}"
        checked += 1
    assert checked >= 1


def test_the_request_body_refuses_what_the_webhook_refuses() -> None:
    validator = _validator("AdmissionReviewRequest")
    assert not validator.is_valid({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
    assert not validator.is_valid({"apiVersion": "v1", "kind": "AdmissionReview", "request": {}})
    assert not _validator("FalcoAlert").is_valid({"rule": "x", "priority": "loud", "time": "now"})
