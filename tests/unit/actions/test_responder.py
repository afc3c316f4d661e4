"""The responder with an action outbox: the outcomes are settled with the outbox entries in one call,
retried until the store takes it; while a verdict is acted on or settled it is held (the outbox
sweep and a second caller leave it alone); held at once by ``spawn``, released however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from prometheus_client import CollectorRegistry

from tribunal.actions.responder import Responder
from tribunal.model import Decision, EvidenceKind, Subject, Verdict
from tribunal.settings import ActionSettings
from tribunal.store import Record


def _verdict(evidence_id: str) -> Verdict:
    return Verdict(
        evidence_id=evidence_id,
        kind=EvidenceKind.FALCO,
        subject=Subject(namespace="shop"),
        decision=Decision.DENY,
        policy_revision="r1",
        engine="regorus",
        evaluated_at=datetime(2025, 1, 1, tzinfo=UTC),
        latency_ms=0.1,
    )


def _record(evidence_id: str, labels: Mapping[str, str] | None = None) -> Record:
    labels = {} if labels is None else labels

    def unbuilt() -> NoReturn:
        raise AssertionError("the Evidence is not built when the labels are known")

    return Record.deferred(
        evidence_id,
        EvidenceKind.FALCO,
        "test",
        datetime(2025, 1, 1, tzinfo=UTC),
        unbuilt,
        lambda: _verdict(evidence_id),
        labels=labels,
    )


class Dispatcher:
    """Acts by noting the evidence id; ``gate`` (when set) holds every action until it opens."""

    def __init__(self) -> None:
        self.acted: list[str] = []
        self.labels: list[Mapping[str, str] | None] = []
        self.gate: asyncio.Event | None = None

    async def dispatch(
        self, evidence: Any, verdict: Verdict, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        self.acted.append(verdict.evidence_id)
        self.labels.append(labels)
        if self.gate is not None:
            await self.gate.wait()
        return [{"action": "alert", "target": "webhook", "status": "success"}]


class Outbox:
    """Settles after ``failures`` failed tries (the store away), keeping what each try was given."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.tries = 0
        self.settled: dict[str, Sequence[dict[str, Any]]] = {}

    async def record_to_act(self, records: Sequence[Record]) -> list[str]:
        raise AssertionError("not recorded here")

    async def settle_actions(
        self, evidence_ids: Sequence[str], outcomes: Mapping[str, Sequence[dict[str, Any]]] | None = None
    ) -> None:
        self.tries += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("the database is away")
        assert outcomes is not None
        for evidence_id in evidence_ids:
            self.settled.setdefault(evidence_id, outcomes[evidence_id])


