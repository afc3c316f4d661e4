"""`tribunal serve` and `tribunal consume` started while their PostgreSQL does not answer (the link
cut at a TCP proxy): neither exits. serve listens, answers /healthz and admission reviews, and
reports not ready naming the store; consume consumes nothing. Each failed attempt is logged with its
cause. Once the link is restored, serve is ready and records (the reviews answered meanwhile too),
and consume takes every message."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import pod, review
from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    eventually,
    fetch,
    http_status,
    kafka_settings,
    pg_fetch,
    tribunal_env,
    tribunal_process,
)
from tests.integration.conftest import free_port
from tests.integration.kafka_support import (
    committed_and_ends,
    create_topics,
    falco_alerts,
    produce,
    read_topic,
    unique,
)
from tests.integration.proxy import CuttableProxy
from tribunal.store import SqlStore, StoreError

pytestmark = pytest.mark.slow

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


def _attempts_logged(log: Path, count: int) -> bool:
    text = log.read_text()
    return all(f"does not answer (attempt {n})" in text for n in range(1, count + 1))


async def _logged(log: Path, count: int) -> bool:
    return _attempts_logged(log, count)


async def _validate(http: aiohttp.ClientSession, base: str, uid: str) -> dict[str, Any]:
    async with http.post(f"{base}/validate", json=review(pod(PRIVILEGED), uid=uid)) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = (await resp.json())["response"]
    return answer


@bounded(90)
async def test_serve_waits_for_its_database_not_ready_meanwhile_and_records_once_it_answers(
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    tls_pair: tuple[Path, Path],
    client_ssl: ssl.SSLContext,
    ledger: Callable[[FaultRow], None],
) -> None:
    url, direct, proxy = pg_through_proxy
    proxy.sever()  # the database is away before the server starts
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    env = tribunal_env(
        tmp_path,
        port=str(port),
        tls_cert_file=str(tls_pair[0]),
        tls_key_file=str(tls_pair[1]),
        database_url=url,
        shutdown_delay_seconds="0",
    )
    log = tmp_path / "serve.log"
    async with (
        tribunal_process("serve", env, log) as process,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl, force_close=True)) as http,
    ):

        async def readyz_answers() -> tuple[int, Any] | None:
            assert process.returncode is None, log.read_text()
            status, body = await http_status(http, f"{base}/readyz")
            return None if status is None else (status, body)

        status, body = await eventually(readyz_answers, "serve listening while its database is away")
        assert status == 503, body
        assert body["checks"]["store"].startswith("the database does not answer"), body
        assert body["checks"]["consumers"] == "ok", body  # nothing waits but the store itself
        assert (await http_status(http, f"{base}/healthz"))[0] == 200
        answer = await _validate(http, base, "during-outage")  # admission never waits for the store
        assert answer["allowed"] is False
        await eventually(lambda: _logged(log, 2), "two failed attempts logged, each with its cause")
        assert process.returncode is None
        async with http.get(f"{base}/verdicts") as resp:
            assert resp.status == 503  # the read API says the store is not there yet

        proxy.restore()

        async def ready() -> bool:
            assert process.returncode is None, log.read_text()
            return (await http_status(http, f"{base}/readyz"))[0] == 200

        await eventually(ready, "ready once the database answers")
        _, body = await http_status(http, f"{base}/readyz")
        assert body["checks"]["store"] == "ok", body
        assert (await _validate(http, base, "after-outage"))["allowed"] is False

        async def recorded() -> set[str]:
            ids = {r["evidence_id"] for r in await fetch(direct, "SELECT evidence_id FROM verdicts")}
            return ids if {"during-outage", "after-outage"} <= ids else set()

        assert await eventually(recorded, "both reviews recorded") == {"during-outage", "after-outage"}
        rows = await fetch(direct, "SELECT evidence_id FROM verdicts")
        ledger(
            FaultRow(
                fault="PostgreSQL unreachable when `tribunal serve` starts, then back",
                injected="the TCP proxy in front of the server cut before the start, restored after two "
                "failed attempts",
                in_="2 admission reviews (one during the outage, one after)",
                recorded=f"{len(rows)} verdicts, once the store answers (`/readyz` 503 naming the store "
                "meanwhile)",
                dead_lettered=None,
                actions=None,
                duplicates=len(rows) - len({r["evidence_id"] for r in rows}),
                lost=len({"during-outage", "after-outage"} - {r["evidence_id"] for r in rows}),
            )
        )
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await process.wait()
    text = log.read_text()
    assert process.returncode == 0, text
    waiting = text.split("connected to the database after")[0]
    assert "Traceback" not in waiting  # one line per attempt, with its cause:
    assert re.search(r"does not answer \(attempt 1\): \w+(Error|Exception)", waiting), waiting


@bounded(90)
async def test_consume_waits_for_its_database_and_consumes_once_it_answers(
    kafka_bootstrap: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    url, direct, proxy = pg_through_proxy
    proxy.sever()
    prefix = unique("nodb")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    alerts = falco_alerts(40)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    env = tribunal_env(
        tmp_path,
        database_url=url,
        **kafka_settings(kafka_bootstrap, prefix),
    )
    log = tmp_path / "consume.log"
    async with tribunal_process("consume", env, log) as process:

        async def waiting() -> bool:
            assert process.returncode is None, log.read_text()
            return _attempts_logged(log, 3) and "waiting for the database before consuming" in log.read_text()

        await eventually(waiting, "consume waiting, three failed attempts at the database logged")
        assert process.returncode is None
        assert await read_topic(kafka_bootstrap, f"{prefix}-verdicts") == []  # nothing consumed yet

        proxy.restore()

        async def consumed() -> bool:
            assert process.returncode is None, log.read_text()
            return len(await fetch(direct, "SELECT evidence_id FROM verdicts")) == len(alerts)

        await eventually(consumed, "every alert recorded once the database answers")
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await process.wait()
    assert process.returncode == 0, log.read_text()
    rows = await pg_fetch(direct, "SELECT evidence_id FROM verdicts")
    verdicts = await read_topic(kafka_bootstrap, f"{prefix}-verdicts")
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    ids = {r["evidence_id"] for r in rows}
    ledger(
        FaultRow(
            fault="PostgreSQL unreachable when `tribunal consume` starts, then back",
            injected="the TCP proxy cut before the start, restored after three failed attempts",
            in_=f"{len(alerts)} Falco alerts on Kafka",
            recorded=f"{len(ids)} verdicts; offsets committed "
            + ("to the end" if committed == ends else f"{committed} of {ends}"),
            dead_lettered=len(await read_topic(kafka_bootstrap, f"{prefix}-dlq")),
            actions=None,
            duplicates=len(rows) - len(ids),
            lost=len({i for _, i in alerts} - ids),
        )
    )
    assert sorted(r["evidence_id"] for r in rows) == sorted(i for _, i in alerts)
    assert {orjson.loads(m.value)["evidence_id"] for m in verdicts} == {i for _, i in alerts}
    assert committed == ends


@bounded(30)
async def test_a_store_waiting_for_its_database_connects_when_it_appears(tmp_path: Path) -> None:
    """SQLite in a folder that does not exist yet: not an error with ``wait_for_database``; the store
    reports why it is not connected, retries, and connects once the folder is there."""
    folder = tmp_path / "later"
    store = SqlStore(
        f"sqlite+aiosqlite:///{folder / 'tribunal.db'}", wait_for_database=True, connect_delays=(0.02,)
    )
    await store.start()
    try:
        assert not store.connected
        probe = store.probe()
        assert probe is not None and "does not answer" in probe and "OperationalError" in probe
        with pytest.raises(StoreError):
            await store.counts()
        folder.mkdir()
        async with asyncio.timeout(10):
            await store.wait_connected()
        assert store.connected and store.probe() is None
        assert (await store.counts())["verdicts"] == 0
    finally:
        await store.stop()
    assert not store.connected


@bounded(30)
async def test_a_misconfigured_store_fails_at_once_even_when_waiting(tmp_path: Path) -> None:
    store = SqlStore("mysql://nowhere/tribunal", wait_for_database=True)
    with pytest.raises(StoreError, match="unsupported database"):
        await store.start()
