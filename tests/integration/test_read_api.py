"""The read API over real HTTP on a loopback port, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import RULES_DIR
from tests.integration.conftest import MakeRecord
from tribunal.model import EvidenceKind
from tribunal.reports.api import read_api_routes
from tribunal.store import SqlStore


@pytest.fixture
async def client(
    database_url: str, make_record: MakeRecord
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    store = SqlStore(database_url)
    await store.start()
    await store.record(
        [make_record(f"r{i:02d}", name=f"p{i % 3}", privileged=i % 2 == 0, minutes=i) for i in range(12)]
    )
    app = web.Application()
    app.add_routes(read_api_routes(store, RULES_DIR, {"privileged_containers": EvidenceKind.ADMISSION}))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        yield c
    await store.stop()


async def test_verdicts_page_over_http(client: TestClient[web.Request, web.Application]) -> None:
    ids, cursor = [], None
    while True:
        resp = await client.get("/verdicts", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
        assert resp.status == 200 and resp.content_type == "application/json"
        page = await resp.json()
        ids += [v["evidence_id"] for v in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert ids == [f"r{i:02d}" for i in reversed(range(12))]
    denied = await (await client.get("/verdicts?decision=deny&namespace=shop")).json()
    assert {v["evidence_id"] for v in denied["items"]} == {f"r{i:02d}" for i in range(0, 12, 2)}
    assert all(v["violations"] for v in denied["items"])


async def test_findings_filter_over_http(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get(
        "/findings", params={"policy": "privileged_containers,host_ports", "status": "open"}
    )
    body = await resp.json()
    assert resp.status == 200
    # The latest verdicts: p0 at r09 and p2 at r11 are no longer privileged (resolved); p1 at r10 is.
    assert {f["subject_key"] for f in body["items"]} == {"shop/Pod/p1"}
    assert {f["policy"] for f in body["items"]} == {"privileged_containers"}


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/verdicts?limit=0", 400, "limit:"),
        ("/verdicts?decision=maybe", 400, "decision:"),
        ("/verdicts?since=yesterday", 400, "since:"),
        ("/verdicts?cursor=zzz", 400, "cursor:"),
        ("/findings?status=closed", 400, "status:"),
        ("/findings?colour=red", 400, "colour:"),
        ("/reports/compliance", 400, "framework: required"),
        ("/reports/compliance?framework=pss-baseline&format=pdf", 400, "format: unknown 'pdf'"),
        ("/reports/compliance?framework=iso-27001", 404, "no such framework"),
        ("/evidence/unknown", 404, "evidence: no such id"),
    ],
)
async def test_bad_requests_name_the_parameter(
    client: TestClient[web.Request, web.Application], path: str, status: int, says: str
) -> None:
    resp = await client.get(path)
    assert resp.status == status
    assert says in (await resp.json())["error"]


async def test_compliance_report_and_evidence_over_http(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/reports/compliance", params={"framework": "pss-baseline", "format": "csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = {r["control"]: r for r in csv.DictReader(io.StringIO(await resp.text()))}
    privileged = rows["pss-baseline:privileged-containers"]
    assert privileged["status"] == "fail" and privileged["scope"] == "shop"
    assert privileged["failing_resources"] == "shop/Pod/p1"
    assert privileged["evidence_ids"] == "r04;r10"
    page = await client.get("/reports/compliance?framework=pss-restricted&format=html&namespace=shop")
    assert page.status == 200 and page.content_type == "text/html"
    assert "<svg" in await page.text()
    raw = await client.get("/evidence/r03")
    assert raw.status == 200 and await raw.read() == b'{"doc": "r03"}'


async def test_one_verdict_by_its_evidence_id(client: TestClient[web.Request, web.Application]) -> None:
    """Where an alert's generatorURL points (actions.external_url + /verdicts/<id>)."""
    resp = await client.get("/verdicts/r04")
    assert resp.status == 200 and resp.content_type == "application/json"
    verdict = await resp.json()
    assert verdict["evidence_id"] == "r04" and verdict["decision"] == "deny"
    assert [v["policy"] for v in verdict["violations"] if v["enforcement"] == "deny"] == [
        "privileged_containers"
    ]
    assert verdict["actions"] == [] and verdict["actions_pending"] is False  # recorded without actions
    allowed = await (await client.get("/verdicts/r03")).json()
    assert allowed["evidence_id"] == "r03" and allowed["decision"] != "deny"
    missing = await client.get("/verdicts/unknown")
    assert missing.status == 404 and "no such evidence id" in (await missing.json())["error"]
