"""Admission keeps its own capacity: large ingest documents and a huge review, posted while small
reviews arrive at a steady rate, never push a small review to the failure policy. Ingest is bounded
in size, count and time: what exceeds the budget is refused with 429 and ``Retry-After``, never
allowed to queue in front of a review."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any

import aiohttp

from tests.conftest import pod, review, trivy_report
from tests.integration.conftest import StartServer

COMPLIANT = {
    "name": "app",
    "image": "registry.example.com/shop/web:1.0",
    "securityContext": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def _big_array(megabytes: int) -> bytes:
    item = b'{"Target":"xxxxxxxxxxxxxxxxxxxx","Vulnerabilities":[{"VulnerabilityID":"CVE-1"}]},'
    count = megabytes * 1024 * 1024 // len(item)
    return b"[" + item * count + b"{}]"


def _big_report(vulnerabilities: int) -> bytes:
    vulns = [
        {
            "VulnerabilityID": f"CVE-2024-{i:05d}",
            "PkgName": f"lib{i}",
            "InstalledVersion": "1.0",
            "FixedVersion": "1.1",
            "Severity": "LOW",
            "Title": "x" * 200,
        }
        for i in range(vulnerabilities)
    ]
    return json.dumps(trivy_report(*vulns, artifact="registry.example.com/big:1")).encode()


def _huge_review(containers: int) -> bytes:
    spec = [{"name": f"c{i}", "image": "nginx:1.27"} for i in range(containers)]
    return json.dumps(review(pod(*spec, name="huge"), uid="huge")).encode()


async def _post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, dict[str, Any], str | None]:
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers.get("Retry-After")


async def test_large_ingest_and_a_huge_review_never_push_small_reviews_to_the_failure_policy(  # type: ignore[no-untyped-def]
    start_server: StartServer, http
) -> None:
    server, _ = await start_server(store=True, judge_workers=1, webhook_judge="pool")
    answers: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def small_reviews() -> None:
        sent = 0
        while not done.is_set() or sent < 40:
            sent += 1
            body = json.dumps(review(pod(COMPLIANT, name=f"p{sent}"), uid=f"small-{sent}")).encode()
            status, answer, _ = await _post(http, f"{server.url}/validate", body)
            assert status == 200, answer
            answers.append(answer["response"])
            await asyncio.sleep(0.05)

    async def heavy() -> list[tuple[int, dict[str, Any], str | None]]:
        array = _big_array(60)
        report = _big_report(20_000)
        results = await asyncio.gather(
            _post(http, f"{server.url}/ingest/trivy", array),
            _post(http, f"{server.url}/ingest/trivy", array),
            *(_post(http, f"{server.url}/ingest/trivy", report) for _ in range(6)),
            _post(http, f"{server.url}/validate", _huge_review(40_000)),
        )
        done.set()
        return results

    reviewer = asyncio.create_task(small_reviews())
    try:
        results = await heavy()
        await reviewer
    finally:
        done.set()
        reviewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reviewer

    failed = [a["uid"] for a in answers if "failure-policy" in (a.get("auditAnnotations") or {})]
    assert not failed, f"{len(failed)} of {len(answers)} small reviews answered by the failure policy"
    assert all(a["allowed"] for a in answers)
    *arrays, huge = results[:2], results[-1]
    for status, error, _ in arrays[0]:
        assert status == 400 and "expected a JSON object" in error["error"], error
    reports = results[2:-1]
    accepted = [r for r in reports if r[0] == 202]
    refused = [r for r in reports if r[0] == 429]
    assert accepted and len(accepted) + len(refused) == len(reports), [r[:2] for r in reports]
    for _, error, retry_after in refused:
        assert retry_after is not None and int(retry_after) > 0 and "busy" in error["error"]
    assert huge[0] == 200 and huge[1]["response"]["uid"] == "huge"


async def test_ingest_past_its_budget_gets_429_with_retry_after_and_the_connection_stays_usable(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, client_ssl: ssl.SSLContext
) -> None:
    server, recorder = await start_server(ingest_max_in_flight=1, ingest_queue_seconds=0.2)
    url = f"{server.url}/ingest/trivy"
    report = json.dumps(trivy_report(artifact="registry.example.com/slow:1")).encode()
    release = asyncio.Event()

    async def trickled() -> Any:
        yield report[:10]
        await release.wait()
        yield report[10:]

    async def holding() -> tuple[int, dict[str, Any]]:
        async with http.post(url, data=trickled(), headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json()

    holder = asyncio.create_task(holding())
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, ssl=client_ssl)) as one:
            for _ in range(200):  # until the trickled request holds the room: `{}` alone gets 400
                if (await _post(one, url, b"{}"))[0] == 429:
                    break
                await asyncio.sleep(0.05)
            for _ in range(2):  # the same connection, twice: the refused body was read and dropped
                status, error, retry_after = await _post(one, url, report)
                assert status == 429 and retry_after == "1", (status, error)
                assert "busy: 1 ingest requests" in error["error"]
            release.set()
            status, answer = await holder
            assert status == 202, answer
            status, answer, _ = await _post(one, url, report)
            assert status == 202, answer
    finally:
        release.set()
        await asyncio.gather(holder, return_exceptions=True)
    assert len(recorder.records) == 2


async def test_a_review_over_the_large_size_is_judged_by_the_bulk_workers(  # type: ignore[no-untyped-def]
    start_server: StartServer, http
) -> None:
    server, _ = await start_server(judge_workers=1, webhook_large_review_bytes=4096)

    async def admission_batches() -> float:
        async with http.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
        [line] = [x for x in text.splitlines() if x.startswith("tribunal_admission_batch_size_count")]
        return float(line.split()[-1])

    small = json.dumps(review(pod(COMPLIANT), uid="small")).encode()
    large = _huge_review(200)
    assert len(small) < 4096 < len(large)
    before = await admission_batches()
    status, answer, _ = await _post(http, f"{server.url}/validate", large)
    assert status == 200 and answer["response"]["uid"] == "huge"
    assert "failure-policy" not in answer["response"].get("auditAnnotations", {})
    assert answer["response"]["warnings"]  # judged: 200 containers without a securityContext
    assert await admission_batches() == before
    status, answer, _ = await _post(http, f"{server.url}/validate", small)
    assert status == 200 and answer["response"]["allowed"] is True
    assert await admission_batches() == before + 1
