"""A PostgreSQL outage while `tribunal consume` takes Falco alerts from Kafka: the link to the
database is cut (a TCP proxy) while the response rules are alerting, and restored seconds later.
Every alert goes out exactly once per verdict, every verdict is recorded once, and every action's
outcome is recorded once: the actions that ran during the outage are settled when the database
returns (retried), and the outbox sweep never acts on them again."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    CountingReceiver,
    eventually,
    kafka_settings,
    pg_fetch,
    rules_with,
    tribunal_env,
    tribunal_process,
)
from tests.integration.conftest import free_port
from tests.integration.kafka_support import create_topics, falco_alerts, produce, read_topic, unique
from tests.integration.proxy import CuttableProxy

pytestmark = pytest.mark.slow

ALERTS = 300
CUT_AT = 20  # the link is cut as this alert arrives: its chunk has acted and not yet settled
OUTAGE = 3.0  # seconds the database stays away: three outbox grace periods
GRACE = 1.0
DENY_ALERTS = (
    "rules:\n  - name: every-deny\n    match: {kinds: [falco], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: alert, target: webhook}]\n"
)


async def _metric(http: aiohttp.ClientSession, port: int, name: str) -> float:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


@bounded(150)
async def test_a_database_outage_during_consumption_takes_every_action_exactly_once(
    kafka_bootstrap: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    url, direct, proxy = pg_through_proxy
    prefix = unique("outage")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    alerts = falco_alerts(ALERTS)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])

    def cut(received: int) -> None:
        if received == CUT_AT:
            proxy.sever()

    receiver = CountingReceiver(on_alert=cut)
    await receiver.start()
    metrics_port = free_port()
    env = tribunal_env(
        tmp_path,
        database_url=url,
        rules_dir=str(rules_with(tmp_path, DENY_ALERTS)),
        **kafka_settings(kafka_bootstrap, prefix),
        actions__webhook_url=receiver.url,
        actions__outbox_grace_seconds=str(GRACE),
    )
    log = tmp_path / "consume.log"
    try:
        async with (
            tribunal_process("consume", env, log, "--metrics-port", str(metrics_port)) as process,
            aiohttp.ClientSession() as http,
        ):
            await eventually(
                lambda: _true(proxy.cut or process.returncode is not None), "the link cut mid-stream"
            )
            assert process.returncode is None, log.read_text()
            await asyncio.sleep(OUTAGE)  # the outage: longer than the outbox grace, on purpose
            proxy.restore()

            async def all_done() -> bool:
                assert process.returncode is None, log.read_text()
                [(verdicts, pending)] = await pg_fetch(
                    direct, "SELECT (SELECT count(*) FROM verdicts), (SELECT count(*) FROM pending_actions)"
                )
                return verdicts == ALERTS and pending == 0

            await eventually(all_done, "every alert recorded and its actions settled", seconds=120)
            sweeps = await _metric(http, metrics_port, 'tribunal_outbox_sweeps_total{result="ok"}')

            async def swept_again() -> bool:  # the sweep had its chance to act again
                return (
                    await _metric(http, metrics_port, 'tribunal_outbox_sweeps_total{result="ok"}')
                    >= sweeps + 3
                )

            await eventually(swept_again, "three more passes of the outbox sweep")
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await process.wait()
    finally:
        await receiver.stop()

    text = log.read_text()
    assert process.returncode == 0, text
    verdicts = await pg_fetch(direct, "SELECT evidence_id, decision FROM verdicts")
    denied = {row["evidence_id"] for row in verdicts if row["decision"] == "deny"}
    outcomes = await pg_fetch(direct, "SELECT evidence_id, status FROM action_outcomes")
    dead = await read_topic(kafka_bootstrap, f"{prefix}-dlq")
    recorded_ids = {r["evidence_id"] for r in verdicts}
    ledger(
        FaultRow(
            fault="PostgreSQL link cut during Kafka consumption, restored after "
            f"{OUTAGE:g} s (three outbox grace periods)",
            injected=f"a TCP proxy in front of the real server, cut as the {CUT_AT}th alert arrives",
            in_=f"{ALERTS} Falco alerts on Kafka (`tribunal consume`)",
            recorded=f"{len(recorded_ids)} verdicts ({len(verdicts) - len(recorded_ids)} twice)",
            dead_lettered=len(dead),
            actions=f"{sum(receiver.received.values())} alerts received for {len(denied)} denies; "
            f"{len(outcomes)} outcomes recorded",
            duplicates=sum(n - 1 for n in receiver.duplicates.values()),
            lost=len({i for _, i in alerts} - recorded_ids) + len(denied - set(receiver.received)),
        )
    )
    assert len(verdicts) == ALERTS and {r["evidence_id"] for r in verdicts} == {i for _, i in alerts}
    assert len(denied) > CUT_AT
    assert receiver.duplicates == {}, f"{len(receiver.duplicates)} alerts sent more than once"
    assert set(receiver.received) == denied  # every deny alerted, exactly once
    assert sorted(r["evidence_id"] for r in outcomes) == sorted(denied)  # each outcome recorded once
    assert {r["status"] for r in outcomes} == {"success"}
    assert "retrying" in text  # the settle that failed during the outage was tried again


async def _true(value: bool) -> bool:
    return value
