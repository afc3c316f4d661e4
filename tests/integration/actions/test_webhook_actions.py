"""The server wired end to end: a denied admission is answered at once, then the shipped response rules
alert a real Alertmanager, and the verdict is recorded with the action's outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import pod, review
from tests.integration.conftest import StartServer, free_port

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


async def _alerts(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/alerts") as resp:
        return await resp.json()  # type: ignore[no-any-return]


async def test_denied_admission_alerts_alertmanager_and_records_the_outcome(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, alertmanager: str
) -> None:
    server, recorder = await start_server(alertmanager_url=alertmanager)
    for uid in ("a-1", "a-2"):  # the second falls inside the rule's dedupe window
        async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid=uid)) as resp:
            assert (await resp.json())["response"]["allowed"] is False
    records = await recorder.wait_for(2)
    first = {r.evidence.id: r for r in records}["a-1"]
    [outcome] = [o for o in first.actions if o.get("action") == "alert"]
    assert outcome["status"] == "success", outcome
    alerts: list[dict[str, Any]] = []
    for _ in range(100):
        alerts = await _alerts(alertmanager)
        if alerts:
            break
        await asyncio.sleep(0.05)
    # One alert per violated policy of the subject; the dedupe window keeps the repeat from adding any.
    by_policy = {a["labels"].get("policy"): a["labels"] for a in alerts}
    assert len(alerts) == len(by_policy)
    privileged = by_policy["privileged_containers"]
    assert privileged["namespace"] == "default" and privileged["policy_severity"] == "high"
    assert privileged["severity"] == "warning"  # on Alertmanager's scale
    second = {r.evidence.id: r for r in records}["a-2"]
    assert [o["status"] for o in second.actions if o.get("action") == "alert"] == ["deduplicated"]


async def test_the_alerts_generator_url_leads_to_the_verdict(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, alertmanager: str, tmp_path: Path
) -> None:
    """Followed from the real Alertmanager, an alert's generatorURL answers with its verdict."""
    port = free_port()
    server, _ = await start_server(
        store=True,
        port=port,
        alertmanager_url=alertmanager,
        actions={"state_dir": tmp_path / "state-gen", "external_url": f"https://127.0.0.1:{port}/"},
    )
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="gen-1")) as resp:
        assert (await resp.json())["response"]["allowed"] is False
    alerts: list[dict[str, Any]] = []
    for _ in range(100):
        alerts = await _alerts(alertmanager)
        if alerts:
            break
        await asyncio.sleep(0.05)
    [url] = {a["generatorURL"] for a in alerts}
    assert url == f"https://127.0.0.1:{port}/verdicts/gen-1"
    verdict: dict[str, Any] = {}
    for _ in range(100):  # the verdict is recorded a moment after the answer
        async with http.get(url) as resp:
            if resp.status == 200:
                verdict = await resp.json()
                break
        await asyncio.sleep(0.05)
    assert verdict["evidence_id"] == "gen-1" and verdict["decision"] == "deny"
    assert {a["labels"]["policy"] for a in alerts} <= {v["policy"] for v in verdict["violations"]}
