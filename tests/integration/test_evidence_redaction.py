"""Secrets never reach the store in clear: a real Tribunal server (HTTPS on loopback) recording into
SQLite and PostgreSQL judges evidence holding secrets, and the raw evidence read back through
``GET /evidence/{id}`` holds markers where the secrets were and everything else as it came; the
policies still judged the whole document. ``TRIBUNAL_EVIDENCE_REDACTION=none`` keeps it all."""

from __future__ import annotations

import asyncio
import base64
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import POLICY_DIR, falco_alert, pod, review, trivy_report
from tests.integration.conftest import StartServer
from tribunal.model import parse_evidence
from tribunal.model.redact import LAST_APPLIED, MARKER, Redaction
from tribunal.policy import Judge
from tribunal.store import Record, SqlStore, VerdictQuery
from tribunal.store.write import LARGE_BODY

PASSWORD = "hunter2-Sup3r-s3cret"
B64 = base64.b64encode(PASSWORD.encode()).decode()

# A policy that reads a Secret's value: it can only fire if the policies see the review unredacted.
PROBE = f"""package tribunal.admission.secret_value_probe

import rego.v1

violations contains v if {{
	input.event.request.object.kind == "Secret"
	input.event.request.object.data.password == "{B64}"
	v := {{"msg": "the Secret holds the test's password", "severity": "high", "controls": [], "details": {{}}}}
}}
"""


def _secret() -> dict[str, Any]:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
        "type": "Opaque",
        "data": {"password": B64},
        "stringData": {"token": PASSWORD},
    }
    applied = orjson.dumps({k: v for k, v in secret.items() if k != "metadata"}).decode()
    secret["metadata"]["annotations"] = {LAST_APPLIED: applied, "team": "payments"}  # type: ignore[index]
    return secret


def _pod() -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "registry.k8s.io/app:1.0",
        "env": [
            {"name": "DB_PASSWORD", "value": PASSWORD},
            {"name": "LOG_LEVEL", "value": "debug"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ],
        "args": [f"--api-key={PASSWORD}", "--port=8080"],
    }
    obj = pod(container, name="api")
    obj["metadata"]["namespace"] = "shop"
    return obj


def _falco() -> dict[str, Any]:
    alert = falco_alert(
        uuid="9b1d0000-0000-4000-8000-00000000f001",
        priority="Critical",
        output=f"Shell spawned (user=root cmdline=mysql -uroot -p{PASSWORD} shop)",
    )
    alert["output_fields"]["proc.cmdline"] = f"mysql -uroot -p{PASSWORD} shop"
    return alert


def _trivy() -> dict[str, Any]:
    report = trivy_report({"VulnerabilityID": "CVE-2024-1", "PkgName": "openssl", "Severity": "LOW"})
    report["Results"].append(
        {
            "Target": "/app/.env",
            "Class": "secret",
            "Secrets": [
                {
                    "RuleID": "github-pat",
                    "Category": "GitHub",
                    "Severity": "CRITICAL",
                    "Title": "GitHub Personal Access Token",
                    "StartLine": 1,
                    "EndLine": 1,
                    "Match": f"GITHUB_PAT={PASSWORD}",
                    "Code": {"Lines": [{"Number": 1, "Content": f"GITHUB_PAT={PASSWORD}", "IsCause": True}]},
                }
            ],
        }
    )
    return report


async def _send(http: aiohttp.ClientSession, url: str, path: str, doc: dict[str, Any]) -> Any:
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{url}{path}", data=orjson.dumps(doc), headers=headers) as resp:
        assert resp.status in (200, 202), await resp.text()
        return await resp.json(content_type=None)


async def _evidence(http: aiohttp.ClientSession, url: str, evidence_id: str) -> bytes:
    """The raw evidence as stored; waits for it (the webhook records in the background)."""
    for _ in range(250):
        async with http.get(f"{url}/evidence/{evidence_id}") as resp:
            if resp.status == 200:
                return await resp.read()
            assert resp.status == 404, await resp.text()
        await asyncio.sleep(0.02)
    raise AssertionError(f"evidence {evidence_id} was never recorded")


