"""Acting on verdicts that were just recorded: dispatch each one, then add the action outcomes to the
record. Sources that record first (Kafka, HTTP ingest, the webhook with the SQL store) hand their new
records here, so a redelivered message, already recorded, is never acted on twice.

With an action outbox (the SQL store), the outcomes are written together with the settle (the
outbox entries deleted, in one transaction), and the settle is retried until the store takes it: a
store outage between acting and settling delays the settle, it never leaves the entries for the
outbox sweep to act on again. While a verdict is being acted on or settled here, ``holds`` says so,
and the sweep leaves it alone.

An action that still fails transiently after the dispatcher's own retries (a receiver down for longer
than they last) does not settle its verdict: the entry stays in the outbox, and the outbox sweep hands
it back for another try of just the failed actions, after a backoff that doubles from
``outbox_grace_seconds`` (up to 8 times it), ``outbox_retries`` times at most; then it settles with
the failure recorded. The actions that succeeded meanwhile are kept and recorded with the rest. A
crash during that time leaves the entry in the outbox: the next process acts on all of its actions
again (at least once)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from tribunal.actions.dispatcher import ActionKey, Dispatcher, action_key
from tribunal.store import SETTLE_DELAYS, ActionOutbox, Record, settle_until_done

log = logging.getLogger(__name__)

RecordActions = Callable[[str, Sequence[dict[str, Any]]], Awaitable[None]]


@dataclass
class _Retry:
    """A verdict left in the outbox because some of its actions failed transiently."""

    tries: int  # outbox retries taken so far (the first dispatch is not one)
    due: float  # time.monotonic() before which the sweep leaves it alone
    kept: list[dict[str, Any]]  # outcomes of the actions that need no retry
    failed: frozenset[ActionKey]  # the actions to run again


def _transient(outcome: dict[str, Any]) -> bool:
    return outcome.get("status") == "failure" and bool(outcome.get("retriable"))


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
        self._retries: dict[str, _Retry] = {}
        self._settle_retries: Counter | None = None
        self._deferred: Counter | None = None
        if registry is not None:
            self._deferred = Counter(
                "tribunal_outbox_action_retries",
                "Verdicts left in the outbox for another try because an action failed transiently "
                "after its retries (the receiver down); the outbox sweep tries the failed actions again.",
                registry=registry,
            )
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
        """Whether this responder is acting on ``evidence_id``, or settling its actions, or waiting
        to try its failed actions again (the backoff has not run out)."""
        retry = self._retries.get(evidence_id)
        return evidence_id in self._holding or (retry is not None and time.monotonic() < retry.due)

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
        settled: dict[str, list[dict[str, Any]]] = {}
        for record, got in zip(records, outcomes, strict=True):
            if (all_outcomes := self._settle_or_retry(record.evidence_id, got)) is not None:
                settled[record.evidence_id] = all_outcomes
        retried = self._settle_retries.inc if self._settle_retries is not None else None
        await settle_until_done(
            self.outbox,
            list(settled),
            settled,
            delays=self.settle_delays,
            on_retry=retried,
        )

    def _settle_or_retry(self, evidence_id: str, got: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The outcomes to settle ``evidence_id`` with, or None: some of its actions failed
        transiently and get another try (it stays in the outbox)."""
        before = self._retries.pop(evidence_id, None)
        kept = before.kept if before is not None else []
        tries = before.tries if before is not None else 0
        failed = [o for o in got if _transient(o)]
        if not failed:
            return kept + got
        settings = self.dispatcher.settings
        if tries >= settings.outbox_retries:
            log.warning(
                "giving up on %d actions of %s after %d outbox retries: recorded as failed",
                len(failed),
                evidence_id,
                tries,
            )
            return kept + got
        grace = settings.outbox_grace_seconds
        delay = min(grace * 2.0**tries, grace * 8)
        self._retries[evidence_id] = _Retry(
            tries=tries + 1,
            due=time.monotonic() + delay,
            kept=kept + [o for o in got if not _transient(o)],
            failed=frozenset(action_key(o) for o in failed),
        )
        if self._deferred is not None:
            self._deferred.inc()
        log.info(
            "%d actions of %s failed transiently: left in the outbox, tried again in %g s (retry %d of %d)",
            len(failed),
            evidence_id,
            delay,
            tries + 1,
            settings.outbox_retries,
        )
        return None

    async def _act_only(self, records: Sequence[Record]) -> None:
        await asyncio.gather(*(self._dispatch(r) for r in records))

    async def _dispatch(self, record: Record) -> list[dict[str, Any]]:
        retry = self._retries.get(record.evidence_id)
        # A retry runs just the actions that failed.
        only: dict[str, Any] = {} if retry is None else {"only": retry.failed}
        try:
            if record.labels is not None:  # the Evidence was never built: the rules match on labels
                return await self.dispatcher.dispatch(None, record.verdict, record.labels, **only)
            return await self.dispatcher.dispatch(record.evidence, record.verdict, **only)
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
