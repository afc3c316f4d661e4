"""The action outbox read back and swept: on SQLite and PostgreSQL, unsettled entries older than the
grace come back as the Records that were recorded (leased, so a second claim does not take them
again; pruned ones dropped); and end to end, HTTP ingest through the real server whose responder is
stopped before acting is acted on exactly once by the next server's sweep, and a settled one never
again."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from tests.conftest import RULES_DIR, falco_alert
from tests.integration.conftest import T0, MakeRecord, StartServer
from tribunal.actions.responder import Responder
from tribunal.server import Server
from tribunal.store import Record, SqlStore
from tribunal.store import schema as tables

GRACE = timedelta(minutes=5)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def _rebuildable(make_record: MakeRecord, uid: str, **kw: Any) -> Record:
    """A judged review whose stored raw body is the review itself (make_record's is a stand-in)."""
    made = make_record(uid, **kw)
    return Record(made.evidence, made.verdict)


async def _backdate(store: SqlStore, *evidence_ids: str) -> None:
    """As if these outbox entries were recorded long ago (by a replica that then died)."""
    pending = tables.pending_actions
    async with store.engine.begin() as conn:
        await conn.execute(
            update(pending).where(pending.c.evidence_id.in_(evidence_ids)).values(recorded_at=LONG_AGO)
        )


async def test_an_unsettled_entry_past_the_grace_comes_back_as_recorded(
    database_url: str, make_record: MakeRecord
) -> None:
    old = _rebuildable(make_record, "old", privileged=True, minutes=3)
    fresh = _rebuildable(make_record, "fresh", privileged=True, minutes=4)
    async with SqlStore(database_url) as store:
        assert await store.record_to_act([old, fresh]) == ["fresh", "old"]
        await _backdate(store, "old")
        [back] = await store.claim_unsettled(GRACE)
        assert await store.claim_unsettled(GRACE) == []  # leased: not handed out twice
        pending = (await store.counts())["pending_actions"]
    assert back.evidence_id == "old"
    assert back.evidence.id == "old" and back.evidence.kind is old.evidence.kind
    assert back.evidence.received_at == T0 + timedelta(minutes=3)
    assert back.evidence.event() == old.evidence.event()
    assert back.evidence.subject == old.evidence.subject
    assert back.verdict.decision is old.verdict.decision
    assert old.verdict.violations and back.verdict.violations == old.verdict.violations
    assert back.verdict == old.verdict  # as recorded, not judged again
    assert pending == 2  # claimed is not settled: both stay until their actions ran


async def test_two_replicas_claiming_at_once_take_each_entry_once(
    database_url: str, make_record: MakeRecord
) -> None:
    records = [_rebuildable(make_record, f"c{i}", privileged=i % 2 == 0, minutes=i) for i in range(12)]
    async with SqlStore(database_url) as one, SqlStore(database_url) as two:
        await one.record_to_act(records)
        await _backdate(one, *(r.evidence_id for r in records))
        batches = await asyncio.gather(
            one.claim_unsettled(GRACE, limit=5),
            two.claim_unsettled(GRACE, limit=5),
            one.claim_unsettled(GRACE, limit=5),
            two.claim_unsettled(GRACE, limit=5),
        )
    taken = [r.evidence_id for batch in batches for r in batch]
    assert sorted(taken) == sorted(r.evidence_id for r in records)  # every one, none twice


async def test_pruned_or_unreadable_evidence_is_dropped_from_the_outbox(
    database_url: str, make_record: MakeRecord
) -> None:
    pruned = _rebuildable(make_record, "pruned", minutes=0)
    unreadable = make_record("unreadable", minutes=1)  # its raw body is not evidence
    kept = _rebuildable(make_record, "kept", minutes=2)
    async with SqlStore(database_url) as store:
        await store.record_to_act([pruned, unreadable, kept])
        await store.prune(T0 + timedelta(seconds=30))  # drops the raw body of "pruned" only
        await _backdate(store, "pruned", "unreadable", "kept")
        back = await store.claim_unsettled(GRACE)
        counts = await store.counts()
        stored = await store.get_evidence("pruned")
    assert [r.evidence_id for r in back] == ["kept"]
    assert counts["pending_actions"] == 1  # the two that cannot be rebuilt were settled
    assert stored is not None and stored.raw is None and counts["verdicts"] == 3


async def test_a_redelivered_unsettled_entry_renews_its_lease(
    database_url: str, make_record: MakeRecord
) -> None:
    record = _rebuildable(make_record, "redelivered")
    async with SqlStore(database_url) as store:
        await store.record_to_act([record])
        await _backdate(store, "redelivered")
        assert await store.record_to_act([record]) == ["redelivered"]  # the consumer acts on it now...
        assert await store.claim_unsettled(GRACE) == []  # ...so the sweep leaves it alone


async def test_settling_writes_the_outcomes_with_it_once_however_often_it_is_tried(
    database_url: str, make_record: MakeRecord
) -> None:
    records = [_rebuildable(make_record, f"s{i}", privileged=True, minutes=i) for i in range(3)]
    outcome = {"rule": "r", "action": "alert", "target": "webhook", "status": "success"}
    async with SqlStore(database_url) as store:
        await store.record_to_act(records)
        acted = {"s0": [outcome], "s1": [outcome, {**outcome, "target": "alertmanager"}], "s2": []}
        await store.settle_actions(["s0", "s1", "s2"], acted)
        await store.settle_actions(["s0", "s1", "s2"], acted)  # a retry whose first answer was lost
        await store.settle_actions(["s0"], {"s0": [outcome]})  # or a late second actor: not written
        counts = await store.counts()
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(tables.actions.c.evidence_id, tables.actions.c.target))).all()
    assert counts["pending_actions"] == 0 and counts["actions"] == 3
    assert sorted(rows) == [("s0", "webhook"), ("s1", "alertmanager"), ("s1", "webhook")]


