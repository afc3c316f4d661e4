"""The real Alertmanager down and back while `tribunal consume` alerts on Falco alerts from Kafka
(PostgreSQL store). Alertmanager is killed mid-stream and restarted a few seconds later, after every
verdict was recorded: the alerts of the verdicts judged meanwhile fail their attempts, stay in the
outbox (before the fix they were recorded as failed and never sent: lost), and the outbox sweep sends
them once Alertmanager is back. Every alert of every deny is received by Alertmanager exactly once,
across its two lives.

Alertmanager keeps alerts in memory only, so the first instance's alerts are read just before it is
killed; a TCP proxy in front of it is cut first, so nothing arrives between that read and the kill."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.components import AlertmanagerProcess
from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
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

BEFORE, DURING = 80, 80  # Falco alerts produced before Alertmanager goes down, and while it is down
DOWN_AT = 10  # alerts Alertmanager holds when it is killed
DENY_ALERTS = (
    "rules:\n  - name: page\n    match: {kinds: [falco], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: alert, target: alertmanager}]\n"
)


def alerts_with_pods(count: int) -> list[tuple[bytes, str]]:
    """Falco alerts each about its own pod: each of their Alertmanager alerts has its own labels."""
    out = []
    for value, _ in falco_alerts(count):
        alert = orjson.loads(value)
        alert["uuid"] = str(uuid.uuid4())
        alert.setdefault("output_fields", {})["k8s.ns.name"] = "shop"
        alert["output_fields"]["k8s.pod.name"] = f"pod-{alert['uuid'][:12]}"
        out.append((orjson.dumps(alert), alert["uuid"]))
    return out


def by_alert(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Alertmanager's alerts by (evidence id, policy): one per violated policy of a deny."""
    return {(a["annotations"]["evidence_id"], a["labels"]["policy"]): a for a in alerts}


@bounded(150)
async def test_alertmanager_down_and_back_receives_every_alert_exactly_once(
    kafka_bootstrap: str,
    pg_through_proxy: tuple[str, str, CuttableProxy],
    tmp_path: Path,
    ledger: Callable[[FaultRow], None],
) -> None:
    _, direct, _ = pg_through_proxy
    manager = AlertmanagerProcess(tmp_path)
    await manager.start()
    gate = CuttableProxy("127.0.0.1", manager.port)
    await gate.start()
    prefix = unique("amdown")
    await create_topics(kafka_bootstrap, {f"{prefix}-falco": 2, f"{prefix}-verdicts": 1, f"{prefix}-dlq": 1})
    before, during = alerts_with_pods(BEFORE), alerts_with_pods(DURING)
    env = tribunal_env(
        tmp_path,
        database_url=direct,
        alertmanager_url=f"http://127.0.0.1:{gate.port}",
        rules_dir=str(rules_with(tmp_path, DENY_ALERTS)),
        **kafka_settings(kafka_bootstrap, prefix),
        actions__max_attempts="2",
        actions__backoff_seconds="0.1",
        actions__timeout_seconds="2",
        actions__outbox_grace_seconds="1",
    )
    log = tmp_path / "consume.log"
    first_life: dict[tuple[str, str], dict[str, Any]] = {}
    received_first = 0.0
    try:
        async with tribunal_process("consume", env, log) as process:
            await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in before])

            async def some_alerted() -> bool:
                assert process.returncode is None, log.read_text()
                return len(await manager.alerts()) >= DOWN_AT

            await eventually(some_alerted, f"{DOWN_AT} alerts in Alertmanager", 60)
            # Nothing more reaches it, but what it already took is answered: its count is final, and
            # each alert it holds is one Tribunal knows was delivered.
            await gate.sever_after_answers(1.0)
            first_life = by_alert(await manager.alerts())
            received_first = await manager.received_total()
            await manager.kill()  # down (SIGKILL), mid-stream
            gate.restore()  # connections now refused by nothing listening behind the proxy
            await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in during])

            async def all_recorded() -> bool:
                assert process.returncode is None, log.read_text()
                rows = await fetch(direct, "SELECT count(*) FROM verdicts")
                return bool(rows) and rows[0][0] == BEFORE + DURING

            await eventually(all_recorded, "every Falco alert recorded while Alertmanager is down", 60)
            await asyncio.sleep(2)  # their alerts fail their attempts meanwhile
            down_pending = await pg_fetch(direct, "SELECT count(*) FROM pending_actions")
            await manager.start()  # back, on a new port: the proxy now leads there
            gate.target = ("127.0.0.1", manager.port)
            await settle_then_stop(process, direct, log, "once Alertmanager is back")
        second_life = by_alert(await manager.alerts())
        received_second = await manager.received_total()
    finally:
        await gate.stop()
        await manager.kill()
    assert process.returncode == 0, log.read_text()

    verdicts = await pg_fetch(direct, "SELECT evidence_id, decision FROM verdicts")
    denied = {r["evidence_id"] for r in verdicts if r["decision"] == "deny"}
    outcomes = await pg_fetch(direct, "SELECT evidence_id, status FROM action_outcomes")
    statuses = Counter(r["status"] for r in outcomes)
    in_both = set(first_life) & set(second_life)
    alerted = {evidence for evidence, _ in set(first_life) | set(second_life)}
    distinct = len(set(first_life) | set(second_life))
    received = int(received_first + received_second)
    lost = (denied - alerted) | ({i for _, i in before + during} - {r["evidence_id"] for r in verdicts})
    ledger(
        FaultRow(
            fault="Alertmanager (the real binary) down and back during Kafka consumption",
            injected=f"SIGKILL once it held {len(first_life)} alerts; restarted after the next "
            f"{DURING} Falco alerts were recorded ({down_pending[0][0]} verdicts then waiting in the outbox)",
            in_=f"{BEFORE + DURING} Falco alerts on Kafka",
            recorded=f"{len({r['evidence_id'] for r in verdicts})} verdicts",
            dead_lettered=len(await read_topic(kafka_bootstrap, f"{prefix}-dlq")),
            actions=f"{distinct} alerts in Alertmanager ({len(first_life)} before the kill, "
            f"{len(second_life)} after) for {len(denied)} denies; outcomes "
            + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            duplicates=received - distinct + len(in_both),
            lost=len(lost),
        )
    )
    assert lost == set(), f"{len(lost)} denies never alerted"
    assert alerted == denied
    assert in_both == set() and received == distinct, "an alert reached Alertmanager twice"
    assert statuses == {"success": len(denied)} and len(outcomes) == len(denied)
