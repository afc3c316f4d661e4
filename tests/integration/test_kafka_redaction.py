"""What Tribunal writes to Kafka is redacted as what it stores: the audit copy of each admission review,
the dead letters and the published verdicts carry no secret value (TRIBUNAL_EVIDENCE_REDACTION), on a
real server and a real broker (Tansu)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import orjson
import pytest

from tests.conftest import falco_alert, pod, review
from tests.integration.conftest import StartServer
from tests.integration.kafka_support import create_topics, produce, read_topic, unique
from tribunal.model.redact import MARKER
from tribunal.sources.kafka import H_REDACTED

SECRET = "hunter2-s3cr3t"
ENV_CONTAINER = {
    "name": "app",
    "image": "nginx:1.27",
    "env": [{"name": "DB_PASSWORD", "value": SECRET}, {"name": "MODE", "value": "prod"}],
}
SHELL_OUTPUT = f"Shell spawned: mysql -u root --password={SECRET} (user=root container=web)"


@pytest.mark.parametrize("redaction", ["secrets", "none"])
async def test_audit_copy_dead_letters_and_verdicts_carry_no_secret(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, kafka_bootstrap: str, redaction: str
) -> None:
    """With ``none`` (labs) everything is kept in clear: the same test sees the secret everywhere."""
    prefix = unique("redact")
    topics = {f"{prefix}-falco": 1, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1, f"{prefix}-audit": 1}
    await create_topics(kafka_bootstrap, topics)
    server, _ = await start_server(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=f"{prefix}-falco=falco",
        kafka_group_id=prefix,
        kafka_verdict_topic=f"{prefix}-verdicts",
        kafka_dlq_topic=f"{prefix}-dlq",
        kafka_audit_topic=f"{prefix}-audit",
        evidence_redaction=redaction,
    )
    body = json.dumps(review(pod(ENV_CONTAINER), uid="with-secret")).encode()
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{server.url}/validate", data=body, headers=headers) as resp:
        assert resp.status == 200
    judged = falco_alert(uuid="7b6f3c1e-1111-4a4a-9c9c-000000000042", output=SHELL_OUTPUT)
    unjudgeable = falco_alert(
        uuid="7b6f3c1e-1111-4a4a-9c9c-000000000043", output=SHELL_OUTPUT, priority="Loud"
    )
    await produce(kafka_bootstrap, f"{prefix}-falco", [orjson.dumps(judged), orjson.dumps(unjudgeable)])

    async def topic(name: str) -> list[object]:
        return await read_topic(kafka_bootstrap, f"{prefix}-{name}")

    for _ in range(300):  # a hang guard, not a speed assertion
        audit, letters, verdicts = await topic("audit"), await topic("dlq"), await topic("verdicts")
        if audit and letters and verdicts:
            break
        await asyncio.sleep(0.2)
    [copy], [letter], [verdict] = audit, letters, verdicts
    if redaction == "none":
        for message in (copy, letter, verdict):
            assert SECRET.encode() in message.value  # type: ignore[attr-defined]
        assert H_REDACTED not in dict(letter.headers)  # type: ignore[attr-defined]
        return
    env = orjson.loads(copy.value)["request"]["object"]["spec"]["containers"][0]["env"]  # type: ignore[attr-defined]
    assert env == [{"name": "DB_PASSWORD", "value": MARKER}, {"name": "MODE", "value": "prod"}]
    assert SECRET.encode() not in letter.value  # type: ignore[attr-defined]
    assert orjson.loads(letter.value)["output"] == SHELL_OUTPUT.replace(SECRET, MARKER)  # type: ignore[attr-defined]
    assert dict(letter.headers)[H_REDACTED] == b"secrets"  # type: ignore[attr-defined]
    quoted = orjson.loads(verdict.value)  # type: ignore[attr-defined]
    assert quoted["violations"], "the shell policy quotes the command line"
    assert SECRET.encode() not in verdict.value and MARKER in json.dumps(quoted["violations"])  # type: ignore[attr-defined]
