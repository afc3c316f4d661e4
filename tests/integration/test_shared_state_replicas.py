"""Several replicas share one truth: two `tribunal serve` processes on one PostgreSQL database.

- A Trivy report with a fixable critical CVE ingested by one blocks the image on both: an admission
  of a pod with that image is denied by each (before the fix, only by the one that got the report);
  a clean report ingested by the other clears it on both.
- A rule with a dedupe window sends one alert for repeats arriving on both (before: one per replica).
- The blast-radius budget of destructive actions (quarantine) is counted across both.

Every wait is bounded generously (a hang guard); nothing asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.components import free_port
from tests.conftest import pod, review, trivy_report
from tests.faults.support import (
    CountingReceiver,
    eventually,
    fetch,
    http_status,
    rules_with,
    tribunal_env,
    tribunal_process,
)
from tests.integration.conftest import create_pg_database, drop_pg_database, pg_url

pytestmark = pytest.mark.slow

IMAGE = "registry.example.com/shop/api:1.4.2"
CRITICAL_FIXABLE = {
    "VulnerabilityID": "CVE-2024-0001",
    "PkgName": "openssl",
    "InstalledVersion": "3.0.1",
    "FixedVersion": "3.0.2",
    "Severity": "CRITICAL",
    "Title": "openssl: remote code execution",
}
RULES = """rules:
  - name: block-fixable-critical-cves
    match: {kinds: [trivy], policies: [fixable_critical_high_cves], min_severity: critical}
    dedupe: 0
    actions: [{type: block-image}]
  - name: alert-once
    match: {kinds: [admission], decisions: [deny], namespaces: [shop]}
    dedupe: 1h
    actions: [{type: alert, target: webhook}]
  - name: contain
    match: {kinds: [admission], decisions: [deny], namespaces: [budget]}
    dedupe: 0
    actions: [{type: quarantine}]
