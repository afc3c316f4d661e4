"""The outbox sweep's loop against an in-memory outbox (the SQL store's claim and lease are tested
for real in tests/integration/test_outbox.py): a pass drains every batch, a failed pass is counted
and retried, and stop is bounded while an action hangs, leaving the batch unsettled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from prometheus_client import CollectorRegistry

from tribunal.actions.outbox import OutboxSweep
from tribunal.model import EvidenceKind
from tribunal.store import Record


def _record(evidence_id: str) -> Record:
    def unused() -> NoReturn:
        raise AssertionError("the sweep reads only the evidence id")

    return Record.deferred(
        evidence_id, EvidenceKind.FALCO, "test", datetime(2025, 1, 1, tzinfo=UTC), unused, unused
    )


class MemoryOutbox:
    def __init__(self, ids: Sequence[str], failures: int = 0) -> None:
        self.pending = {i: _record(i) for i in ids}
        self.claimed: set[str] = set()
        self.settled: list[str] = []
        self.failures = failures

    async def claim_unsettled(self, grace: timedelta, limit: int = 100) -> list[Record]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database is away")
        due = [r for i, r in sorted(self.pending.items()) if i not in self.claimed][:limit]
        self.claimed.update(r.evidence_id for r in due)
        return due

    async def settle_actions(self, evidence_ids: Sequence[str]) -> None:
        for i in evidence_ids:
            del self.pending[i]
        self.settled.extend(evidence_ids)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_one_pass_acts_on_every_batch_and_settles_them() -> None:
    ids = [f"e{i}" for i in range(5)]
    outbox, acted, registry = MemoryOutbox(ids), [], CollectorRegistry()

    async def respond(records: Sequence[Record]) -> None:
        acted.append([r.evidence_id for r in records])

    sweep = OutboxSweep(outbox, respond, registry, grace=60, batch_size=2)
    assert await sweep.sweep() == 5
    assert acted == [["e0", "e1"], ["e2", "e3"], ["e4"]]
    assert outbox.settled == ids and outbox.pending == {}
    assert _value(registry, "tribunal_outbox_replayed_total") == 5
    assert await sweep.sweep() == 0


async def test_a_failed_pass_is_counted_and_the_next_one_acts() -> None:
    outbox, registry, done = MemoryOutbox(["a"], failures=1), CollectorRegistry(), asyncio.Event()

    async def respond(records: Sequence[Record]) -> None:
        done.set()

    sweep = OutboxSweep(outbox, respond, registry, grace=60, interval=0.01)
    await sweep.start()
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await sweep.stop()
    assert _value(registry, "tribunal_outbox_sweeps_total", result="error") == 1
    assert outbox.settled == ["a"]


async def test_stop_is_bounded_while_acting_and_leaves_the_batch_unsettled() -> None:
    outbox, registry, entered = MemoryOutbox(["stuck"]), CollectorRegistry(), asyncio.Event()

    async def respond(records: Sequence[Record]) -> None:
        entered.set()
        await asyncio.Event().wait()  # an action that never returns

    sweep = OutboxSweep(outbox, respond, registry, grace=60, stop_grace=0.01)
    await sweep.start()
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.wait_for(sweep.stop(), 10)
    assert outbox.settled == [] and "stuck" in outbox.pending
    assert _value(registry, "tribunal_outbox_replayed_total") == 0


async def test_entries_this_process_holds_are_left_to_it_and_a_settling_respond_is_not_settled_again() -> (
    None
):
    outbox, acted, registry = MemoryOutbox(["held", "free"]), [], CollectorRegistry()

    async def respond(records: Sequence[Record]) -> None:  # the Responder: it settles itself
        acted.extend(r.evidence_id for r in records)
        await outbox.settle_actions([r.evidence_id for r in records])

    sweep = OutboxSweep(
        outbox, respond, registry, grace=60, settle=False, holding=lambda evidence_id: evidence_id == "held"
    )
    assert await sweep.sweep() == 1
    assert acted == ["free"] and outbox.settled == ["free"]  # "held" is acted on and settled elsewhere
    assert "held" in outbox.pending and _value(registry, "tribunal_outbox_replayed_total") == 1


async def test_a_settle_that_fails_is_retried_not_left_for_the_next_pass() -> None:
    outbox, registry = MemoryOutbox(["a"]), CollectorRegistry()
    failures = 2
    settle = outbox.settle_actions

    async def flaky_settle(evidence_ids: Sequence[str]) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("the database is away")
        await settle(evidence_ids)

    outbox.settle_actions = flaky_settle  # type: ignore[method-assign]
    acted: list[str] = []

    async def respond(records: Sequence[Record]) -> None:
        acted.extend(r.evidence_id for r in records)

    sweep = OutboxSweep(outbox, respond, registry, grace=60)
    assert await sweep.sweep() == 1
    assert acted == ["a"] and outbox.settled == ["a"] and failures == 0