# -- end to end: HTTP ingest, the responder interrupted, then the sweep of the next server -------


class Hook:
    """A webhook alert receiver; while ``hold`` is clear it takes requests and never answers."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.arrived = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        self.arrived.set()
        await self.hold.wait()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        self.hold.set()
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    server = Hook()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """The shipped rules, with one response rule: every Falco verdict alerts the webhook."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    shutil.rmtree(target / "response")
    (target / "response").mkdir()
    (target / "response" / "hook.yaml").write_text(
        "rules:\n  - name: hook\n    match: {kinds: [falco]}\n    dedupe: 0\n"
        "    actions: [{type: alert, target: webhook}]\n"
    )
    return target


async def _until(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def _counts(database_url: str) -> dict[str, int]:
    async with SqlStore(database_url) as store:
        return await store.counts()


def _metric(server: Server, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(_exposition(server)):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _exposition(server: Server) -> str:
    return generate_latest(server.registry).decode()


async def _ingest(server: Server, body: dict[str, Any]) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/ingest/falco", data=orjson.dumps(body)) as resp,
    ):
        answer = await resp.json()
        assert resp.status == 202, answer
    evidence_id: str = answer["id"]
    return evidence_id


async def _sweeps_after(server: Server, passes: int) -> None:
    """Wait until the server's sweep has made ``passes`` more passes."""
    start = _metric(server, "tribunal_outbox_sweeps_total", result="ok")

    async def swept() -> bool:
        return _metric(server, "tribunal_outbox_sweeps_total", result="ok") >= start + passes

    await _until(swept, f"{passes} sweeps")


def _shared_store_settings(rules: Path, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """Server settings for two servers in a row on one SQLite store, and that store's URL."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    return {"tls": False, "store": True, "database_url": database_url, "rules_dir": rules}, database_url


async def test_ingest_interrupted_before_acting_is_acted_on_once_by_the_sweep(
    start_server: StartServer, hook: Hook, rules: Path, tmp_path: Path
) -> None:
    settings, database_url = _shared_store_settings(rules, tmp_path)
    actions = {"state_dir": tmp_path / "state", "webhook_url": hook.url, "backoff_seconds": 0}
    first, _ = await start_server(**settings, actions=actions)
    hook.hold.clear()  # the webhook takes the alert and never answers: the action hangs
    alert = falco_alert()
    evidence_id = await _ingest(first, alert)
    await asyncio.wait_for(hook.arrived.wait(), 10)
    [responder] = [c for c in first.components if isinstance(c, Responder)]
    responder.grace = 0  # stop now, with the action in flight: as a crash after the 202
    await first.stop()
    interrupted = await _counts(database_url)
    hook.hold.set()
    posts_before = len(hook.posts)

    second, _ = await start_server(**settings, actions={**actions, "outbox_grace_seconds": 0.05})

    async def settled() -> bool:
        return (await _counts(database_url))["pending_actions"] == 0

    await _until(settled, "the outbox swept")
    await _sweeps_after(second, 3)  # a few more passes: nothing is acted on again
    after = await _counts(database_url)
    replayed = _metric(second, "tribunal_outbox_replayed_total")
    await second.stop()

    assert interrupted["pending_actions"] == 1 and interrupted["actions"] == 0
    assert [p["evidence_id"] for p in hook.posts[posts_before:]] == [evidence_id]  # acted once
    assert hook.posts[-1]["decision"] == "deny" and hook.posts[-1]["rule"] == "hook"
    assert after["actions"] == 1 and after["pending_actions"] == 0
    assert replayed == 1


async def test_ingest_acted_on_and_settled_is_never_acted_on_again(
    start_server: StartServer, hook: Hook, rules: Path, tmp_path: Path
) -> None:
    settings, database_url = _shared_store_settings(rules, tmp_path)
    actions = {"state_dir": tmp_path / "state", "webhook_url": hook.url}
    first, _ = await start_server(**settings, actions=actions)
    evidence_id = await _ingest(first, falco_alert())

    async def acted_and_settled() -> bool:
        counts = await _counts(database_url)
        return counts["actions"] == 1 and counts["pending_actions"] == 0

    await _until(acted_and_settled, "the ingested alert acted on and settled")
    await first.stop()

    second, _ = await start_server(**settings, actions={**actions, "outbox_grace_seconds": 0.05})
    await _sweeps_after(second, 3)
    after = await _counts(database_url)
    replayed = _metric(second, "tribunal_outbox_replayed_total")
    await second.stop()

    assert [p["evidence_id"] for p in hook.posts] == [evidence_id]
    assert after["actions"] == 1 and replayed == 0
