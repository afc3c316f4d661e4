"""TRIBUNAL_TRIVY_OPERATOR_WATCH under the faults a real API server cannot be made to produce on
demand, against the test Kubernetes API server (tests/kube_api.py, which streams watch events as the
API server does): a watch refused as too old (410 Gone, after etcd's compaction), a listing that
fails (500), an API server it cannot reach, no cluster configuration. Listing, adding, changing,
Tribunal and API server restarts run against the real kube-apiserver in
tests/e2e/test_trivy_operator_watch.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import StartServer
from tests.kube_api import TestApiServer
from tribunal.server import Server


def vulnerability_report(name: str, *cves: str, namespace: str = "shop") -> dict[str, Any]:
    """A VulnerabilityReport as the Trivy Operator writes it, with a fixable critical CVE each."""
    return {
        "apiVersion": "aquasecurity.github.io/v1alpha1",
        "kind": "VulnerabilityReport",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "trivy-operator.resource.kind": "ReplicaSet",
                "trivy-operator.resource.name": f"{name}-7d9f",
                "trivy-operator.resource.namespace": namespace,
                "trivy-operator.container.name": "app",
            },
        },
        "report": {
            "artifact": {"repository": f"shop/{name}", "tag": "1.0"},
            "registry": {"server": "registry.example.com"},
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.50.0"},
            "summary": {"criticalCount": len(cves)},
            "vulnerabilities": [
                {
                    "vulnerabilityID": cve,
                    "resource": "openssl",
                    "installedVersion": "3.0.1",
                    "fixedVersion": "3.0.7",
                    "severity": "CRITICAL",
                    "title": f"{cve} in openssl",
                }
                for cve in cves
            ],
        },
    }


def recorded(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            row[0] for row in conn.execute("SELECT source FROM evidence WHERE kind = 'trivy' ORDER BY source")
        ]


async def wait_recorded(db: Path, count: int) -> list[str]:
    for _ in range(400):
        if db.exists() and len(found := recorded(db)) >= count:
            return found
        await asyncio.sleep(0.05)
    return recorded(db) if db.exists() else []


async def metric(http: aiohttp.ClientSession, url: str, prefix: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


async def started_watching(
    start_server: StartServer, kube_api: TestApiServer, tmp_path: Path, *names: str
) -> tuple[Server, Path]:
    """Tribunal watching vulnerabilityreports of ``kube_api``, the reports ``names`` listed and recorded."""
    for name in names:
        kube_api.put_report("vulnerabilityreports", vulnerability_report(name, f"CVE-2024-{name}"))
    db = tmp_path / "watch.db"
    server, _ = await start_server(
        store=True,
        database_url=f"sqlite+aiosqlite:///{db}",
        trivy_operator_watch=["vulnerabilityreports"],
        actions={"state_dir": tmp_path / "state", "kube_api_url": kube_api.url},
    )
    listed = await wait_recorded(db, len(names))
    assert len(listed) == len(names), listed
    return server, db


async def test_a_watch_refused_as_too_old_lists_again_and_records_only_what_is_new(
    start_server: StartServer, http: aiohttp.ClientSession, kube_api: TestApiServer, tmp_path: Path
) -> None:
    # A real API server answers 410 only once etcd compacted past the watch's resourceVersion (or
    # its watch cache moved on): not something a test can bring about when it wants.
    server, db = await started_watching(start_server, kube_api, tmp_path, "web", "cart")
    listed = 'tribunal_watch_events_total{event="LISTED",resource="vulnerabilityreports"}'
    assert await metric(http, server.url, listed) == 2

    # The watch ends, a report is added and the history compacted: resuming is refused (410), so
    # the watch lists again; the two reports on record already are not recorded again, the new one is.
    kube_api.end_watches()
    kube_api.put_report("vulnerabilityreports", vulnerability_report("checkout", "CVE-2024-0004"))
    kube_api.compact()
    after_relist = await wait_recorded(db, 3)
    assert len(after_relist) == 3, after_relist
    assert any("shop/checkout@" in s for s in after_relist)
    assert await metric(http, server.url, listed) == 5  # listed again: web, cart and checkout
    errors = "tribunal_watch_errors_total{"
    assert await metric(http, server.url, errors) == 0.0  # a 410 is no failure

    kube_api.put_report("vulnerabilityreports", vulnerability_report("search", "CVE-2024-0005"))
    final = await wait_recorded(db, 4)  # watching again from the new listing
    assert len(final) == 4 and len(set(final)) == 4, final


async def test_a_failed_request_is_counted_and_listed_again_after_a_backoff_nothing_missed(
    start_server: StartServer, http: aiohttp.ClientSession, kube_api: TestApiServer, tmp_path: Path
) -> None:
    # A real API server cannot be made to answer 500 to one chosen request.
    server, db = await started_watching(start_server, kube_api, tmp_path, "web")
    kube_api.fail("GET", r"/vulnerabilityreports$", 500)
    kube_api.end_watches()
    kube_api.put_report("vulnerabilityreports", vulnerability_report("payments", "CVE-2024-0005"))
    final = await wait_recorded(db, 2)
    assert len(final) == 2, final
    errors = 'tribunal_watch_errors_total{cause="api",resource="vulnerabilityreports"}'
    assert await metric(http, server.url, errors) == 1.0
    kube_api.put_report("vulnerabilityreports", vulnerability_report("search", "CVE-2024-0006"))
    assert len(await wait_recorded(db, 3)) == 3  # each content recorded once, the watch on again
    assert len(recorded(db)) == 3
    with sqlite3.connect(db) as conn:
        decisions = dict(
            conn.execute(
                "SELECT e.source, v.decision FROM evidence e JOIN verdicts v ON v.evidence_id = e.id"
                " WHERE e.kind = 'trivy'"
            ).fetchall()
        )
    assert {d for s, d in decisions.items() if "shop/payments@" in s} == {"deny"}  # fixable critical CVE


async def test_a_cluster_it_cannot_reach_is_reported_not_fatal(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server, _ = await start_server(
        store=True,
        trivy_operator_watch=["vulnerabilityreports"],
        actions={"state_dir": tmp_path / "state", "kube_api_url": "http://127.0.0.1:9"},
    )
    for _ in range(200):
        async with http.get(f"{server.url}/readyz") as resp:
            body = await resp.json()
        if "trivy-operator-watch" in body["checks"] and body["checks"]["trivy-operator-watch"] != "ok":
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200  # still ready: admissions do not depend on the watch
    assert body["checks"]["trivy-operator-watch"].startswith("vulnerabilityreports: ")
    assert await metric(http, server.url, "tribunal_watch_errors_total{") >= 1


async def test_no_cluster_configuration_is_reported_and_retried_not_fatal(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    server, _ = await start_server(
        store=True,
        trivy_operator_watch=["configauditreports"],
        actions={"state_dir": tmp_path / "state", "kubeconfig": tmp_path / "absent-kubeconfig"},
    )
    for _ in range(200):
        async with http.get(f"{server.url}/readyz") as resp:
            checks = (await resp.json())["checks"]
        if checks.get("trivy-operator-watch", "ok") != "ok":
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200
    assert "no usable configuration" in checks["trivy-operator-watch"]
    errors = 'tribunal_watch_errors_total{cause="connection",resource="configauditreports"}'
    assert await metric(http, server.url, errors) >= 1
