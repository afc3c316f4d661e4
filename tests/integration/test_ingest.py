"""HTTP ingest over real HTTPS: every shared Falco alert and Trivy report is accepted (202 with its
evidence id) and recorded; bad documents get 400 naming the field; a bearer token can be required;
a large Trivy report, judged in a worker process, does not hold up admissions on the same server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import orjson

from tests.conftest import FIXTURES, needs_shared, pod, review
from tests.integration.conftest import StartServer
from tribunal.model import EvidenceKind
from tribunal.sources import expand_paths, read_evidence

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
SHELL_ALERT = {
    "time": "2024-05-01T10:00:00.000000000Z",
    "rule": "Terminal shell in container",
    "priority": "Notice",
    "source": "syscall",
    "output": "A shell was spawned in a container (user=root shell=bash container_id=abc)",
    "output_fields": {
        "proc.name": "bash",
        "k8s.ns.name": "payments",
        "k8s.pod.name": "web-1",
        "container.id": "abc",
    },
    "tags": ["container", "shell"],
    "uuid": "11111111-2222-3333-4444-555555555555",
}


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes, **headers: str
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **headers}
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def _documents(folder: str, kind: EvidenceKind) -> list[bytes]:
    docs = []
    for path in expand_paths([str(FIXTURES / folder)]):
        for item in read_evidence(path, kind):
            assert not isinstance(item, Exception), item
            docs.append(orjson.dumps(item.event()))
    return docs


@needs_shared
async def test_every_shared_falco_alert_and_trivy_report_is_accepted_and_recorded(  # type: ignore[no-untyped-def]
    start_server: StartServer, http
) -> None:
    server, recorder = await start_server()
    accepted: dict[str, str] = {}
    for kind, folder in ((EvidenceKind.FALCO, "falco"), (EvidenceKind.TRIVY, "trivy")):
        for body in _documents(folder, kind):
            status, answer = await _post(http, f"{server.url}/ingest/{kind.value}", body)
            assert status == 202, answer
            assert answer["kind"] == kind.value and answer["decision"] in {"allow", "warn", "deny"}
            accepted[answer["id"]] = answer["decision"]
    assert len(accepted) >= 35 + 40  # a few samples repeat the same document (same id)
    recorded = {r.evidence.id: r.verdict.decision.value for r in await recorder.wait_for(len(accepted))}
    assert recorded == accepted


@needs_shared
async def test_trivy_operator_yaml_is_accepted_as_yaml(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    body = (FIXTURES / "trivy" / "operator-configauditreport-nginx-docs.yaml").read_bytes()
    status, answer = await _post(
        http, f"{server.url}/ingest/trivy", body, **{"Content-Type": "application/yaml"}
    )
    assert status == 202, answer


async def test_bad_documents_get_400_naming_the_problem(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server()
    falco = f"{server.url}/ingest/falco"
    cases = {
        "empty": (falco, b""),
        "not json": (falco, b"{nope"),
        "admission review to the falco endpoint": (falco, json.dumps(review(pod(PRIVILEGED))).encode()),
        "bad priority": (falco, json.dumps({**SHELL_ALERT, "priority": "Apocalyptic"}).encode()),
        "falco alert to the trivy endpoint": (f"{server.url}/ingest/trivy", json.dumps(SHELL_ALERT).encode()),
        "bad yaml": (f"{server.url}/ingest/trivy", b"a: [b"),
    }
    for name, (url, body) in cases.items():
        content_type = "application/yaml" if name == "bad yaml" else "application/json"
        status, error = await _post(http, url, body, **{"Content-Type": content_type})
        assert status == 400, name
        assert error["error"], name
    status, error = await _post(http, falco, json.dumps({**SHELL_ALERT, "priority": "Apocalyptic"}).encode())
    assert error.get("field") == "priority"
    status, answer = await _post(http, falco, json.dumps(SHELL_ALERT).encode())
    assert status == 202 and answer["id"] == SHELL_ALERT["uuid"] and answer["decision"] == "deny"
    assert [r.evidence.id for r in await recorder.wait_for(1)] == [SHELL_ALERT["uuid"]]


@needs_shared
async def test_a_large_trivy_report_does_not_hold_up_admissions(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    # Admissions judged on the loop (as when this test was written): with the pool they would queue
    # behind the report in the one worker, and the test would time the worker, not the loop.
    server, _ = await start_server(judge_workers=1, webhook_judge="inline")
    big = (FIXTURES / "trivy" / "k8s-cluster-scan-local-large.json").read_bytes()
    order: list[str] = []

    async def ingest_big() -> None:
        status, _ = await _post(http, f"{server.url}/ingest/trivy", big)
        assert status == 202
        order.append("trivy")

    async def admissions() -> None:
        for i in range(5):
            status, answer = await _post(
                http, f"{server.url}/validate", json.dumps(review(pod(PRIVILEGED), uid=f"adm-{i}")).encode()
            )
            assert status == 200 and answer["response"]["allowed"] is False
            order.append("admission")

    big_task = asyncio.create_task(ingest_big())
    await asyncio.sleep(0)  # the report is on its way first
    await asyncio.gather(admissions(), big_task)
    # The report is parsed and judged in the worker while the loop keeps answering admissions.
    assert order.index("trivy") >= 3, order
