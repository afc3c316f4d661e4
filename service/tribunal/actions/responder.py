"""Acting on verdicts that were just recorded: dispatch each one, then add the action outcomes to the
record. Sources that record first (Kafka, HTTP ingest) hand their new records here, so a redelivered
message, already recorded, is never acted on twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from tribunal.actions.dispatcher import Dispatcher
from tribunal.store import Record

log = logging.getLogger(__name__)

RecordActions = Callable[[str, Sequence[dict[str, Any]]], Awaitable[None]]
Settle = Callable[[Sequence[str]], Awaitable[None]]


class Responder:
    """``respond(records)`` acts on each record's verdict and records the outcomes; ``spawn`` does
    the same in the background (``stop`` waits for it, up to ``grace`` seconds)."""

    def __init__(self, dispatcher: Dispatcher, record_actions: RecordActions, grace: float = 10.0) -> None:
        self.dispatcher = dispatcher
        self.record_actions = record_actions
        self.grace = grace
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self.grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopped with %d verdicts still being acted on", len(late))

    async def respond(self, records: Sequence[Record]) -> None:
        await asyncio.gather(*(self._one(r) for r in records))

    def spawn(self, records: Sequence[Record], settle: Settle | None = None) -> None:
        """``respond`` in the background; then ``settle`` the evidence ids acted on (an action
        outbox's ``settle_actions``). Interrupted before that (a stop past ``grace``, a crash), they
        stay unsettled, for the outbox sweep."""
        if records:
            self._track(self._respond_and_settle(records, settle))

    async def _respond_and_settle(self, records: Sequence[Record], settle: Settle | None) -> None:
        await self.respond(records)
        if settle is None:
            return
        try:
            await settle([r.evidence_id for r in records])
        except Exception:  # they stay in the outbox: the sweep acts on them again after its grace
            log.exception("marking the actions of %d verdicts done failed", len(records))

    async def _one(self, record: Record) -> None:
        try:
            outcomes = await self.dispatcher.dispatch(record.evidence, record.verdict)
            await self.record_actions(record.evidence.id, outcomes)
        except Exception:  # failed actions are outcomes; this is a failure to record them
            log.exception("acting on %s failed", record.evidence.id)

    def _track(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
