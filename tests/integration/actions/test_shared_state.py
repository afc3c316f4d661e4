"""The state replicas share through the database (tribunal.store.shared), on SQLite and on PostgreSQL,
each "replica" a SqlStore of its own on one database: a dedupe window is claimed by exactly one of
many concurrent claims; the blast-radius budget is counted across them; the blocked images written by
one are read by the other, and on PostgreSQL its notification reaches the other's listener. With
the database cut, dedupe fails open, the blast-radius guard closed, and the blocked images stay as
last read while a replica's own block is held until the database is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.kafka_support import wait_until
from tests.integration.proxy import CuttableProxy
from tests.unit.actions.test_shared_state import RULES
from tribunal.actions import Dispatcher, ImageBlocklist, RulesRuntime, default_registry
from tribunal.actions.base import ActionRequest
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation
from tribunal.settings import ActionSettings
from tribunal.store import SqlBlockedImages, SqlDedupeWindows, SqlDestructiveBudget, SqlStore, StoreError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEY = ("alert-once", "shop/Pod/web", "app", "privileged_containers")


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    async with SqlStore(database_url) as a, SqlStore(database_url) as b:
        yield a, b


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_one_claim_of_a_dedupe_window_wins_across_replicas(replicas: tuple[SqlStore, SqlStore]) -> None:
    clock = Clock()
    a, b = (SqlDedupeWindows(store, clock) for store in replicas)
    claims = await asyncio.gather(*(w.claim(KEY, 600) for _ in range(10) for w in (a, b)))
    assert sorted(claims) == list(range(20))  # one winner (0); every other claim a counted repeat
    assert await b.claim(("another",), 600) == 0
    assert await a.claim(KEY, 0) == 0  # no window: never deduplicated

    clock.now = T0 + timedelta(seconds=599)
    assert await a.claim(KEY, 600) == 20
    clock.now = T0 + timedelta(seconds=601)  # the window ended: a new one, its repeats from 0
    assert [await b.claim(KEY, 600), await a.claim(KEY, 600)] == [0, 1]

    await a.release(KEY)  # the action failed: the next occurrence acts again
    assert await b.claim(KEY, 600) == 0

    # The window's own evidence may claim it again (the outbox sweep replaying a verdict whose replica
    # died between claiming and acting); any other evidence is a repeat.
    owned = ("owned",)
    assert [await a.claim(owned, 600, "ev-1"), await b.claim(owned, 600, "ev-1")] == [0, 0]
    assert [await b.claim(owned, 600, "ev-2"), await a.claim(owned, 600)] == [1, 2]


async def test_the_blast_radius_budget_is_counted_across_replicas(
    replicas: tuple[SqlStore, SqlStore],
) -> None:
    clock = Clock()
    a, b = (SqlDestructiveBudget(store, 3, clock) for store in replicas)
    taken = await asyncio.gather(*(budget.take("shop") for _ in range(6) for budget in (a, b)))
    assert taken.count(True) == 3
    assert await b.take("blog") is True  # per namespace
    clock.now = T0 + timedelta(seconds=59)
    assert await a.take("shop") is False
    clock.now = T0 + timedelta(seconds=61)  # the minute slid past the first three
    assert [await a.take("shop"), await b.take("shop"), await a.take("shop"), await b.take("shop")] == [
        True,
        True,
        True,
        False,
    ]
    assert await SqlDestructiveBudget(replicas[0], 0, clock).take("shop") is False  # 0: none at all


async def test_blocked_images_are_shared_and_notified(replicas: tuple[SqlStore, SqlStore]) -> None:
    a, b = (SqlBlockedImages(store) for store in replicas)
    notified = asyncio.Event()
    listening = await b.listen(notified.set)
    postgres = replicas[0].dialect == "postgresql"
    assert (listening is not None) is postgres
    try:
        entry = {"image": "nginx:1.27", "reference": "docker.io/library/nginx:1.27", "policies": ["p"]}
        assert await a.put("docker.io/library/nginx:1.27", entry, ("image", "policies")) is True
        assert await b.load() == {"docker.io/library/nginx:1.27": entry}
        if postgres:
            async with asyncio.timeout(30):
                await notified.wait()
            assert listening is not None and listening.alive
        same = {**entry, "blocked_at": "later"}
        assert await b.put("docker.io/library/nginx:1.27", same, ("image", "policies")) is False
        assert await a.put("docker.io/library/nginx:1.27", same) is True  # no fields: always stored
        assert (await a.load())["docker.io/library/nginx:1.27"]["blocked_at"] == "later"

        notified.clear()
        assert await b.delete(["docker.io/library/nginx:1.27", "absent"]) == ["docker.io/library/nginx:1.27"]
        # Seeded once, by the first replica to read it: what it held before the state was shared.
        assert await a.seed({"docker.io/library/redis:7": entry}) == 1
        assert await b.seed({"docker.io/library/alpine:3": entry}) == 0 and await b.seed({}) == 0
        assert await b.load() == {"docker.io/library/redis:7": entry}
        assert await a.delete(["tribunal:seeded"]) == [] and await b.delete(["docker.io/library/redis:7"])
        assert await a.load() == {} and await a.delete([]) == []
        if postgres:
            async with asyncio.timeout(30):
                await notified.wait()
    finally:
        if listening is not None:
            await listening.close()


async def test_image_blocklists_of_two_replicas_follow_one_truth(
    replicas: tuple[SqlStore, SqlStore], tmp_path: Path
) -> None:
    """Through the real SQL: a block by one replica reaches the other's policy data (the file and
    ``on_change``), so does a clear; a replica starting later loads the shared state."""
    reloads: list[int] = []

    async def reloaded() -> None:
        reloads.append(len(second.entries))

    first = ImageBlocklist(tmp_path / "a", shared=SqlBlockedImages(replicas[0]), poll_seconds=0.2)
    second = ImageBlocklist(tmp_path / "b", reloaded, shared=SqlBlockedImages(replicas[1]), poll_seconds=0.2)
    await first.start()
    await second.start()
    try:
        key, changed = await first.block("nginx:1.27", None, policies=["p"], kind="trivy", rule="r")
        assert changed
        await wait_until(lambda: key in second.entries, "the block on the second replica", 30)
        assert key in second.path.read_text() and reloads[-1] == 1

        later = ImageBlocklist(tmp_path / "c", shared=SqlBlockedImages(replicas[1]), poll_seconds=60)
        await later.start()
        await later.stop()
        assert set(later.entries) == {key}

        assert await second.clear([key]) == [key]
        await wait_until(lambda: key not in first.entries, "the unblock on the first replica", 30)
    finally:
        await first.stop()
        await second.stop()


async def test_a_store_not_connected_yet_raises(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")  # not started
    with pytest.raises(StoreError):
        await SqlDedupeWindows(store).claim(KEY, 60)
    with pytest.raises(StoreError):
        await SqlDestructiveBudget(store, 5).take("shop")
    with pytest.raises(StoreError):
        await SqlBlockedImages(store).load()


class Recording:
    """A target that counts its runs."""

    def __init__(self, runs: list[str], action: str) -> None:
        self.runs, self.action = runs, action

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        return {"would": self.action}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        self.runs.append(f"{self.action}:{request.verdict.subject.pod}")
        return {}


def _dispatcher(tmp_path: Path, store: SqlStore, runs: list[str], registry: CollectorRegistry) -> Dispatcher:
    rules = tmp_path / f"rules-{id(store)}"
    (rules / "response").mkdir(parents=True)
    (rules / "response" / "rules.yaml").write_text(RULES)
    targets: dict[tuple[str, str], Any] = {
        ("alert", "webhook"): Recording(runs, "alert"),
        ("quarantine", "kubernetes"): Recording(runs, "quarantine"),
    }
    return Dispatcher(
        RulesRuntime(str(rules), default_registry()),
        targets,
        ActionSettings(destructive_per_minute=5),
        registry,
        dedupe=SqlDedupeWindows(store),
        budget=SqlDestructiveBudget(store, 5),
        shared_timeout=2.0,
    )


def _falco(pod: str, evidence_id: str) -> Verdict:
    return Verdict(
        evidence_id=evidence_id,
        kind=EvidenceKind.FALCO,
        subject=Subject(namespace="shop", pod=pod),
        decision=Decision.DENY,
        violations=[Violation(policy="shell_in_container", msg="m", severity=Severity.HIGH)],
        policy_revision="rev",
        engine="regorus",
        evaluated_at=T0,
        latency_ms=1.0,
    )


def _statuses(outcomes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["action"], o["status"]) for o in outcomes]


async def test_with_the_database_cut_dedupe_fails_open_the_guard_closed_and_blocks_are_held(
    pg_through_proxy: tuple[str, str, CuttableProxy], tmp_path: Path
) -> None:
    """Replica A reaches PostgreSQL through a proxy that is cut, B directly."""
    through, direct, proxy = pg_through_proxy
    async with SqlStore(through) as store_a, SqlStore(direct) as store_b:
        runs: list[str] = []
        registry = CollectorRegistry()
        a = _dispatcher(tmp_path, store_a, runs, registry)
        b = _dispatcher(tmp_path, store_b, runs, CollectorRegistry())
        list_a = ImageBlocklist(tmp_path / "a", shared=SqlBlockedImages(store_a), poll_seconds=0.2, timeout=2)
        list_b = ImageBlocklist(tmp_path / "b", shared=SqlBlockedImages(store_b), poll_seconds=0.2, timeout=2)
        await list_a.start()
        await list_b.start()
        try:
            assert _statuses(await a.dispatch(None, _falco("web-1", "ev-1"))) == [
                ("alert", "success"),
                ("quarantine", "success"),
            ]
            assert _statuses(await b.dispatch(None, _falco("web-1", "ev-2")))[0] == ("alert", "deduplicated")
            nginx, _ = await list_b.block("nginx:1.27", None, policies=["p"], kind="trivy", rule="r")
            await wait_until(lambda: nginx in list_a.entries, "the block on replica A", 30)

            proxy.sever()
            async with asyncio.timeout(30):  # bounded: each call to the shared state has its deadline
                cut = _statuses(await a.dispatch(None, _falco("web-2", "ev-3")))
            assert cut == [("alert", "success"), ("quarantine", "rate_limited")]
            errors = {
                state: registry.get_sample_value(
                    "tribunal_action_shared_state_errors_total", {"state": state}
                )
                for state in ("dedupe", "budget")
            }
            assert errors == {"dedupe": 1, "budget": 1}
            assert sorted(runs) == ["alert:web-1", "alert:web-2", "quarantine:web-1", "quarantine:web-1"]

            redis, changed = await list_a.block("redis:7", None, policies=["p"], kind="trivy", rule="r")
            assert changed and list_a.held == {redis} and {nginx, redis} <= set(list_a.entries)
            await asyncio.sleep(0.5)  # a few polls fail: the last known entries stay
            assert {nginx, redis} <= set(list_a.entries) and redis not in list_b.entries

            proxy.restore()
            await wait_until(
                lambda: redis in list_b.entries and not list_a.held, "the held block written", 30
            )
            assert _statuses(await b.dispatch(None, _falco("web-3", "ev-4")))[1] == ("quarantine", "success")
        finally:
            await list_a.stop()
            await list_b.stop()
