"""The OpenAPI 3.1 document of Tribunal's HTTP API, served (open, like health) at ``GET /openapi.json``.

It is built from what the handlers themselves validate with and answer in, so it cannot drift from
them: the evidence models are the request bodies, the store's query models the read API's query
parameters, its rows and the report model the answers, :data:`~tribunal.server.auth.OPEN_PATHS` says
which paths need no token, and the export formats are those registered in ``reports.formats``. Only
the shapes no model holds (errors, health, the ingest receipt) are written here.

``tests/unit/server/test_openapi.py`` holds the document to the routes the server registers, both
ways; ``tests/integration/test_openapi_schemathesis.py`` runs schemathesis against a real server with
it (docs/operations.md, "HTTP API", says how to run it against a deployment)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from tribunal import __version__
from tribunal.model import (
    AdmissionResponse,
    AdmissionReview,
    FalcoAlert,
    TrivyK8sReport,
    TrivyOperatorReport,
    TrivyReport,
)
from tribunal.model.admission import ADMISSION_API_VERSIONS
from tribunal.reports.formats import FORMATS
from tribunal.reports.frameworks import framework_ids
from tribunal.reports.model import ComplianceReport
from tribunal.server.auth import OPEN_PATHS
from tribunal.sources.ingest import YAML_CONTENT_TYPES
from tribunal.store import FindingQuery, FindingRow, Page, VerdictDetail, VerdictQuery, VerdictRow

OPENAPI_PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_SCHEMA = "#/components/schemas/"
_TIME_SPAN = (
    "an ISO 8601 date or time (UTC when it has no offset: 2025-01-31, 2025-01-31T12:00:00Z) or a span "
    "back from now, digits and a unit (30d, 12h, 90m, 45s)"
)
# Bodies the handlers read (validation) and answers they write (serialization), by schema name.
_MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (AdmissionReview, "validation"),
    (FalcoAlert, "validation"),
    (TrivyReport, "validation"),
    (TrivyK8sReport, "validation"),
    (TrivyOperatorReport, "validation"),
    (VerdictQuery, "validation"),
    (FindingQuery, "validation"),
    (AdmissionResponse, "serialization"),
    (Page[VerdictRow], "serialization"),
    (VerdictDetail, "serialization"),
    (Page[FindingRow], "serialization"),
    (ComplianceReport, "serialization"),
)


def openapi_document(frameworks: Iterable[str] = ()) -> dict[str, Any]:
    """The document; ``frameworks`` (the catalogue ids) are given as examples of ``framework``."""
    _, generated = models_json_schema(list(_MODELS), ref_template=_REF, by_alias=True)
    schemas: dict[str, Any] = generated.get("$defs", {})
    # Query models become parameters, not schemas of their own.
    verdict_query, finding_query = schemas.pop("VerdictQuery"), schemas.pop("FindingQuery")
    schemas.update(_hand_written_schemas(schemas))
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Tribunal",
            "version": __version__,
            "summary": "Admission webhook, evidence ingest and the read API over the record of verdicts.",
            "description": (
                f"Every path but {', '.join(f'`{p}`' for p in sorted(OPEN_PATHS))} needs "
                "`Authorization: Bearer <token>` (docs/security.md): no token or one nobody accepts "
                "gets 401, a token whose user may not use the path 403, and 503 when the Kubernetes "
                "API server cannot be asked (retry)."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": {
            "/validate": {"post": _validate()},
            "/ingest/falco": {"post": _ingest("falco", "FalcoAlert", yaml=False)},
            "/ingest/trivy": {"post": _ingest("trivy", "TrivyEvidence", yaml=True)},
            "/verdicts": {"get": _verdicts(verdict_query)},
            "/verdicts/{evidence_id}": {"get": _verdict()},
            "/findings": {"get": _findings(finding_query)},
            "/evidence/{evidence_id}": {"get": _evidence()},
            "/reports/compliance": {"get": _compliance(list(frameworks))},
            "/healthz": {"get": _healthz()},
            "/readyz": {"get": _readyz()},
            "/metrics": {"get": _metrics()},
            OPENAPI_PATH: {"get": _openapi()},
        },
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A static token (TRIBUNAL_INGEST_TOKEN for /ingest/*, "
                    "TRIBUNAL_AUTH__READ_TOKEN for the rest), or with TRIBUNAL_AUTH__KUBERNETES a "
                    "Kubernetes token whose user may use the path with the verb (TokenReview, "
                    "SubjectAccessReview on the non-resource URL).",
                }
            },
            "responses": _shared_responses(),
        },
        "security": [{"bearer": []}],
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            if path in OPEN_PATHS:
                operation["security"] = []
            else:
                operation["responses"].update(
                    {code: {"$ref": f"#/components/responses/{name}"} for code, name in _AUTH_RESPONSES}
                )
    return document


def openapi_routes(rules_dir: Path | None = None) -> list[web.RouteDef]:
    """``GET /openapi.json``; the framework catalogues of ``rules_dir`` are named as examples."""
    body = orjson.dumps(openapi_document(framework_ids(rules_dir) if rules_dir else ()))

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return [web.get(OPENAPI_PATH, handle)]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMA + name}


def _content(schema: Mapping[str, Any], *media_types: str) -> dict[str, Any]:
    return {media: {"schema": dict(schema)} for media in media_types or ("application/json",)}


def _answer(description: str, schema: Mapping[str, Any] | None = None, **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = _content(schema)
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str) -> dict[str, Any]:
    return _answer(description, _ref("Error"))


_AUTH_RESPONSES = (("401", "Unauthenticated"), ("403", "Forbidden"), ("503", "Unavailable"))


def _shared_responses() -> dict[str, Any]:
    challenge = {"description": 'Bearer realm="tribunal"', "schema": {"type": "string"}}
    return {
        "Unauthenticated": _answer(
            "No bearer token, an empty or non-ASCII one, or one nobody accepts.",
            _ref("Error"),
            **{"WWW-Authenticate": challenge},
        ),
        "Forbidden": _error("The token's user may not use this path with this verb (SubjectAccessReview)."),
        "Unavailable": _error(
            "Retry later: the token could not be checked with the Kubernetes API server now; on the "
            "read API, the store has not connected yet; on /ingest/*, the verdict could not be "
            "recorded or a judge worker died."
        ),
    }


def _hand_written_schemas(generated: Mapping[str, Any]) -> dict[str, Any]:
    """The shapes no model holds, and the request variants the handlers narrow the models to."""
    review = copy.deepcopy(generated["AdmissionReview"])
    review["title"] = "AdmissionReview to answer"
    review["description"] = "An AdmissionReview as the API server sends it: `request` is required."
    review["required"] = [*review["required"], "request"]
    review["properties"]["request"] = _ref("AdmissionRequest")
    review["properties"].pop("response", None)
    versions = list(ADMISSION_API_VERSIONS)
    return {
        "AdmissionReviewRequest": review,
        "AdmissionReviewResponse": {
            "title": "AdmissionReview answer",
            "type": "object",
            "required": ["apiVersion", "kind", "response"],
            "properties": {
                "apiVersion": {"enum": versions, "description": "The request's, answered in kind."},
                "kind": {"const": "AdmissionReview"},
                "response": _ref("AdmissionResponse"),
            },
        },
        "TrivyEvidence": {
            "title": "Trivy report",
            "description": "`trivy image|fs|repo|config --format json` (SchemaVersion 2), `trivy k8s "
            "--format json` (ClusterName), or a Trivy Operator report resource "
            "(apiVersion aquasecurity.github.io/*).",
            "anyOf": [_ref("TrivyReport"), _ref("TrivyK8sReport"), _ref("TrivyOperatorReport")],
        },
        "Error": {
            "title": "Error",
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "What is wrong, naming the source."},
                "field": {
                    "type": "string",
                    "description": "The dotted path of the field at fault, where one is known.",
                },
                "id": {"type": "string", "description": "The evidence id, when it was judged."},
            },
        },
        "IngestReceipt": {
            "title": "Ingest receipt",
            "type": "object",
            "required": ["id", "kind", "decision"],
            "properties": {
                "id": {"type": "string", "description": "The evidence id: GET /evidence/{id}."},
                "kind": _ref("EvidenceKind"),
                "decision": _ref("Decision"),
            },
        },
    }


def _validate() -> dict[str, Any]:
    return {
        "operationId": "validate",
        "tags": ["admission"],
        "summary": "The validating admission webhook (admission.k8s.io/v1; v1beta1 answered in kind).",
        "description": "See docs/operations.md, 'What the webhook answers'. A review that cannot be "
        "judged in time is answered by the failure policy (200, allowed or denied).",
        "externalDocs": {
            "description": "The AdmissionReview request and response (Kubernetes)",
            "url": "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/"
            "#request",
        },
        "requestBody": {"required": True, "content": _content(_ref("AdmissionReviewRequest"))},
        "responses": {
            "200": _answer(
                "The answer: allowed, denied (status 403) or warned, with audit annotations.",
                _ref("AdmissionReviewResponse"),
            ),
            "400": _error(
                "Not an AdmissionReview this webhook can answer: empty, not JSON, another kind, no "
                "request, an invalid field (named), deeper than 100 levels, over "
                "TRIBUNAL_MAX_REQUEST_BYTES, an undecodable Content-Encoding, not application/json."
            ),
            "408": _error("The body did not arrive within TRIBUNAL_BODY_READ_TIMEOUT_SECONDS."),
        },
    }


def _ingest(kind: str, schema: str, *, yaml: bool) -> dict[str, Any]:
    media = ("application/json", *YAML_CONTENT_TYPES) if yaml else ("application/json",)
    return {
        "operationId": f"ingest_{kind}",
        "tags": ["ingest"],
        "summary": f"Judge and record one {'Trivy report' if yaml else 'Falco alert'}.",
        "description": "Recorded before the answer: a 202 is never lost (docs/pipeline.md, 'HTTP ingest')."
        + (" YAML is read as JSON: no aliases, tags or non-string keys." if yaml else ""),
        "requestBody": {"required": True, "content": _content(_ref(schema), *media)},
        "responses": {
            "202": _answer("Judged and recorded.", _ref("IngestReceipt")),
            "400": _error(
                "Not valid evidence of this kind (the field at fault named where known), empty, over "
                "TRIBUNAL_MAX_DOCUMENT_BYTES, or an undecodable Content-Encoding."
            ),
            "408": _error("The body did not arrive within TRIBUNAL_BODY_READ_TIMEOUT_SECONDS."),
            "500": _error("A policy failed on this document."),
        },
    }


def _parameters(query: Mapping[str, Any], *, lists: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The query parameters of a query model's JSON schema (its nullable fields made plain)."""
    parameters = []
    for name, prop in query["properties"].items():
        schema = {k: v for k, v in prop.items() if k not in ("default", "title", "anyOf", "description")}
        variants = [v for v in prop.get("anyOf", ()) if v.get("type") != "null"]
        if len(variants) == 1:
            schema.update(variants[0])
        if name in ("since", "until"):
            schema = _since_schema()
        if "default" in prop and prop["default"] is not None:
            schema["default"] = prop["default"]
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
        description = _TIME_SPAN if name in ("since", "until") else prop.get("description")
        if name in lists:
            parameter.update(style="form", explode=True)
            description = "repeat it or separate values with commas"
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _since_schema() -> dict[str, Any]:
    """``since``/``until`` as reports.builder.parse_since reads them."""
    return {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}, {"pattern": "^[0-9]+[dhms]$"}],
        "examples": ["30d", "12h", "2025-01-31", "2025-01-31T12:00:00Z"],
    }


