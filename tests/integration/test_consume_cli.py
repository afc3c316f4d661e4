"""`tribunal consume` as its own process: consumes, and on SIGTERM finishes, commits and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR, needs_shared
from tests.integration.conftest import free_port
from tests.integration.kafka_support import (
    committed_and_ends,
    create_topics,
    falco_alerts,
    produce,
    read_topic,
    unique,
)

pytestmark = [pytest.mark.slow, needs_shared]


async def test_consume_stops_gracefully_on_sigterm(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("cli")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    alerts = falco_alerts(50)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts] + [b"not json"])
    env = {
        **os.environ,
        "TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TRIBUNAL_KAFKA_TOPICS": f"{prefix}-falco=falco",
        "TRIBUNAL_KAFKA_GROUP_ID": f"{prefix}-group",
        "TRIBUNAL_KAFKA_VERDICT_TOPIC": f"{prefix}-verdicts",
        "TRIBUNAL_KAFKA_DLQ_TOPIC": f"{prefix}-dlq",
        "TRIBUNAL_POLICY_DIR": str(POLICY_DIR),
        "TRIBUNAL_RULES_DIR": str(RULES_DIR),
        "TRIBUNAL_JUDGE_WORKERS": "1",
        "TRIBUNAL_HOST": "127.0.0.1",
        "TRIBUNAL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}",
        "TRIBUNAL_ACTIONS__STATE_DIR": str(tmp_path / "state"),
    }
    log_path = tmp_path / "consume.log"
    metrics_port = free_port()
    processed = 'tribunal_evidence_processed_total{kind="falco",source="kafka"}'
    dead = 'tribunal_evidence_dead_lettered_total{kind="falco",source="kafka"}'
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tribunal.cli",
            "consume",
            "--metrics-port",
            str(metrics_port),
            env=env,
            cwd=PROJECT,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        verdicts: list[Any] = []
        while len(verdicts) < len(alerts) and process.returncode is None:
            verdicts = await read_topic(kafka_bootstrap, f"{prefix}-verdicts")
        assert process.returncode is None, log_path.read_text()
        async with aiohttp.ClientSession() as http:
            for _ in range(600):  # verdicts are published before they are recorded and counted
                text = await scrape(http, metrics_port)
                if f"{processed} {len(alerts)}.0" in text:
                    break
                await asyncio.sleep(0.1)
        assert f"{dead} 1.0" in text
        assert 'tribunal_kafka_consumer_lag{partition="0"' in text
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = log_path.read_text()
    assert process.returncode == 0, stderr
    assert "kafka consumer stopped" in stderr
    assert {orjson.loads(m.value)["evidence_id"] for m in verdicts} == {i for _, i in alerts}
    with sqlite3.connect(tmp_path / "tribunal.db") as db:  # recorded in the store, each once
        recorded = {row[0] for row in db.execute("SELECT evidence_id FROM verdicts")}
        assert db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == len(alerts)
    assert recorded == {i for _, i in alerts}
    assert len(await read_topic(kafka_bootstrap, f"{prefix}-dlq")) == 1
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert committed == ends


async def scrape(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        return await response.text()
