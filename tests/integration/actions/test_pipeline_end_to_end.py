"""The whole service wired as `tribunal serve` runs it, with the shipped response rules: a Trivy report
with a fixable critical CVE leads to its image being denied at admission. (A Falco alert on Kafka
acted on in the cluster runs on a real kube-apiserver: tests/e2e/test_actions_pipeline.py; the block
seen from the API server's side: tests/e2e/test_actions_rbac.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT, pod, review
from tests.integration.conftest import StartServer


async def _eventually(check: Any, what: str, attempts: int = 300) -> Any:
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_trivy_fixable_critical_cve_blocks_the_image_at_admission(
    start_server: StartServer, http, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(store=True, actions={"state_dir": tmp_path / "state"})
    report = (PROJECT / "examples" / "trivy" / "checkout-image.json").read_bytes()
    image = "ghcr.io/example/checkout:1.4.2"
    clean_pod = {
        "name": "app",
        "image": image,
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }

    async def admit(uid: str) -> dict[str, Any]:
        async with http.post(f"{server.url}/validate", json=review(pod(clean_pod), uid=uid)) as resp:
            answer: dict[str, Any] = (await resp.json())["response"]
        return answer

    assert (await admit("before"))["allowed"] is True
    async with http.post(
        f"{server.url}/ingest/trivy", data=report, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 202 and (await resp.json())["decision"] == "deny"

    attempt = 0

    async def blocked() -> dict[str, Any]:
        nonlocal attempt
        attempt += 1
        answer = await admit(f"after-{attempt}")
        return answer if answer["allowed"] is False else {}

    answer = await _eventually(blocked, "the image denied at admission")
    assert "[blocked_images]" in answer["status"]["message"]
    state = json.loads((tmp_path / "state" / "images.json").read_text())
    assert any("checkout" in key for key in json.dumps(state).split('"'))
