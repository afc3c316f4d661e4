"""Every door but /validate, /healthz and /readyz needs a bearer token (server/auth.py): on a real
Tribunal server over TLS, with static tokens. Tokens checked by a real API server (TokenReview and
SubjectAccessReview) are in tests/e2e/test_auth.py."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import falco_alert, pod, review
from tests.integration.conftest import StartServer

GUARDED = [
    ("GET", "/metrics"),
    ("GET", "/verdicts"),
    ("GET", "/findings"),
    ("GET", "/evidence/some-id"),
    ("GET", "/reports/compliance?framework=pss-baseline"),
    ("POST", "/ingest/falco"),
    ("POST", "/ingest/trivy"),
    ("GET", "/no-such-path"),
]


async def _status(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kw: Any
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with http.request(method, url, headers=headers, **kw) as response:
        if response.status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        return response.status


async def test_without_any_credential_configured_every_guarded_door_answers_401(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    server, recorder = await start_server(auth={})
    for method, path in GUARDED:
        assert await _status(http, method, server.url + path) == 401, path
        assert await _status(http, method, server.url + path, token="anything") == 401, path
    # The open doors stay open: the API server and the kubelet carry no token.
    assert await _status(http, "GET", f"{server.url}/healthz") == 200
    assert await _status(http, "GET", f"{server.url}/readyz") == 200
    async with http.post(f"{server.url}/validate", json=review(pod())) as response:
        assert response.status == 200 and (await response.json())["response"]["allowed"] is True
    assert recorder.records == [] or all(r.evidence.kind.value == "admission" for r in recorder.records)


async def test_the_ingest_token_opens_ingest_only_and_the_read_token_the_read_api_and_metrics(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    server, _ = await start_server(auth={"read_token": "r34d"}, ingest_token="1ng3st")
    alert = json.dumps(falco_alert()).encode()
    assert await _status(http, "POST", f"{server.url}/ingest/falco", "1ng3st", data=alert) == 202
    assert await _status(http, "POST", f"{server.url}/ingest/falco", "r34d", data=alert) == 401
    assert await _status(http, "GET", f"{server.url}/metrics", "r34d") == 200
    assert await _status(http, "GET", f"{server.url}/verdicts", "r34d") == 200
    assert await _status(http, "GET", f"{server.url}/metrics", "1ng3st") == 401
    assert await _status(http, "GET", f"{server.url}/verdicts", "1ng3st") == 401
    for header in ("Basic r34d", "Bearer", "r34d", "Bearer  "):
        async with http.get(f"{server.url}/verdicts", headers={"Authorization": header}) as response:
            assert response.status == 401, header


@pytest.mark.parametrize("token", ["tökén", "r34d\u00a0", "\u202er34d"])
async def test_a_non_ascii_token_gets_401_not_500(
    start_server: StartServer, http: aiohttp.ClientSession, token: str
) -> None:
    server, _ = await start_server(auth={"read_token": "r34d"}, ingest_token="1ng3st")
    encoded = f"Bearer {token}".encode()
    for method, path in GUARDED:
        # Sent as raw UTF-8 bytes, as a careless client would (aiohttp's own headers are str).
        async with http.request(
            method, server.url + path, headers={"Authorization": encoded.decode("latin-1")}
        ) as resp:
            assert resp.status == 401, (path, token)


async def test_anonymous_opens_every_door_and_is_what_the_tests_and_dev_use(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    server, _ = await start_server(auth={"anonymous": True})
    assert await _status(http, "GET", f"{server.url}/metrics") == 200
    assert await _status(http, "GET", f"{server.url}/verdicts") == 200


async def test_refusals_are_counted_by_result(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    server, _ = await start_server(auth={"read_token": "r34d"})
    await _status(http, "GET", f"{server.url}/verdicts")
    await _status(http, "GET", f"{server.url}/verdicts", "r34d")
    assert (
        server.registry.get_sample_value("tribunal_auth_requests_total", {"result": "unauthenticated"}) == 1
    )
    assert server.registry.get_sample_value("tribunal_auth_requests_total", {"result": "allowed"}) == 1
