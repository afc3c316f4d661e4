"""schemathesis against a real Tribunal server over TLS, with authentication on: the server's own
/openapi.json drives it. Every operation gets generated requests, valid by the document (positive)
and not (negative); every answer must be no 5xx, a status code the document lists for the operation,
its media type, and a body and headers that match the document's schema. The server records into its
own SQL store, seeded first, so the read API answers real pages and evidence.

Bounded: a fixed number of examples per operation and mode, no deadline, no example database."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PROJECT, falco_alert, pod, review
from tests.integration.conftest import StartServer
from tribunal.server.openapi import openapi_document

READ_TOKEN = "r34d-t0ken"
INGEST_TOKEN = "1ng3st-t0ken"
POSITIVE_EXAMPLES = 40  # per operation
NEGATIVE_EXAMPLES = 20  # per operation
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.slow


def _token(path: str) -> str:
    return INGEST_TOKEN if path.startswith("/ingest/") else READ_TOKEN


async def _seed(base: str, client_ssl: ssl.SSLContext) -> list[str]:
    """A review, an alert and a Trivy report recorded: the ids of their evidence."""
    trivy = json.loads((PROJECT / "examples" / "trivy" / "checkout-image.json").read_text())
    privileged = pod({"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http:
        async with http.post(f"{base}/validate", json=review(privileged, uid="seed-1")) as answer:
            assert answer.status == 200
        ids = ["seed-1"]
        headers = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        for path, doc in (("/ingest/falco", falco_alert()), ("/ingest/trivy", trivy)):
            async with http.post(base + path, json=doc, headers=headers) as answer:
                assert answer.status == 202, await answer.text()
                ids.append((await answer.json())["id"])
        # The review is recorded in the background: wait until the read API shows it.
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        async with asyncio.timeout(10):
            while True:
                async with http.get(f"{base}/evidence/seed-1", headers=read) as answer:
                    if answer.status == 200:
                        break
                await asyncio.sleep(0.05)
    return ids


def _has_inputs(operation: Any) -> bool:
    return bool(len(operation.body) or len(operation.query) or len(operation.path_parameters))


def _fuzz(base: str, ca: Path, evidence_ids: list[str]) -> dict[str, dict[int, int]]:
    """Runs every operation's cases; the status codes seen, per operation (for the assertions)."""
    document = requests.get(f"{base}/openapi.json", verify=str(ca), timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    seen: dict[str, dict[int, int]] = {}
    session = requests.Session()
    session.verify = str(ca)

    def run(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {_token(case.path)}"}
        response = case.call(base_url=base, session=session, headers=headers, timeout=30, verify=str(ca))
        label = f"{case.method} {case.path}"
        if case.meta is not None and not case.meta.generation.mode.is_positive:
            label += " (negative)"
        counts = seen.setdefault(label, {})
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # nothing to get wrong (health, metrics, this document)
            strategy = operation.as_strategy(generation_mode=mode)
            if operation.path == "/evidence/{evidence_id}" and mode is GenerationMode.POSITIVE:
                # Ids that exist, besides generated ones: the 200 answer is checked too.
                recorded = [operation.as_strategy(path_parameters={"evidence_id": i}) for i in evidence_ids]
                strategy = st.one_of(strategy, *recorded)

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            @given(case=strategy)
            def test(case: schemathesis.Case) -> None:
                run(case)

            test()
    return seen


async def test_schemathesis_finds_no_server_error_and_every_answer_matches_the_document(
    start_server: StartServer, client_ssl: ssl.SSLContext, tls_pair: tuple[Path, Path]
) -> None:
    server, _ = await start_server(
        store=True, auth={"read_token": READ_TOKEN}, ingest_token=INGEST_TOKEN, webhook_deadline_seconds=10
    )
    evidence_ids = await _seed(server.url, client_ssl)
    seen = await asyncio.to_thread(_fuzz, server.url, tls_pair[0], evidence_ids)

    # Every operation was exercised, and each answered more than its refusals: the fuzzing reached
    # the handlers (behind authentication) and their success paths.
    positive = {label: counts for label, counts in seen.items() if not label.endswith("(negative)")}
    operations = {f"{m.upper()} {path}" for path, item in openapi_document()["paths"].items() for m in item}
    assert set(positive) == operations, sorted(seen)
    assert all(any(200 <= s < 300 for s in counts) for counts in positive.values()), seen
    assert all(401 not in counts for counts in positive.values()), seen
    assert 400 in seen["POST /validate (negative)"] and 400 in seen["GET /verdicts (negative)"], seen


async def test_the_document_is_served_without_a_token_and_is_what_the_module_builds(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    server, _ = await start_server(auth={"read_token": READ_TOKEN})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http:
        async with http.get(f"{server.url}/openapi.json") as answer:
            assert answer.status == 200 and answer.content_type == "application/json"
            document: dict[str, Any] = await answer.json()
        async with http.get(f"{server.url}/verdicts") as answer:
            assert answer.status == 401  # the document is open; what it describes is not
    assert document["openapi"].startswith("3.1")
    framework = next(
        p for p in document["paths"]["/reports/compliance"]["get"]["parameters"] if p["name"] == "framework"
    )
    assert "pss-baseline" in framework["schema"]["examples"]  # from the server's rules_dir


@pytest.mark.parametrize(
    "path",
    [
        "/verdicts?namespace=%00",
        "/verdicts?subject=a%00b",
        "/findings?policy=ok,a%00",
        "/reports/compliance?framework=pss-baseline&namespace=%00",
        "/evidence/a%00b",
    ],
)
async def test_a_nul_character_in_the_read_api_is_refused_on_every_store(
    start_server: StartServer, client_ssl: ssl.SSLContext, database_url: str, path: str
) -> None:
    """PostgreSQL refuses NUL in text: the read API answered 500 (SQLite took it)."""
    server, _ = await start_server(store=True, database_url=database_url, auth={"read_token": READ_TOKEN})
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http,
        http.get(server.url + path, headers=headers) as answer,
    ):
        body = await answer.json()
    if path.startswith("/evidence/"):
        assert answer.status == 404, body
    else:
        assert answer.status == 400 and "must not hold a NUL character" in body["error"], body
