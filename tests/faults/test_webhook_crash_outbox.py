"""The webhook's actions go through the action outbox: a `tribunal serve` process answers denied
admissions, records them into the outbox before acting (the alert receiver is down, so every alert
is still waiting for a retry), is killed with SIGKILL while reviews keep coming, and is restarted on
the same database with the receiver up. Every recorded deny is alerted exactly once (by the outbox
sweep of the second process), every alert is of a recorded verdict, and each outcome is recorded
once. What the first process still held in memory when it died (answered in its last moments, not
yet written) is neither recorded nor acted on: the window docs/operations.md names."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import pod, review
from tests.faults.ledger import FaultRow, bounded
from tests.faults.support import (
    CountingReceiver,
    eventually,
    fetch,
    http_status,
    rules_with,
    tribunal_env,
    tribunal_process,
)
from tests.integration.conftest import free_port

pytestmark = pytest.mark.slow

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
DENY_ALERTS = (
    "rules:\n  - name: every-deny\n    match: {kinds: [admission], decisions: [deny]}\n    dedupe: 0\n"
    "    actions: [{type: alert, target: webhook}]\n"
)
RECORDED_FIRST = 30  # reviews answered, then waited for in the store, before the stream and the kill
LATE = 400  # reviews sent while the process is killed


async def _validate(http: aiohttp.ClientSession, base: str, uid: str) -> bool:
    """Whether the review was answered (deny, as every review here)."""
    try:
        async with http.post(f"{base}/validate", json=review(pod(PRIVILEGED), uid=uid)) as resp:
            answer: dict[str, Any] = (await resp.json())["response"]
    except (TimeoutError, aiohttp.ClientError):
        return False
    assert answer["allowed"] is False
    return True


async def _sweeps(http: aiohttp.ClientSession, base: str) -> float:
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    name = 'tribunal_outbox_sweeps_total{result="ok"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


@bounded(150)
async def test_serve_killed_mid_stream_loses_no_recorded_verdict_s_action_and_takes_none_twice(
    database_url: str,
    tmp_path: Path,
    tls_pair: tuple[Path, Path],
    client_ssl: ssl.SSLContext,
    ledger: Callable[[FaultRow], None],
) -> None:
    receiver = CountingReceiver()  # not listening yet: every alert is refused and waits for a retry
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    settings = {
        "port": str(port),
        "tls_cert_file": str(tls_pair[0]),
        "tls_key_file": str(tls_pair[1]),
        "database_url": database_url,
        "rules_dir": str(rules_with(tmp_path, DENY_ALERTS)),
        "actions__webhook_url": receiver.url,
        "actions__outbox_grace_seconds": "1",
        "shutdown_delay_seconds": "0",
    }
    # The first process retries a refused alert only after a long backoff: when it is killed, each of
    # its recorded verdicts has an action that has not gone out (none is between sending and settling).
    first_env = tribunal_env(
        tmp_path,
        **settings,
        actions__max_attempts="20",
        actions__backoff_seconds="60",
        actions__backoff_max_seconds="60",
    )
    log = tmp_path / "serve.log"
    answered: list[str] = []
    connector = aiohttp.TCPConnector(ssl=client_ssl, limit=8)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with tribunal_process("serve", first_env, log) as first:

            async def ready() -> bool:
                assert first.returncode is None, log.read_text()
                return (await http_status(http, f"{base}/readyz"))[0] == 200

            await eventually(ready, "the first server ready")
            for i in range(RECORDED_FIRST):
                assert await _validate(http, base, f"first-{i}")
                answered.append(f"first-{i}")

            async def recorded_before_acting() -> bool:  # answers never wait: the store catches up
                rows = await fetch(database_url, "SELECT count(*) FROM pending_actions")
                return bool(rows) and rows[0][0] >= RECORDED_FIRST

            # Before the fix, a verdict was recorded only once its actions had ended: never, here.
            await eventually(recorded_before_acting, "the answered denies recorded into the outbox", 30)
            assert sum(receiver.received.values()) == 0

            async def stream() -> None:
                for i in range(LATE):
                    if not await _validate(http, base, f"late-{i}"):
                        return
                    answered.append(f"late-{i}")

            streaming = asyncio.create_task(stream())
            await eventually(
                lambda: _true(len(answered) >= RECORDED_FIRST + 50 or streaming.done()), "reviews streaming"
            )
            first.kill()  # SIGKILL, mid-stream
            await first.wait()
            async with asyncio.timeout(30):
                with contextlib.suppress(Exception):
                    await streaming
        assert first.returncode == -signal.SIGKILL

        await receiver.start()
        try:
            async with tribunal_process("serve", tribunal_env(tmp_path, **settings), log) as second:

                async def settled() -> bool:
                    assert second.returncode is None, log.read_text()
                    if (await http_status(http, f"{base}/readyz"))[0] != 200:
                        return False
                    rows = await fetch(database_url, "SELECT count(*) FROM pending_actions")
                    return bool(rows) and rows[0][0] == 0

                await eventually(settled, "the outbox swept by the restarted server", 90)
                sweeps = await _sweeps(http, base)

                async def swept_again() -> bool:  # the sweep had its chance to act again
                    return await _sweeps(http, base) >= sweeps + 3

                await eventually(swept_again, "three more passes of the outbox sweep")
                second.send_signal(signal.SIGTERM)
                async with asyncio.timeout(60):
                    await second.wait()
        finally:
            await receiver.stop()
    text = log.read_text()
    assert second.returncode == 0, text

    verdicts = await fetch(database_url, "SELECT evidence_id, decision FROM verdicts")
    recorded = {row[0] for row in verdicts}
    outcomes = await fetch(database_url, "SELECT evidence_id, status FROM action_outcomes")
    lost = set(answered) - recorded
    store = database_url.split("+", 1)[0]
    ledger(
        FaultRow(
            fault=f"`kill -9` of `tribunal serve` mid-stream, restarted on the same {store} database",
            injected=f"SIGKILL after {RECORDED_FIRST} denies were recorded (their alerts still waiting, "
            "the receiver down) while reviews stream; the receiver up for the restart",
            in_=f"{len(answered)} admission reviews answered (deny)",
            recorded=f"{len(recorded)} verdicts ({len(verdicts) - len(recorded)} twice)",
            dead_lettered=None,
            actions=f"{sum(receiver.received.values())} alerts received, {len(outcomes)} outcomes "
            "recorded, one per recorded deny",
            duplicates=sum(n - 1 for n in receiver.duplicates.values()),
            lost=f"{len(recorded - set(receiver.received))} actions of recorded verdicts; {len(lost)} "
            "answered reviews still in memory at the kill (the window below)",
        )
    )
    assert {row[1] for row in verdicts} == {"deny"} and len(verdicts) == len(recorded)
    assert {f"first-{i}" for i in range(RECORDED_FIRST)} <= recorded
    assert recorded <= set(answered)
    assert all(uid.startswith("late-") for uid in lost)  # only what the kill caught in memory
    assert receiver.duplicates == {}, f"{len(receiver.duplicates)} alerts sent more than once"
    assert set(receiver.received) == recorded  # every recorded deny alerted once; no alert unrecorded
    assert sorted(row[0] for row in outcomes) == sorted(recorded)
    assert {row[1] for row in outcomes} == {"success"}


async def _true(value: bool) -> bool:
    return value