def _read_errors() -> dict[str, Any]:
    return {"400": _error("A bad parameter, named in the message (an unknown one too).")}


def _verdicts(query: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "operationId": "list_verdicts",
        "tags": ["read"],
        "summary": "Verdicts, newest first; pass next_cursor back as cursor for the next page.",
        "parameters": _parameters(query),
        "responses": {"200": _answer("One page of verdicts.", _ref("Page_VerdictRow_")), **_read_errors()},
    }


def _findings(query: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "operationId": "list_findings",
        "tags": ["read"],
        "summary": "Findings (one per policy and subject), most recently seen first.",
        "parameters": _parameters(query, lists=("policy",)),
        "responses": {"200": _answer("One page of findings.", _ref("Page_FindingRow_")), **_read_errors()},
    }


def _evidence_id() -> dict[str, Any]:
    return {
        "name": "evidence_id",
        "in": "path",
        "required": True,
        "description": "The AdmissionReview uid, Falco uuid or content hash (sha256:…).",
        "schema": {"type": "string", "minLength": 1},
    }


def _verdict() -> dict[str, Any]:
    return {
        "operationId": "get_verdict",
        "tags": ["read"],
        "summary": "The verdict recorded for a piece of evidence (where alerts' generatorURL points).",
        "parameters": [_evidence_id()],
        "responses": {
            "200": _answer(
                "The verdict, its actions' outcomes and whether they are still to run.", _ref("VerdictDetail")
            ),
            "404": _error("No verdict was recorded for this id."),
        },
    }


