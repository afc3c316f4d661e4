"""`kill -9` of a real `tribunal consume` process mid-stream: Falco alerts on Kafka, PostgreSQL as the
store, an alert per deny to a counting receiver. The process is killed with SIGKILL once about a third
of the stream is recorded, and restarted in the same consumer group on the same database. Every
message gets exactly one verdict, every deny exactly one alert, except in the window the docs name:
a verdict whose alert had gone out but whose settle had not reached the store when the process died
is alerted again (at least once). The test measures that window at the kill and fails on any
duplicate outside it, and on any loss."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    CountingReceiver,
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

ALERTS = 200
KILL_AT = 70  # verdicts recorded when the process is killed
DENY_ALERTS = (
    "rules:\n  - name: every-deny\n    match: {kinds: [falco], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: alert, target: webhook}]\n"
)


@bounded(150)
async def test_consume_killed_mid_stream_and_restarted_records_each_message_once_and_alerts_each_deny_once(
    kafka_bootstrap: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    _, direct, _ = pg_through_proxy  # the database directly: no link is cut here
    prefix = unique("killconsume")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    alerts = falco_alerts(ALERTS)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    receiver = CountingReceiver()
    await receiver.start()
    env = tribunal_env(
        tmp_path,
        database_url=direct,
        rules_dir=str(rules_with(tmp_path, DENY_ALERTS)),
        **kafka_settings(kafka_bootstrap, prefix),
        kafka_batch_size="20",  # many small batches: the kill lands between two of them or inside one
        actions__webhook_url=receiver.url,
        actions__outbox_grace_seconds="1",
    )
    log = tmp_path / "consume.log"

    async def count(sql: str) -> int:
        rows = await fetch(direct, sql)  # nothing before the first process made the tables
        return int(rows[0][0]) if rows else 0

    try:
        async with tribunal_process("consume", env, log) as first:

            async def far_enough() -> bool:
                assert first.returncode is None, log.read_text()
                return await count("SELECT count(*) FROM verdicts") >= KILL_AT

            await eventually(far_enough, f"{KILL_AT} verdicts recorded by the first process", 60)
            first.kill()  # SIGKILL, mid-stream
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        recorded_at_kill = await count("SELECT count(*) FROM verdicts")
        # The at-least-once window: verdicts whose alert went out but whose settle never reached the store.
        pending = {
            r["evidence_id"] for r in await pg_fetch(direct, "SELECT evidence_id FROM pending_actions")
        }
        window = pending & set(receiver.received)

        async with tribunal_process("consume", env, log) as second:

            async def all_recorded() -> bool:
                return await count("SELECT count(*) FROM verdicts") == ALERTS

            await settle_then_stop(second, direct, log, "after the restart", also=all_recorded)
    finally:
        await receiver.stop()
    assert second.returncode == 0, log.read_text()

    verdicts = await pg_fetch(direct, "SELECT evidence_id, decision FROM verdicts")
    ids = [r["evidence_id"] for r in verdicts]
    denied = {r["evidence_id"] for r in verdicts if r["decision"] == "deny"}
    outcomes = await pg_fetch(direct, "SELECT evidence_id, status FROM action_outcomes")
    dead = await read_topic(kafka_bootstrap, f"{prefix}-dlq")
    duplicates = receiver.duplicates
    lost = ({i for _, i in alerts} - set(ids)) | (denied - set(receiver.received))
    ledger(
        FaultRow(
            fault="`kill -9` of `tribunal consume` mid-stream, restarted in the same group on the same "
            "PostgreSQL database",
            injected=f"SIGKILL once {recorded_at_kill} of the verdicts were recorded; "
            f"{len(window)} alerts then out but not settled (the at-least-once window)",
            in_=f"{ALERTS} Falco alerts on Kafka",
            recorded=f"{len(set(ids))} verdicts ({len(ids) - len(set(ids))} twice)",
            dead_lettered=len(dead),
            actions=f"{sum(receiver.received.values())} alerts received for {len(denied)} denies; "
            f"{len(outcomes)} outcomes recorded",
            duplicates=_duplicates(duplicates, window),
            lost=len(lost),
        )
    )
    assert sorted(ids) == sorted(i for _, i in alerts)  # each message exactly one verdict
    assert lost == set(), f"{len(lost)} lost"
    assert set(duplicates) <= window, f"alerts sent twice outside the window: {set(duplicates) - window}"
    assert set(receiver.received) == denied  # no alert of a verdict that is not a deny
    assert sorted(r["evidence_id"] for r in outcomes) == sorted(denied)  # each outcome recorded once
    assert dead == []


def _duplicates(duplicates: dict[str, int], window: set[str]) -> str:
    """The alerts sent twice, and whether they were all in the at-least-once window."""
    count = sum(n - 1 for n in duplicates.values())
    if not count:
        return "0"
    outside = set(duplicates) - window
    return f"{count}, all in the window" if not outside else f"{count}, {len(outside)} outside the window"
