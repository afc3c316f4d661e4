"""Failure policy on a real evaluation error and past the deadline, certificate rotation under a
running server, and a store (PostgreSQL) that goes away and comes back."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import ssl
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.conftest import pod, review
from tests.integration.conftest import StartServer
from tribunal.server import generate_self_signed

# regorus's interpreter fails at run time iterating null: a policy bug that only shows on some input.
# (The default engine's RVM treats such errors as undefined, as OPA does by default; the interpreter
# halts on them, which is what a failure-policy test needs.)
FAILING_POLICY = """package tribunal.admission.buggy
import rego.v1
violations contains {"msg": "never", "severity": "low", "controls": ["x:1"], "details": {}} if {
	some c in object.get(input.event.request.object.metadata, "labels", null)
	c == "boom"
}
"""
# About a second of work on any input: long past a short deadline (2,000 x 2,000 comparisons, little memory).
SLOW_POLICY = """package tribunal.admission.slow
import rego.v1
violations contains {"msg": "never", "severity": "low", "controls": ["x:1"], "details": {}} if {
	count([1 | some x in numbers.range(1, 2000); some y in numbers.range(1, 2000); x == y + 1]) < 0
}
"""
PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


async def _validate(session: aiohttp.ClientSession, url: str, doc: dict) -> dict:  # type: ignore[type-arg]
    async with session.post(f"{url}/validate", json=doc) as resp:
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]


async def test_evaluation_error_fails_closed_by_default_and_open_when_asked(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, policy_dir
) -> None:
    policies = policy_dir({"admission/buggy.rego": FAILING_POLICY})
    closed, _ = await start_server(policy_dir=policies, engine="regorus-interpreter")
    opened, _ = await start_server(policy_dir=policies, engine="regorus-interpreter", failure_policy="ignore")
    doc = review(pod(PRIVILEGED), uid="x-1")
    answer = (await _validate(http, closed.url, doc))["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 500
    assert "could not judge" in answer["status"]["message"] and "buggy.rego" in answer["status"]["message"]
    assert answer["auditAnnotations"]["failure-policy"] == "fail_closed"
    answer = (await _validate(http, opened.url, doc))["response"]
    assert answer["allowed"] is True and answer["auditAnnotations"]["failure-policy"] == "fail_open"
    assert "allowed by failure policy" in answer["warnings"][0]
    async with http.get(f"{closed.url}/metrics") as resp:
        text = await resp.text()
    assert 'tribunal_admission_failure_policy_total{cause="error",outcome="fail_closed"} 1.0' in text
    assert 'tribunal_evaluation_errors_total{cause="error",kind="admission"} 1.0' in text


async def test_a_review_past_the_deadline_gets_the_failure_policy_logged_with_its_uid(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, policy_dir, caplog: pytest.LogCaptureFixture
) -> None:
    policies = policy_dir({"admission/slow.rego": SLOW_POLICY})
    # Judged in a worker process, as in production: the event loop answers when the deadline passes.
    settings = {"policy_dir": policies, "judge_workers": 1, "webhook_deadline_seconds": 0.2}
    closed, _ = await start_server(**settings)
    opened, _ = await start_server(**settings, failure_policy="ignore")
    with caplog.at_level(logging.ERROR, logger="tribunal.sources.webhook"):
        denied, allowed = await asyncio.gather(
            _validate(http, closed.url, review(pod(PRIVILEGED), uid="slow-closed")),
            _validate(http, opened.url, review(pod(PRIVILEGED), uid="slow-open")),
        )
    answer = denied["response"]
    assert answer["uid"] == "slow-closed" and answer["allowed"] is False
    assert answer["status"]["code"] == 500 and "deadline" in answer["status"]["message"]
    assert answer["auditAnnotations"]["failure-policy"] == "fail_closed"
    answer = allowed["response"]
    assert answer["uid"] == "slow-open" and answer["allowed"] is True
    assert answer["auditAnnotations"]["failure-policy"] == "fail_open"
    assert "(deadline); allowed by failure policy" in answer["warnings"][0]
    logged = [r.getMessage() for r in caplog.records]
    assert any("slow-closed" in m and "deadline" in m and "fail_closed" in m for m in logged), logged
    assert any("slow-open" in m and "deadline" in m and "fail_open" in m for m in logged), logged
    async with http.get(f"{closed.url}/metrics") as resp:
        text = await resp.text()
    assert 'tribunal_admission_failure_policy_total{cause="deadline",outcome="fail_closed"} 1.0' in text
    assert 'tribunal_evaluation_errors_total{cause="deadline",kind="admission"} 1.0' in text
    async with http.get(f"{closed.url}/healthz") as resp:
        assert resp.status == 200


def _peer_certificate(url: str, cafile: Path) -> bytes:
    import socket

    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection((host, int(port))) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert(binary_form=True) or b""


def _der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


async def test_rotated_certificate_is_served_without_a_restart(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = generate_self_signed(tmp_path / "first")
    second = generate_self_signed(tmp_path / "second")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(first[0], live / "tls.crt")
    shutil.copy(first[1], live / "tls.key")
    server, _ = await start_server(
        tls_cert_file=live / "tls.crt", tls_key_file=live / "tls.key", tls_reload_interval=0.05
    )
    assert await asyncio.to_thread(_peer_certificate, server.url, first[0]) == _der(first[0])
    # cert-manager writes new files; the server picks them up on its next check.
    shutil.copy(second[1], live / "tls.key")
    shutil.copy(second[0], live / "tls.crt")
    for _ in range(200):
        if server.tls is not None and server.tls.reloads:
            break
        await asyncio.sleep(0.02)
    assert await asyncio.to_thread(_peer_certificate, server.url, second[0]) == _der(second[0])
    context = ssl.create_default_context(cafile=str(second[0]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        answer = await _validate(session, server.url, review(pod(PRIVILEGED), uid="t-1"))
    assert answer["response"]["allowed"] is False


async def test_a_half_written_certificate_keeps_the_previous_pair(
    start_server: StartServer, tmp_path: Path
) -> None:
    pair = generate_self_signed(tmp_path / "pair")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pair[0], live / "tls.crt")
    shutil.copy(pair[1], live / "tls.key")
    server, _ = await start_server(tls_cert_file=live / "tls.crt", tls_key_file=live / "tls.key")
    (live / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\ntruncated")
    assert server.tls is not None and server.tls.check() is False
    assert server.tls.last_error and "tls.crt" in server.tls.last_error
    assert await asyncio.to_thread(_peer_certificate, server.url, pair[0]) == _der(pair[0])
    context = ssl.create_default_context(cafile=str(pair[0]))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(f"{server.url}/readyz") as resp,
    ):
        body = json.loads(await resp.text())
    assert "tls.crt" in body["checks"]["tls"]


async def _recorder_metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return {
        name: float(line.split()[1])
        for line in text.splitlines()
        for name in ("written", "failed", "retries", "dropped")
        if line.startswith(f"tribunal_recorder_{name}_total ")
    }


async def test_a_store_outage_costs_no_answer_and_bounded_memory_and_loses_only_what_is_counted(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, pg_through_proxy, caplog: pytest.LogCaptureFixture
) -> None:
    url, direct, proxy = pg_through_proxy
    server, _ = await start_server(store=True, database_url=url, recorder_max_queue=4)
    before = [f"before-{i}" for i in range(3)]  # fewer than the queue holds: one hand-over
    during = [f"during-{i}" for i in range(12)]
    for uid in before:
        assert (await _validate(http, server.url, review(pod(PRIVILEGED), uid=uid)))["response"]["uid"] == uid
    for _ in range(200):  # written before the outage
        if (await _recorder_metrics(http, server.url)).get("written") == len(before):
            break
        await asyncio.sleep(0.05)
    assert (await _recorder_metrics(http, server.url))["written"] == len(before)

    proxy.sever()
    with caplog.at_level(logging.WARNING, logger="tribunal.record"):
        for uid in during:  # one at a time: every hand-over while the store is down
            answer = (await _validate(http, server.url, review(pod(PRIVILEGED), uid=uid)))["response"]
            assert answer["uid"] == uid and answer["allowed"] is False
            await asyncio.sleep(0.06)
        # Every answer came back while the store was still unreachable.
        assert proxy.cut
        for _ in range(200):
            metrics = await _recorder_metrics(http, server.url)
            if metrics["retries"] >= 1 and metrics["dropped"] >= 1:
                break
            await asyncio.sleep(0.05)
        proxy.cut = False  # the database is back
        for _ in range(400):
            metrics = await _recorder_metrics(http, server.url)
            if metrics["written"] + metrics["dropped"] + metrics["failed"] >= len(before) + len(during):
                break
            await asyncio.sleep(0.05)

    assert metrics["failed"] == 0 and metrics["retries"] >= 1
    assert 1 <= metrics["dropped"] < len(during)
    assert metrics["written"] + metrics["dropped"] == len(before) + len(during)
    logged = [r.getMessage() for r in caplog.records]
    assert any("retrying in" in m for m in logged), logged
    assert any("recorder queue is full (4 verdicts" in m for m in logged), logged

    conn = await asyncpg.connect(direct.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        stored = {row[0] for row in await conn.fetch("SELECT evidence_id FROM verdicts")}
    finally:
        await conn.close()
    assert set(before) <= stored  # nothing written before the outage is lost
    assert stored <= set(before) | set(during)
    assert len(stored) == metrics["written"]  # each written once, though batches were retried
