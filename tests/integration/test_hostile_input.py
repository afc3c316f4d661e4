"""Hostile input over real HTTPS: each gets a 4xx with a JSON body naming the problem (the webhook keeps
its own shape), never a 500 or 503, and the server goes on answering admissions. Slow clients are cut
off: a body trickled in gets 408 and its connection closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import zlib
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import BILLION_LAUGHS, falco_alert, pod, review
from tests.integration.conftest import StartServer
from tribunal.server import Server

ENDPOINTS = ("/validate", "/ingest/falco", "/ingest/trivy")
PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
OPERATOR_REPORT = {
    "apiVersion": "aquasecurity.github.io/v1alpha1",
    "kind": "VulnerabilityReport",
    "metadata": {"name": "replicaset-web-app", "namespace": "shop"},
    "report": {"artifact": {"repository": "library/nginx", "tag": "1.27"}, "vulnerabilities": []},
}


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes, **headers: str
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **headers}
    async with http.post(url, data=body, headers=headers) as resp:
        text = await resp.text()
        assert resp.content_type == "application/json", (resp.status, text)
        return resp.status, json.loads(text)


async def _still_answers_admissions(http: aiohttp.ClientSession, server: Server, uid: str) -> None:
    status, answer = await _post(
        http, f"{server.url}/validate", json.dumps(review(pod(PRIVILEGED), uid=uid)).encode()
    )
    assert status == 200 and answer["response"]["uid"] == uid and answer["response"]["allowed"] is False


async def test_a_yaml_billion_laughs_gets_400_and_the_server_keeps_answering(
    start_server: StartServer, http
) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    for kind in ("trivy", "falco"):
        status, error = await _post(
            http, f"{server.url}/ingest/{kind}", BILLION_LAUGHS, **{"Content-Type": "application/yaml"}
        )
        assert status == 400, error
        assert error["error"].startswith(f"POST /ingest/{kind} from ")
        assert "aliases are not accepted" in error["error"] and "line 2" in error["error"]
    await _still_answers_admissions(http, server, "after-laughs")


NOT_JSON_YAML = {
    "non-string key": (b"SchemaVersion: 2\n1: one\n", "mapping keys must be strings"),
    "!!binary": (b"SchemaVersion: 2\nArtifactName: !!binary aGVsbG8=\n", "!!binary"),
    "!!set": (b"SchemaVersion: 2\nArtifactName: !!set {a, b}\n", "!!set"),
    "python tag": (b"SchemaVersion: 2\nx: !!python/object/apply:os.system ['true']\n", "!!python/"),
    "deep flow nesting": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 100 levels"),
    "deep block nesting": (
        b"".join(b" " * i + b"a:\n" for i in range(3000)),
        "nested deeper than 100 levels",
    ),
    "several documents": (b"SchemaVersion: 2\n---\nSchemaVersion: 2\n", "one YAML document"),
    "infinity": (b"SchemaVersion: 2\nx: .inf\n", "not a JSON number"),
}


@pytest.mark.parametrize("name", NOT_JSON_YAML)
async def test_yaml_json_cannot_carry_gets_400_naming_the_problem(
    start_server: StartServer, http, name: str
) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    body, problem = NOT_JSON_YAML[name]
    for kind in ("trivy", "falco"):
        status, error = await _post(
            http, f"{server.url}/ingest/{kind}", body, **{"Content-Type": "application/yaml"}
        )
        assert status == 400, (kind, error)
        assert error["error"].startswith(f"POST /ingest/{kind} from ") and problem in error["error"], error
    await _still_answers_admissions(http, server, f"after-{len(name)}")


async def test_json_nested_100000_deep_gets_400_on_every_endpoint(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        for path in ENDPOINTS:
            status, error = await _post(http, f"{server.url}{path}", body)
            # Ingest takes objects only, and says so before parsing anything.
            expected = "expected a JSON object" if path != "/validate" and body[:1] == b"[" else "depth"
            assert status == 400 and expected in error["error"], (path, error)
    await _still_answers_admissions(http, server, "after-deep-json")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_corrupt_compressed_body_gets_400_naming_the_encoding(
    start_server: StartServer, http, encoding: str
) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    for path in ENDPOINTS:
        for body in (
            b"this is not compressed at all",
            zlib.compress(b'{"kind": "AdmissionReview"}')[:4] + b"\x00" * 40,
        ):
            status, error = await _post(http, f"{server.url}{path}", body, **{"Content-Encoding": encoding})
            assert status == 400, (path, error)
            assert f"Content-Encoding: {encoding}" in error["error"], (path, error)
    await _still_answers_admissions(http, server, f"after-{encoding}")


async def test_a_well_compressed_body_is_read(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    import gzip

    server, _ = await start_server()
    body = gzip.compress(json.dumps(review(pod(PRIVILEGED), uid="gz-1")).encode())
    status, answer = await _post(http, f"{server.url}/validate", body, **{"Content-Encoding": "gzip"})
    assert status == 200 and answer["response"]["uid"] == "gz-1"
    status, answer = await _post(
        http,
        f"{server.url}/ingest/falco",
        gzip.compress(json.dumps(falco_alert()).encode()),
        **{"Content-Encoding": "gzip"},
    )
    assert status == 202, answer


@pytest.mark.parametrize(
    ("field", "value"), [("artifact", "nginx:1.27"), ("artifact", ["nginx"]), ("registry", "index.docker.io")]
)
async def test_an_operator_report_part_of_the_wrong_type_gets_400_naming_the_field(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, field: str, value: Any
) -> None:
    server, _ = await start_server()
    doc = {**OPERATOR_REPORT, "report": {**OPERATOR_REPORT["report"], field: value}}
    status, error = await _post(http, f"{server.url}/ingest/trivy", json.dumps(doc).encode())
    assert status == 400, error
    assert error["field"] == f"report.{field}"
    status, answer = await _post(http, f"{server.url}/ingest/trivy", json.dumps(OPERATOR_REPORT).encode())
    assert status == 202, answer


@pytest.mark.parametrize("metadata", ["web", ["web"], 7], ids=repr)
@pytest.mark.parametrize("webhook_judge", ["pool", "inline"])
async def test_a_review_whose_metadata_is_not_an_object_is_answered_and_recorded(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, metadata: Any, webhook_judge: str
) -> None:
    # With the pool, a worker judges and the server reads the labels for the response rules itself.
    server, recorder = await start_server(judge_workers=1, webhook_judge=webhook_judge)
    doc = review(pod(PRIVILEGED), uid="odd-metadata")
    doc["request"]["object"]["metadata"] = metadata
    status, answer = await _post(http, f"{server.url}/validate", json.dumps(doc).encode())
    assert status == 200 and answer["response"]["allowed"] is False
    [record] = await recorder.wait_for(1)
    assert record.evidence_id == "odd-metadata"
    async with http.get(f"{server.url}/metrics") as resp:
        assert 'tribunal_admission_unrecorded_total{reason="error"}' not in await resp.text()


def _raw_request(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


async def _connect(
    server: Server, client_ssl: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(server.url)
    return await asyncio.open_connection(url.hostname, url.port, ssl=client_ssl, server_hostname="localhost")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_body_trickled_in_gets_408_and_its_connection_closed(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, client_ssl: ssl.SSLContext, path: str
) -> None:
    server, _ = await start_server(body_read_timeout_seconds=0.5)
    reader, writer = await _connect(server, client_ssl)
    body = json.dumps(review(pod(PRIVILEGED), uid="slow")).encode()
    writer.write(_raw_request(path, len(body)))

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for byte in body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)

    sending = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(30):
            answer = await reader.read()  # everything up to the server's close
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in head.lower()
    assert "0.5 s" in json.loads(payload)["error"]
    await _still_answers_admissions(http, server, f"after-slow-{len(path)}")


@pytest.mark.parametrize("send", ["nothing", "a partial request line", "a request, then nothing"])
async def test_idle_connections_are_closed(  # type: ignore[no-untyped-def]
    start_server: StartServer, client_ssl: ssl.SSLContext, send: str
) -> None:
    server, _ = await start_server(keepalive_timeout_seconds=0.5)
    reader, writer = await _connect(server, client_ssl)
    try:
        if send == "a partial request line":
            writer.write(b"GET /hea")
        elif send == "a request, then nothing":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            received = await reader.read()  # returns at the server's close
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if send == "a request, then nothing":
        assert received.startswith(b"HTTP/1.1 200")