def _evidence() -> dict[str, Any]:
    return {
        "operationId": "get_evidence",
        "tags": ["read"],
        "summary": "The raw document of a piece of evidence, as it arrived (secrets redacted).",
        "parameters": [_evidence_id()],
        "responses": {
            "200": _answer("The document.", {}),
            "404": _error("No evidence has this id."),
            "410": _error("Its raw document was pruned (TRIBUNAL_RETENTION_DAYS)."),
        },
    }


def _compliance(frameworks: list[str]) -> dict[str, Any]:
    by_media: dict[str, list[dict[str, Any]]] = {}
    for name, exporter in FORMATS.items():
        media = exporter.media_type.partition(";")[0].strip()
        if name == "json":
            schema: dict[str, Any] = _ref("ComplianceReport")
        elif media.endswith("json"):
            schema = {"type": "object", "description": f"the {name} format"}
        elif media.endswith("yaml"):
            schema = {}  # a stream of YAML documents: no one JSON schema
        else:
            schema = {"type": "string", "description": f"the {name} format"}
        by_media.setdefault(media, []).append(schema)
    content = {
        media: ({"schema": schemas[0] if len(schemas) == 1 else {"anyOf": schemas}} if any(schemas) else {})
        for media, schemas in by_media.items()
    }
    framework: dict[str, Any] = {"type": "string", "minLength": 1}
    if frameworks:
        framework["examples"] = frameworks
    return {
        "operationId": "compliance_report",
        "tags": ["read"],
        "summary": "A compliance report from the record, in one of the export formats (docs/reports.md).",
        "parameters": [
            {
                "name": "framework",
                "in": "query",
                "required": True,
                "description": "A catalogue of rules/frameworks (e.g. cis-k8s, nsa-cisa, pss-baseline).",
                "schema": framework,
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"enum": list(FORMATS), "default": "json"},
            },
            {
                "name": "namespace",
                "in": "query",
                "required": False,
                "description": "Only this namespace's scope.",
                "schema": {"type": "string"},
            },
            {
                "name": "since",
                "in": "query",
                "required": False,
                "description": _TIME_SPAN,
                "schema": _since_schema(),
            },
        ],
        "responses": {
            "200": {
                "description": "The report, in the media type of its format (policyreport: one "
                "PolicyReport per namespace and a ClusterPolicyReport, as multi-document YAML).",
                "content": content,
            },
            "400": _error("No framework, an unknown format or a bad since."),
            "404": _error("No such framework."),
            "500": _error("The framework's catalogue could not be read (a broken rules/frameworks file)."),
        },
    }


def _healthz() -> dict[str, Any]:
    ok = {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}
    return {
        "operationId": "healthz",
        "tags": ["health"],
        "summary": "Alive.",
        "responses": {"200": _answer("The process is alive.", ok)},
    }


def _readyz() -> dict[str, Any]:
    ready = {
        "type": "object",
        "required": ["ready", "checks"],
        "properties": {
            "ready": {"type": "boolean"},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return {
        "operationId": "readyz",
        "tags": ["health"],
        "summary": "Ready to take reviews: policies compiled and listening, not stopping.",
        "responses": {
            "200": _answer("Ready; each check says ok or what is wrong (non-fatal).", ready),
            "503": _answer("Not ready (starting, stopping, or a fatal check failing).", ready),
        },
    }


def _metrics() -> dict[str, Any]:
    return {
        "operationId": "metrics",
        "tags": ["health"],
        "summary": "Prometheus metrics (docs/operations.md, 'Metrics').",
        "responses": {
            "200": {
                "description": "The text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    }


def _openapi() -> dict[str, Any]:
    return {
        "operationId": "openapi",
        "tags": ["health"],
        "summary": "This document.",
        "responses": {"200": _answer("The OpenAPI document.", {"type": "object"})},
    }
