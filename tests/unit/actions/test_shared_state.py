"""What the dispatcher and the blocklist do with state shared by replicas (the Protocols of
tribunal.actions; the SQL implementations are tested in tests/integration/actions/test_shared_state.py):
a shared dedupe window or budget decides; when the database does not answer, dedupe fails open (this
process's own windows), the blast-radius guard fails closed (refused as rate_limited), both counted; the
blocked images follow the shared list, keep the last known while it is away, and hold this replica's
own blocks and clears until it answers again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tribunal.actions import RulesRuntime, default_registry
from tribunal.actions.base import ActionRequest
from tribunal.actions.dispatcher import Dispatcher
from tribunal.actions.images import ImageBlocklist
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation
from tribunal.settings import ActionSettings

RULES = """rules:
  - name: alert-once
    match: {kinds: [falco]}
    dedupe: 1h
    actions: [{type: alert, target: webhook}]
  - name: contain
    match: {kinds: [falco]}
    dedupe: 0
    actions: [{type: quarantine}]
"""


class Recording:
    def __init__(self, calls: list[str], action: str) -> None:
        self.calls, self.action = calls, action

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        return {"would": self.action}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        self.calls.append(self.action)
        return {"ran": self.action}


class Down:
    """Shared state whose database does not answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int:
        self.calls += 1
        raise ConnectionRefusedError("connection refused")

    async def release(self, key: tuple[str, ...]) -> None:
        raise ConnectionRefusedError("connection refused")

    async def take(self, namespace: str) -> bool:
        self.calls += 1
        raise ConnectionRefusedError("connection refused")


class Slow(Down):
    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int:
        await asyncio.sleep(30)
        return 0

    async def take(self, namespace: str) -> bool:
        await asyncio.sleep(30)
        return True


class Shared:
    """Shared state that answers: one window per key, a budget per namespace (no clock)."""

    def __init__(self, per_minute: int = 1) -> None:
        self.windows: dict[tuple[str, ...], int] = {}
        self.taken: dict[str, int] = {}
        self.per_minute = per_minute

    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int:
        if key in self.windows:
            self.windows[key] += 1
            return self.windows[key]
        self.windows[key] = 0
        return 0

    async def release(self, key: tuple[str, ...]) -> None:
        self.windows.pop(key, None)

    async def take(self, namespace: str) -> bool:
        if self.taken.get(namespace, 0) >= self.per_minute:
            return False
        self.taken[namespace] = self.taken.get(namespace, 0) + 1
        return True


def verdict(pod: str = "web-7d4") -> Verdict:
    return Verdict(
        evidence_id=f"ev-{pod}",
        kind=EvidenceKind.FALCO,
        subject=Subject(namespace="shop", pod=pod),
        decision=Decision.DENY,
        violations=[Violation(policy="shell_in_container", msg="m", severity=Severity.HIGH)],
        policy_revision="rev",
        engine="regorus",
        evaluated_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        latency_ms=1.0,
    )


def dispatcher(tmp_path: Path, calls: list[str], **kwargs: Any) -> tuple[Dispatcher, CollectorRegistry]:
    (tmp_path / "response").mkdir(exist_ok=True)
    (tmp_path / "response" / "rules.yaml").write_text(RULES)
    targets: dict[tuple[str, str], Any] = {
        ("alert", "webhook"): Recording(calls, "alert"),
        ("quarantine", "kubernetes"): Recording(calls, "quarantine"),
    }
    registry = CollectorRegistry()
    settings = ActionSettings(destructive_per_minute=5)
    runtime = RulesRuntime(str(tmp_path), default_registry())
    return Dispatcher(runtime, targets, settings, registry, **kwargs), registry


def statuses(outcomes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["action"], o["status"]) for o in outcomes]


async def test_shared_windows_and_budget_decide(tmp_path: Path) -> None:
    shared = Shared(per_minute=1)
    calls: list[str] = []
    d, _ = dispatcher(tmp_path, calls, dedupe=shared, budget=shared)
    first = statuses(await d.dispatch(None, verdict("a")))
    again = statuses(await d.dispatch(None, verdict("a")))
    assert first == [("alert", "success"), ("quarantine", "success")]
    assert again == [("alert", "deduplicated"), ("quarantine", "rate_limited")]
    assert shared.windows and shared.taken == {"shop": 1}


async def test_unreachable_dedupe_fails_open_on_this_replica_s_own_windows(tmp_path: Path) -> None:
    down, calls = Down(), list[str]()
    d, registry = dispatcher(tmp_path, calls, dedupe=down)
    assert statuses(await d.dispatch(None, verdict()))[0] == ("alert", "success")  # acted
    assert statuses(await d.dispatch(None, verdict()))[0] == ("alert", "deduplicated")  # own window
    assert calls.count("alert") == 1
    assert registry.get_sample_value("tribunal_action_shared_state_errors_total", {"state": "dedupe"}) == 2


async def test_unreachable_budget_fails_closed_and_counts(tmp_path: Path) -> None:
    down, calls = Down(), list[str]()
    d, registry = dispatcher(tmp_path, calls, budget=down)
    [alert, contain] = await d.dispatch(None, verdict())
    assert alert["status"] == "success"
    assert contain["status"] == "rate_limited" and "does not answer" in contain["reason"]
    assert "quarantine" not in calls
    assert registry.get_sample_value("tribunal_action_shared_state_errors_total", {"state": "budget"}) == 1
    assert (
        registry.get_sample_value(
            "tribunal_actions_total",
            {"action": "quarantine", "target": "kubernetes", "status": "rate_limited"},
        )
        == 1
    )