"""
PER_MINUTE = 2
REPEATS = 4  # reviews of one pod sent to each replica
CONTAINED = 3  # pods to quarantine sent to each replica


def _review(uid: str, namespace: str, name: str, image: str, privileged: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if privileged:
        container["securityContext"] = {"privileged": True}
    obj = pod(container, name=name)
    obj["metadata"]["namespace"] = namespace
    return review(obj, uid=uid, namespace=namespace)


async def _validate(http: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{base}/validate", json=body) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = (await resp.json())["response"]
    return answer


def _blocked(answer: dict[str, Any]) -> bool:
    return "[blocked_images]" in (answer.get("status") or {}).get("message", "")


async def _outcomes(database_url: str, rule: str) -> list[dict[str, Any]]:
    rows = await fetch(database_url, "SELECT outcome FROM action_outcomes")
    outcomes = [json.loads(row[0]) for row in rows]
    return [o for o in outcomes if o.get("rule") == rule]


async def test_two_serve_replicas_on_one_postgresql_share_blocks_dedupe_and_blast_radius(
    postgres_admin: str, tmp_path: Path
) -> None:
    name = await create_pg_database(postgres_admin)
    database_url = pg_url(postgres_admin, name)
    receiver = CountingReceiver()
    await receiver.start()
    rules = rules_with(tmp_path, RULES)
    # The receiver answers the quarantine's requests with 404 (a failure, not retried): a taken slot all
    # the same, and an outcome recorded at once.
    kube_api = f"http://127.0.0.1:{receiver.port}"
    bases: list[str] = []
    envs: list[dict[str, str]] = []
    for replica in ("a", "b"):
        port = free_port()
        bases.append(f"http://127.0.0.1:{port}")
        envs.append(
            tribunal_env(
                tmp_path,
                port=str(port),
                plain_http="true",
                database_url=database_url,
                rules_dir=str(rules),
                actions__state_dir=str(tmp_path / f"state-{replica}"),
                actions__webhook_url=receiver.url,
                actions__kube_api_url=kube_api,
                actions__max_attempts="1",
                actions__destructive_per_minute=str(PER_MINUTE),
                shutdown_delay_seconds="0",
            )
        )
    a, b = bases
    log = tmp_path / "serve.log"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            tribunal_process("serve", envs[0], log) as first,
            tribunal_process("serve", envs[1], log) as second,
        ):

            async def ready() -> bool:
                for process in (first, second):
                    assert process.returncode is None, log.read_text()
                return all([(await http_status(http, f"{base}/readyz"))[0] == 200 for base in bases])

            await eventually(ready, "both replicas ready", 120)
            uid = iter(range(1_000_000))

            async def blocked_on(base: str) -> bool:
                answer = await _validate(
                    http, base, _review(f"img-{next(uid)}", "default", "api", IMAGE, False)
                )
                return _blocked(answer)

            assert not await blocked_on(a) and not await blocked_on(b)

            # --- a block made by one replica denies the image on both
            report = trivy_report(CRITICAL_FIXABLE, artifact=IMAGE)
            async with http.post(f"{a}/ingest/trivy", json=report) as resp:
                assert resp.status == 202, await resp.text()

            async def blocked_on_both() -> bool:
                return await blocked_on(a) and await blocked_on(b)

            await eventually(blocked_on_both, "the image blocked on both replicas", 120, every=0.5)

            # --- one alert per dedupe window for repeats arriving on both replicas
            repeats = [_review(f"repeat-{i}", "shop", "web", "nginx:1.27", True) for i in range(REPEATS * 2)]
            answers = await asyncio.gather(
                *(_validate(http, bases[i % 2], body) for i, body in enumerate(repeats))
            )
            assert all(not answer["allowed"] for answer in answers)

            async def alerted() -> list[dict[str, Any]] | None:
                outcomes = await _outcomes(database_url, "alert-once")
                return outcomes if len(outcomes) == REPEATS * 2 else None

            outcomes = await eventually(alerted, "the repeats acted on (or deduplicated)", 120, every=0.5)
            assert sorted(o["status"] for o in outcomes) == ["deduplicated"] * (REPEATS * 2 - 1) + ["success"]
            assert sum(receiver.received.values()) == 1, receiver.received

            # --- the blast-radius budget is counted across both replicas
            contained = [
                _review(f"contain-{i}", "budget", f"pod-{i}", "nginx:1.27", True)
                for i in range(CONTAINED * 2)
            ]
            await asyncio.gather(*(_validate(http, bases[i % 2], body) for i, body in enumerate(contained)))

            async def quarantined() -> list[dict[str, Any]] | None:
                outcomes = await _outcomes(database_url, "contain")
                return outcomes if len(outcomes) == CONTAINED * 2 else None

            outcomes = await eventually(quarantined, "the quarantines decided", 120, every=0.5)
            limited = [o for o in outcomes if o["status"] == "rate_limited"]
            assert len(outcomes) - len(limited) == PER_MINUTE, outcomes
            assert all("destructive actions per minute in budget" in o["reason"] for o in limited)

            # --- a clean report ingested by the other replica clears the block on both
            async with http.post(f"{b}/ingest/trivy", json=trivy_report(artifact=IMAGE)) as resp:
                assert resp.status == 202, await resp.text()

            async def cleared_on_both() -> bool:
                return not await blocked_on(a) and not await blocked_on(b)

            await eventually(cleared_on_both, "the image cleared on both replicas", 120, every=0.5)
            assert (
                await fetch(database_url, "SELECT key FROM blocked_images WHERE key <> 'tribunal:seeded'")
                == []
            )

            for process in (first, second):
                process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await first.wait()
                await second.wait()
            assert first.returncode == 0 and second.returncode == 0, log.read_text()
    finally:
        await receiver.stop()
        await drop_pg_database(postgres_admin, name)
    assert sum(receiver.received.values()) == 1