def _responder(
    dispatcher: Dispatcher | FlakyDispatcher, outbox: Outbox, registry: CollectorRegistry
) -> Responder:
    async def no_record_actions(evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> None:
        raise AssertionError("with an outbox, outcomes go with the settle")

    return Responder(
        dispatcher,  # type: ignore[arg-type]
        no_record_actions,
        outbox=outbox,
        registry=registry,
        settle_delays=(0.001,),
    )


async def test_a_failed_settle_is_retried_with_the_outcomes_and_nothing_is_acted_on_twice() -> None:
    dispatcher, outbox, registry = Dispatcher(), Outbox(failures=3), CollectorRegistry()
    responder = _responder(dispatcher, outbox, registry)
    await responder.respond([_record("a"), _record("b")])
    assert dispatcher.acted == ["a", "b"]
    assert outbox.tries == 4 and set(outbox.settled) == {"a", "b"}
    assert outbox.settled["a"] == [{"action": "alert", "target": "webhook", "status": "success"}]
    assert registry.get_sample_value("tribunal_outbox_settle_retries_total") == 3
    assert not responder.holds("a") and responder.held == 0


async def test_verdicts_are_held_while_acted_on_and_settled_and_a_second_caller_skips_them() -> None:
    dispatcher, outbox = Dispatcher(), Outbox(failures=2)
    dispatcher.gate = asyncio.Event()
    responder = _responder(dispatcher, outbox, CollectorRegistry())
    responder.spawn([_record("a"), _record("b")])
    assert responder.holds("a") and responder.holds("b")  # held at once, before the task runs
    second = asyncio.create_task(responder.respond([_record("b"), _record("c")]))
    await asyncio.sleep(0.01)
    dispatcher.gate.set()
    await second
    await responder.stop()
    assert sorted(dispatcher.acted) == ["a", "b", "c"]  # b once, by the first caller
    assert set(outbox.settled) == {"a", "b", "c"} and responder.held == 0
    assert not any(responder.holds(i) for i in "abc")


async def test_a_stop_while_the_store_is_away_leaves_the_entries_for_the_sweep() -> None:
    dispatcher, outbox = Dispatcher(), Outbox(failures=10**6)
    responder = _responder(dispatcher, outbox, CollectorRegistry())
    responder.grace = 0.05
    responder.spawn([_record("a")])
    await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        await responder.stop()
    assert dispatcher.acted == ["a"] and outbox.settled == {} and responder.held == 0


async def test_labels_stand_in_for_the_evidence_and_unrecorded_verdicts_are_acted_on_unsettled() -> None:
    dispatcher, outbox = Dispatcher(), Outbox()
    responder = _responder(dispatcher, outbox, CollectorRegistry())
    responder.spawn_unrecorded([_record("lost", labels={"app": "web"})])
    await responder.stop()
    assert dispatcher.acted == ["lost"] and dispatcher.labels == [{"app": "web"}]
    assert outbox.tries == 0


async def test_without_an_outbox_the_outcomes_are_recorded_one_verdict_at_a_time() -> None:
    dispatcher, recorded = Dispatcher(), []

    async def record_actions(evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> None:
        recorded.append((evidence_id, len(outcomes)))

    responder = Responder(dispatcher, record_actions)  # type: ignore[arg-type]
    responder.spawn([_record("a", labels={}), _record("b", labels={})])
    await responder.stop()
    assert sorted(recorded) == [("a", 1), ("b", 1)] and responder.held == 0


class FlakyDispatcher:
    """Two actions per verdict (rule r): an annotate that succeeds, and an alert that fails
    transiently ``down`` times, then succeeds; records what each call was asked to run."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.settings = ActionSettings(outbox_grace_seconds=0.01, outbox_retries=3)
        self.calls: list[frozenset[tuple[str, str, str]] | None] = []

    async def dispatch(
        self,
        evidence: Any,
        verdict: Verdict,
        labels: Mapping[str, str] | None = None,
        *,
        only: frozenset[tuple[str, str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append(only)
        out = []
        if only is None or ("r", "annotate", "kubernetes") in only:
            out.append({"rule": "r", "action": "annotate", "target": "kubernetes", "status": "success"})
        if only is None or ("r", "alert", "webhook") in only:
            if self.down:
                self.down -= 1
                out.append(
                    {
                        "rule": "r",
                        "action": "alert",
                        "target": "webhook",
                        "status": "failure",
                        "retriable": True,
                    }
                )
            else:
                out.append({"rule": "r", "action": "alert", "target": "webhook", "status": "success"})
        return out


async def test_an_action_failing_transiently_stays_in_the_outbox_and_only_it_is_tried_again() -> None:
    dispatcher, outbox, registry = FlakyDispatcher(down=2), Outbox(), CollectorRegistry()
    responder = _responder(dispatcher, outbox, registry)
    await responder.respond([_record("a")])
    assert outbox.settled == {}  # before the fix: settled with the failure, the alert never sent
    assert responder.holds("a")  # the backoff: the sweep leaves it alone for now
    for _ in range(2):  # what the outbox sweep does once the entry is due again
        await asyncio.sleep(0.1)
        assert not responder.holds("a")
        await responder.respond([_record("a")])
    alert = ("r", "alert", "webhook")
    assert dispatcher.calls == [None, frozenset({alert}), frozenset({alert})]  # the annotate ran once
    assert [(o["action"], o["status"]) for o in outbox.settled["a"]] == [
        ("annotate", "success"),
        ("alert", "success"),
    ]
    assert registry.get_sample_value("tribunal_outbox_action_retries_total") == 2


async def test_an_action_still_failing_after_the_outbox_retries_is_settled_as_failed() -> None:
    dispatcher, outbox = FlakyDispatcher(down=10), Outbox()
    responder = _responder(dispatcher, outbox, CollectorRegistry())
    for _ in range(4):  # the first try and outbox_retries=3 more
        assert outbox.settled == {}
        await responder.respond([_record("a")])
        await asyncio.sleep(0.1)
    assert [o["status"] for o in outbox.settled["a"]] == ["success", "failure"]
    assert not responder.holds("a")