async def test_a_shared_state_that_hangs_is_bounded(tmp_path: Path) -> None:
    calls: list[str] = []
    slow = Slow()
    d, registry = dispatcher(tmp_path, calls, dedupe=slow, budget=slow, shared_timeout=0.05)
    async with asyncio.timeout(10):
        outcomes = statuses(await d.dispatch(None, verdict()))
    assert outcomes == [("alert", "success"), ("quarantine", "rate_limited")]
    assert registry.get_sample_value("tribunal_action_shared_state_errors_total", {"state": "dedupe"}) == 1


class FakeBlocklist:
    """A shared blocklist in memory that can be taken away (``up = False``)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.up = True
        self.seeded = False
        self.notify: list[Callable[[], None]] = []

    def _check(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("connection refused")

    async def load(self) -> dict[str, dict[str, Any]]:
        self._check()
        return {k: dict(v) for k, v in self.entries.items()}

    async def put(self, key: str, entry: dict[str, Any], same_if: Sequence[str] = ()) -> bool:
        self._check()
        old = self.entries.get(key)
        if old is not None and same_if and all(old.get(f) == entry.get(f) for f in same_if):
            return False
        self.entries[key] = dict(entry)
        for n in self.notify:
            n()
        return True

    async def delete(self, keys: Sequence[str]) -> list[str]:
        self._check()
        removed = [k for k in keys if self.entries.pop(k, None) is not None]
        for n in self.notify:
            n()
        return removed

    async def seed(self, entries: dict[str, dict[str, Any]]) -> int:
        self._check()
        if self.seeded:
            return 0
        self.seeded = True
        new = {k: dict(v) for k, v in entries.items() if k not in self.entries}
        self.entries.update(new)
        return len(new)

    async def listen(self, notify: Callable[[], None]) -> None:
        self._check()
        if notify not in self.notify:
            self.notify.append(notify)
        return None


def _file(blocklist: ImageBlocklist) -> dict[str, Any]:
    images: dict[str, Any] = json.loads(blocklist.path.read_text())["tribunal"]["state"]["images"]
    return images


async def test_blocklists_follow_the_shared_one_and_hold_their_own_changes_while_it_is_away(
    tmp_path: Path,
) -> None:
    shared = FakeBlocklist()
    changes: list[str] = []

    async def changed_b() -> None:
        changes.append("b")

    a = ImageBlocklist(tmp_path / "a", shared=shared, poll_seconds=0.02)
    b = ImageBlocklist(tmp_path / "b", changed_b, shared=shared, poll_seconds=0.02)
    await a.start()
    await b.start()
    try:
        key, changed = await a.block("nginx:1.27", None, policies=["p"], kind="trivy", rule="r")
        assert changed and key == "docker.io/library/nginx:1.27"
        assert (await a.block("nginx:1.27", None, policies=["p"], kind="trivy", rule="r")) == (key, False)
        await _until(lambda: key in b.entries)
        assert key in _file(b) and changes == ["b"]

        shared.up = False  # the database goes away: the last known entries stay
        await asyncio.sleep(0.1)
        assert key in b.entries
        held, changed = await b.block("redis:7", None, policies=["p"], kind="trivy", rule="r")
        assert changed and held in b.entries and b.held == {held}  # in force here at once
        assert await b.clear([key]) == [key] and key not in _file(b)
        assert held not in a.entries

        shared.up = True  # back: b's block and clear reach the shared list, and a follows
        await _until(lambda: held in a.entries and key not in a.entries)
        assert set(shared.entries) == {held} and b.held == set()
    finally:
        await a.stop()
        await b.stop()


async def test_a_later_replica_loads_the_shared_state_and_the_first_one_seeds_it(tmp_path: Path) -> None:
    shared = FakeBlocklist()
    local = ImageBlocklist(tmp_path / "old")  # blocks made before the move to a shared database
    await local.block("nginx:1.27", None, policies=["p"], kind="falco", rule="r")
    first = ImageBlocklist(tmp_path / "old", shared=shared, poll_seconds=60)
    await first.start()
    await first.stop()
    assert set(shared.entries) == {"docker.io/library/nginx:1.27"}
    # Once seeded, never again: a stale file (its replica was away while a block was cleared) does
    # not bring the block back.
    shared.entries.clear()
    stale = ImageBlocklist(tmp_path / "old", shared=shared, poll_seconds=60)
    await stale.start()
    await stale.stop()
    assert shared.entries == {} and stale.entries == {}
    await local.block("nginx:1.27", None, policies=["p"], kind="falco", rule="r")
    shared.entries = dict(local.entries)

    later = ImageBlocklist(tmp_path / "new", shared=shared, poll_seconds=60)
    assert later.entries == {}
    await later.start()
    await later.stop()
    assert set(later.entries) == {"docker.io/library/nginx:1.27"} and set(_file(later)) == set(later.entries)


async def test_a_replica_starting_while_the_database_is_away_keeps_its_file(tmp_path: Path) -> None:
    shared = FakeBlocklist()
    local = ImageBlocklist(tmp_path / "s")
    await local.block("nginx:1.27", None, policies=["p"], kind="trivy", rule="r")
    shared.up = False
    blocklist = ImageBlocklist(tmp_path / "s", shared=shared, poll_seconds=0.02)
    await blocklist.start()
    try:
        assert set(blocklist.entries) == {"docker.io/library/nginx:1.27"}
        shared.entries = {"docker.io/library/redis:7": {"reference": "docker.io/library/redis:7"}}
        shared.seeded = True  # by another replica
        shared.up = True  # answers: it holds the truth
        await _until(lambda: set(blocklist.entries) == {"docker.io/library/redis:7"})
    finally:
        await blocklist.stop()


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)
