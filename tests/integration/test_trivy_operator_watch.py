"""TRIBUNAL_TRIVY_OPERATOR_WATCH: `tribunal serve` lists and watches the Trivy Operator's report
resources through kubernetes-asyncio, against the test Kubernetes API server (tests/kube_api.py,
which streams watch events as the API server does; no API server can be installed here). Every
report is judged and recorded once per content: added, modified, listed again after the watch
expired (410) or failed (500)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import StartServer
from tests.kube_api import TestApiServer


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


CONFIG_AUDIT = {
    "apiVersion": "aquasecurity.github.io/v1alpha1",
    "kind": "ConfigAuditReport",
    "metadata": {
        "name": "replicaset-web-7d9f",
        "namespace": "shop",
        "labels": {"trivy-operator.resource.kind": "ReplicaSet", "trivy-operator.resource.name": "web-7d9f"},
    },
    "report": {
        "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.50.0"},
        "summary": {"highCount": 1},
        "checks": [
            {
                "checkID": "KSV017",
                "title": "Privileged container",
                "severity": "HIGH",
                "success": False,
                "messages": ["Container 'app' should set 'securityContext.privileged' to false"],
            }
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


async def test_reports_are_judged_when_listed_added_and_modified_and_once_after_a_relist(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, kube_api: TestApiServer, tmp_path: Path
) -> None:
    kube_api.put_report("vulnerabilityreports", vulnerability_report("web", "CVE-2024-0001"))
    kube_api.put_report("vulnerabilityreports", vulnerability_report("cart"))
    kube_api.put_report("configauditreports", CONFIG_AUDIT)
    db = tmp_path / "watch.db"
    server, _ = await start_server(
        store=True,
        database_url=f"sqlite+aiosqlite:///{db}",
        trivy_operator_watch=["vulnerabilityreports", "configauditreports"],
        actions={"state_dir": tmp_path / "state", "kube_api_url": kube_api.url},
    )
    listed = await wait_recorded(db, 3)
    assert len(listed) == 3, listed
    assert any("configauditreports" in s and "shop/replicaset-web-7d9f" in s for s in listed)

    kube_api.put_report("vulnerabilityreports", vulnerability_report("cart", "CVE-2024-0002"))  # MODIFIED
    kube_api.put_report("vulnerabilityreports", vulnerability_report("search", "CVE-2024-0003"))  # ADDED
    watched = await wait_recorded(db, 5)
    assert len(watched) == 5, watched

    # The watch ends, a report is added and the history compacted: resuming is refused (410), so
    # the watch lists again; four of the reports it finds are on record already, the new one is not.
    kube_api.end_watches()
    kube_api.put_report("vulnerabilityreports", vulnerability_report("checkout", "CVE-2024-0004"))
    kube_api.compact()
    after_relist = await wait_recorded(db, 6)
    assert len(after_relist) == 6, after_relist
    assert (
        await metric(
            http, server.url, 'tribunal_watch_events_total{event="LISTED",resource="vulnerabilityreports"}'
        )
        >= 6
    )

    # The API server fails the next request: counted, listed again after a backoff, nothing missed.
    kube_api.fail("GET", r"/vulnerabilityreports$", 500)
    kube_api.end_watches()
    kube_api.put_report("vulnerabilityreports", vulnerability_report("payments", "CVE-2024-0005"))
    final = await wait_recorded(db, 7)
    assert len(final) == 7, final
    assert len(set(final)) == 7
    errors = 'tribunal_watch_errors_total{cause="api",resource="vulnerabilityreports"}'
    assert await metric(http, server.url, errors) == 1.0
    await asyncio.sleep(0.3)  # nothing else arrives: each content was recorded once
    assert len(recorded(db)) == 7
    with sqlite3.connect(db) as conn:
        decisions = dict(
            conn.execute(
                "SELECT e.source, v.decision FROM evidence e JOIN verdicts v ON v.evidence_id = e.id"
                " WHERE e.kind = 'trivy'"
            ).fetchall()
        )
    web = next(d for s, d in decisions.items() if "shop/web@" in s)
    assert web == "deny"  # a fixable critical CVE (fixable_critical_high_cves)


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
