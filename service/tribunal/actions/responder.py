"""Acting on verdicts that were just recorded: dispatch each one, then add the action outcomes to the
record. Sources that record first (Kafka, HTTP ingest, the webhook with the SQL store) hand their new
records here, so a redelivered message, already recorded, is never acted on twice.

With an action outbox (the SQL store), the outcomes are written together with the settle (the
outbox entries deleted, in one transaction), and the settle is retried until the store takes it: a
store outage between acting and settling delays the settle, it never leaves the entries for the
outbox sweep to act on again. While a verdict is being acted on or settled here, ``holds`` says so,
and the sweep leaves it alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from tribunal.actions.dispatcher import Dispatcher
from tribunal.store import SETTLE_DELAYS, ActionOutbox, Record, settle_until_done

log = logging.getLogger(__name__)

RecordActions = Callable[[str, Sequence[dict[str, Any]]], Awaitable[None]]


class Responder:
    """``respond(records)`` acts on each record's verdict and records the outcomes; ``spawn`` does
    the same in the background (``stop`` waits for it, up to ``grace`` seconds).

    Without ``outbox`` the outcomes go to ``record_actions``, one verdict at a time. With it, the
    records are outbox entries (``record_to_act`` returned them, or the sweep claimed them): they are
    settled with their outcomes once acted on, retried after each of ``settle_delays`` (then every
    last one) until the store takes it, and records this responder already holds are skipped (another
    call acts on them). ``spawn_unrecorded`` acts on verdicts the store never took (nothing recorded)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        record_actions: RecordActions,
        grace: float = 10.0,
        *,
        outbox: ActionOutbox | None = None,
        registry: CollectorRegistry | None = None,
        settle_delays: Sequence[float] = SETTLE_DELAYS,
    ) -> None:
        self.dispatcher = dispatcher
        self.record_actions = record_actions
        self.grace = grace
        self.outbox = outbox
        self.settle_delays = tuple(settle_delays)
        self._pending: set[asyncio.Task[None]] = set()
        self._holding: set[str] = set()
        self._settle_retries: Counter | None = None
        if registry is not None:
            self._settle_retries = Counter(
                "tribunal_outbox_settle_retries",
                "Settles of acted-on verdicts (outcomes written, outbox entries deleted) that failed and "
                "were tried again (the store down or restarting).",
                registry=registry,
            )
            held = Gauge(
                "tribunal_outbox_held",
                "Verdicts being acted on, or acted on and waiting for their settle, in this process.",
                registry=registry,
            )
            held.set_function(lambda: len(self._holding))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self.grace)
            for task in late:
                task.cancel()
            if late:
                log.warning(
                    "stopped with %d batches of verdicts still being acted on or settled; what they did "
                    "not settle stays in the outbox",
                    len(late),
                )
                await asyncio.wait(late, timeout=1.0)  # let them see the cancellation

    def holds(self, evidence_id: str) -> bool:
        """Whether this responder is acting on ``evidence_id``, or settling its actions."""
        return evidence_id in self._holding

    @property
    def held(self) -> int:
        """How many verdicts are being acted on or settled."""
        return len(self._holding)

    async def respond(self, records: Sequence[Record]) -> None:
        """Act on ``records`` and record the outcomes (with an outbox: settle them with the
        outcomes, retried until the store takes it)."""
        if self.outbox is None:
            await asyncio.gather(*(self._one(r) for r in records))
            return
        mine = self._hold(records)
        try:
            await self._act_and_settle(mine)
        finally:
            self._release(mine)

    def spawn(self, records: Sequence[Record]) -> None:
        """``respond`` in the background. Interrupted before the settle (a stop past ``grace``, a
        crash), the records stay in the outbox, for the outbox sweep."""
        if not records:
            return
        if self.outbox is None:
            self._track(self.respond(records))
            return
        mine = self._hold(records)  # held at once: the sweep must not take them meanwhile
        if mine:
            self._track(self._held(mine))

    def spawn_unrecorded(self, records: Sequence[Record]) -> None:
        """Act in the background on verdicts the store did not take: nothing is recorded, and a
        crash meanwhile loses the actions."""
        if records:
            self._track(self._act_only(records))

    async def _held(self, mine: list[Record]) -> None:
        try:
            await self._act_and_settle(mine)
        finally:
            self._release(mine)

    async def _act_and_settle(self, records: list[Record]) -> None:
        if not records:
            return
        assert self.outbox is not None
        outcomes = await asyncio.gather(*(self._dispatch(r) for r in records))
        ids = [r.evidence_id for r in records]
        retried = self._settle_retries.inc if self._settle_retries is not None else None
        await settle_until_done(
            self.outbox,
            ids,
            dict(zip(ids, outcomes, strict=True)),
            delays=self.settle_delays,
            on_retry=retried,
        )

    async def _act_only(self, records: Sequence[Record]) -> None:
        await asyncio.gather(*(self._dispatch(r) for r in records))

    async def _dispatch(self, record: Record) -> list[dict[str, Any]]:
        try:
            if record.labels is not None:  # the Evidence was never built: the rules match on labels
                return await self.dispatcher.dispatch(None, record.verdict, record.labels)
            return await self.dispatcher.dispatch(record.evidence, record.verdict)
        except Exception:  # failed actions are outcomes; this is a bug
            log.exception("acting on %s failed", record.evidence_id)
            return []

    async def _one(self, record: Record) -> None:
        try:
            outcomes = await self._dispatch(record)
            await self.record_actions(record.evidence_id, outcomes)
        except Exception:  # failed actions are outcomes; this is a failure to record them
            log.exception("recording the actions on %s failed", record.evidence_id)

    def _hold(self, records: Sequence[Record]) -> list[Record]:
        """The records not held yet (one each), now held."""
        mine: list[Record] = []
        for record in records:
            if record.evidence_id not in self._holding:
                self._holding.add(record.evidence_id)
                mine.append(record)
        return mine

    def _release(self, records: Sequence[Record]) -> None:
        for record in records:
            self._holding.discard(record.evidence_id)

    def _track(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