async def _record_everything(
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path, **settings: Any
) -> tuple[dict[str, bytes], dict[str, Any], bytes]:
    """Start a server with the project's policies and the probe, send one of each evidence holding
    the secret; the raw evidence stored for each, the answers, and every verdict as the API lists it."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    (policies / "admission" / "secret_value_probe.rego").write_text(PROBE)
    server, _ = await start_server(store=True, policy_dir=policies, **settings)
    answers = {
        "secret": await _send(
            http, server.url, "/validate", review(_secret(), uid="sec-1", namespace="shop")
        ),
        "pod": await _send(http, server.url, "/validate", review(_pod(), uid="pod-1", namespace="shop")),
        "falco": await _send(http, server.url, "/ingest/falco", _falco()),
        "trivy": await _send(http, server.url, "/ingest/trivy", _trivy()),
    }
    ids = {
        "secret": "sec-1",
        "pod": "pod-1",
        "falco": answers["falco"]["id"],
        "trivy": answers["trivy"]["id"],
    }
    stored = {name: await _evidence(http, server.url, evidence_id) for name, evidence_id in ids.items()}
    async with http.get(f"{server.url}/verdicts", params={"limit": 100}) as resp:
        assert resp.status == 200
        verdicts = await resp.read()
    return stored, answers, verdicts


async def test_secrets_are_redacted_before_they_are_stored(
    start_server: StartServer, http: aiohttp.ClientSession, database_url: str, tmp_path: Path
) -> None:
    stored, answers, verdicts = await _record_everything(
        start_server, http, tmp_path, database_url=database_url
    )
    for name, raw in stored.items():
        assert PASSWORD.encode() not in raw and B64.encode() not in raw, name
        assert MARKER.encode() in raw, name
    assert PASSWORD.encode() not in verdicts  # violation details quote the Falco command line

    # The policies judged the review whole: the probe read the Secret's value and denied.
    assert answers["secret"]["response"]["allowed"] is False
    assert "the Secret holds the test's password" in answers["secret"]["response"]["status"]["message"]

    secret = orjson.loads(stored["secret"])["request"]["object"]
    assert secret["data"] == {"password": MARKER} and secret["stringData"] == {"token": MARKER}
    assert (
        secret["metadata"]["labels"] == {"app": "db"}
        and secret["metadata"]["annotations"]["team"] == "payments"
    )
    assert orjson.loads(secret["metadata"]["annotations"][LAST_APPLIED])["data"] == {"password": MARKER}

    container = orjson.loads(stored["pod"])["request"]["object"]["spec"]["containers"][0]
    expected = _pod()["spec"]["containers"][0]
    expected["env"][0]["value"] = MARKER
    expected["args"][0] = f"--api-key={MARKER}"
    assert container == expected  # LOG_LEVEL, the reference, the image: all as they came

    alert = orjson.loads(stored["falco"])
    assert alert["output_fields"]["proc.cmdline"] == f"mysql -uroot -p{MARKER} shop"
    assert {k: v for k, v in alert.items() if k not in ("output", "output_fields")} == {
        k: v for k, v in _falco().items() if k not in ("output", "output_fields")
    }
    assert answers["falco"]["decision"] == "deny"

    report = orjson.loads(stored["trivy"])
    finding = report["Results"][1]["Secrets"][0]
    assert finding["Match"] == MARKER and finding["Code"]["Lines"][0]["Content"] == MARKER
    assert (finding["RuleID"], finding["Severity"], finding["StartLine"]) == ("github-pat", "CRITICAL", 1)
    assert report["Results"][0] == _trivy()["Results"][0]
    assert answers["trivy"]["decision"] == "deny"  # the exposed secret, judged before redaction


async def test_none_keeps_the_evidence_in_clear(
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    stored, _, _ = await _record_everything(start_server, http, tmp_path, evidence_redaction="none")
    assert orjson.loads(stored["secret"]) == review(_secret(), uid="sec-1", namespace="shop")
    assert orjson.loads(stored["pod"]) == review(_pod(), uid="pod-1", namespace="shop")
    assert orjson.loads(stored["falco"]) == _falco()
    assert orjson.loads(stored["trivy"]) == _trivy()
    assert all(MARKER.encode() not in raw for raw in stored.values())


async def test_a_large_report_is_redacted_through_the_store_api(database_url: str, judge: Judge) -> None:
    """A body above LARGE_BODY (redacted in a thread) and a small one, recorded with SqlStore.record and
    read back with get_evidence; the store's default is ``secrets``."""
    large = _trivy()
    vulnerabilities = [
        {"VulnerabilityID": f"CVE-2024-{i}", "PkgName": f"pkg-{i}", "Severity": "LOW", "Title": "x" * 200}
        for i in range(1200)
    ]
    large["Results"][0]["Vulnerabilities"] = vulnerabilities
    records = []
    for doc in (large, _falco()):
        raw = orjson.dumps(doc)
        evidence = parse_evidence(orjson.loads(raw), "test")
        records.append(Record(evidence, judge.judge(evidence), raw))
    assert len(records[0].raw or b"") > LARGE_BODY > len(records[1].raw or b"")
    async with SqlStore(database_url) as store:
        assert store.redaction is Redaction.SECRETS
        await store.record(records)
        for record in records:
            found = await store.get_evidence(record.evidence_id)
            assert found is not None and found.raw is not None
            assert PASSWORD.encode() not in found.raw and MARKER.encode() in found.raw
        stored = await store.get_evidence(records[0].evidence_id)
        assert stored is not None and stored.raw is not None
        assert orjson.loads(stored.raw)["Results"][0]["Vulnerabilities"] == vulnerabilities
        page = await store.verdicts(VerdictQuery(limit=10))
        assert len(page.items) == 2
        assert all(PASSWORD not in orjson.dumps(v.model_dump(mode="json")).decode() for v in page.items)
