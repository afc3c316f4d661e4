"""The recording path every source uses: a ``Recorder`` persists batches of (evidence, verdict);
``BackgroundRecorder`` queues them so a webhook answer never waits for the write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import orjson
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from tribunal.model import Evidence, EvidenceKind, Subject, Verdict
from tribunal.retrying import failure, next_wait, wait_delays

log = logging.getLogger("tribunal.record")


class Record:
    """One judged piece of evidence. ``raw`` is the document as it arrived, when the source kept it.

    ``Record(evidence, verdict, ...)`` holds the objects. :meth:`deferred` holds what a store writes
    besides them (id, kind, source, time received) and a way to build each object, run on its first
    access: a source that judged in a worker process (keeping the verdict as JSON) rebuilds only what
    a recorder reads. The SQL store reads the verdict, never the evidence body. ``labels``: the
    subject's labels, when the source read them without building the Evidence (the webhook); the
    response rules then match on them and the Evidence is never built."""

    __slots__ = (
        "_evidence",
        "_load_evidence",
        "_load_verdict",
        "_verdict",
        "actions",
        "evidence_id",
        "kind",
        "labels",
        "raw",
        "received_at",
        "source",
    )

    def __init__(
        self,
        evidence: Evidence,
        verdict: Verdict,
        raw: bytes | None = None,
        actions: tuple[dict[str, object], ...] = (),
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.evidence_id: str = evidence.id
        self.kind: EvidenceKind = evidence.kind
        self.source: str = evidence.source
        self.received_at: datetime = evidence.received_at
        self.raw = raw
        self.actions = actions
        self.labels = labels
        self._evidence: Evidence | None = evidence
        self._verdict: Verdict | None = verdict
        self._load_evidence: Callable[[], Evidence] | None = None
        self._load_verdict: Callable[[], Verdict] | None = None

    @classmethod
    def deferred(
        cls,
        evidence_id: str,
        kind: EvidenceKind,
        source: str,
        received_at: datetime,
        load_evidence: Callable[[], Evidence],
        load_verdict: Callable[[], Verdict],
        raw: bytes | None = None,
        actions: tuple[dict[str, object], ...] = (),
        labels: Mapping[str, str] | None = None,
    ) -> Record:
        """A record whose Evidence and Verdict are built when first needed."""
        record = cls.__new__(cls)
        record.evidence_id, record.kind, record.source = evidence_id, kind, source
        record.received_at, record.raw, record.actions = received_at, raw, actions
        record.labels = labels
        record._evidence = record._verdict = None
        record._load_evidence, record._load_verdict = load_evidence, load_verdict
        return record

    @property
    def evidence(self) -> Evidence:
        if self._evidence is None:
            assert self._load_evidence is not None
            self._evidence, self._load_evidence = self._load_evidence(), None
        return self._evidence

    @property
    def verdict(self) -> Verdict:
        if self._verdict is None:
            assert self._load_verdict is not None
            self._verdict, self._load_verdict = self._load_verdict(), None
        return self._verdict

    @property
    def subject(self) -> Subject:
        """The evidence's subject (the verdict's copy of it, while the evidence is not built)."""
        return self._evidence.subject if self._evidence is not None else self.verdict.subject

    def __repr__(self) -> str:
        return f"Record({self.evidence_id!r}, raw={len(self.raw or b'')} bytes, actions={len(self.actions)})"


class Recorder(Protocol):
    """Persists records. ``record`` must be idempotent on ``evidence.id``: sources redeliver."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def record(self, records: Sequence[Record]) -> None: ...


@runtime_checkable
class ClaimingRecorder(Protocol):
    """A Recorder that also says which records it had not seen: ``record_new`` records like
    ``record`` and returns the evidence ids recorded for the first time (the SQL store: insert ... on
    conflict do nothing returning id)."""

    async def record_new(self, records: Sequence[Record]) -> Collection[str]: ...


Outcomes = Mapping[str, Sequence[dict[str, Any]]]
"""Action outcomes by evidence id."""


@runtime_checkable
class ActionOutbox(Protocol):
    """A Recorder that keeps an outbox of actions for sources that record first and act after:
    ``record_to_act`` records and returns the ids to act on (new ones, and ones recorded before whose
    actions never settled); ``settle_actions`` marks their actions done and, in the same transaction,
    records the ``outcomes`` of those it took out of the outbox (the SQL store). Settling is
    idempotent: evidence already settled is left alone, and its outcomes are not written again."""

    async def record_to_act(self, records: Sequence[Record]) -> list[str]: ...

    async def settle_actions(self, evidence_ids: Sequence[str], outcomes: Outcomes | None = None) -> None: ...


@runtime_checkable
class UnsettledActions(Protocol):
    """An action outbox that hands back what was recorded but never acted on: ``claim_unsettled``
    leases up to ``limit`` entries older than ``grace`` and returns them as Records (the SQL store)."""

    async def claim_unsettled(self, grace: timedelta, limit: int = 100) -> list[Record]: ...

    async def settle_actions(self, evidence_ids: Sequence[str], outcomes: Outcomes | None = None) -> None: ...


@runtime_checkable
class Connecting(Protocol):
    """A Recorder that may be started before its database answers (the SQL store with
    ``wait_for_database``): ``connected`` says whether it does yet; ``wait_connected`` returns once
    it does."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self) -> None: ...


# Waits between attempts at settling the actions of verdicts that were acted on (then every last one,
# until it succeeds or the caller stops): settling is idempotent, and until it succeeds the outbox
# still holds the entries, so giving up would have the outbox sweep act on them a second time.
SETTLE_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


async def settle_until_done(
    outbox: ActionOutbox | UnsettledActions,
    evidence_ids: Sequence[str],
    outcomes: Outcomes | None = None,
    *,
    delays: Sequence[float] = SETTLE_DELAYS,
    on_retry: Callable[[], None] | None = None,
) -> None:
    """``outbox.settle_actions(evidence_ids, outcomes)``, tried again after each of ``delays`` (then
    every last delay) until it succeeds: the store may be down or restarting. Each failure is logged
    with its cause. Cancelled (a stop) before it succeeds, the entries stay in the outbox."""
    if not evidence_ids:
        return

    failures = 0

    def failed(state: RetryCallState) -> None:
        nonlocal failures
        failures += 1
        if on_retry is not None:
            on_retry()
        exc = failure(state)
        log.warning(
            "marking the actions of %d verdicts done failed (attempt %d), retrying in %g s: %s: %s",
            len(evidence_ids),
            state.attempt_number,
            next_wait(state),
            type(exc).__name__,
            exc,
        )

    retrying = AsyncRetrying(wait=wait_delays(delays), before_sleep=failed, reraise=True)
    async for attempt in retrying:
        with attempt:
            if outcomes is None:
                await outbox.settle_actions(evidence_ids)
            else:
                await outbox.settle_actions(evidence_ids, outcomes)
    if failures:
        log.info("marked the actions of %d verdicts done after %d failures", len(evidence_ids), failures)


async def record_claiming(recorder: Recorder, records: Sequence[Record]) -> list[Record]:
    """Record ``records``; the ones recorded for the first time (all of them, for a recorder that
    cannot tell)."""
    if not records:
        return []
    if isinstance(recorder, ClaimingRecorder):
        new_ids = set(await recorder.record_new(records))
        return [r for r in records if r.evidence_id in new_ids]
    await recorder.record(records)
    return list(records)


class LogRecorder:
    """Records as one structured log line per verdict (logger ``tribunal.record``), for when no store
    is configured."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def record(self, records: Sequence[Record]) -> None:
        for item in records:
            v = item.verdict
            line = {
                "evidence_id": v.evidence_id,
                "kind": v.kind.value,
                "subject": v.subject.key(),
                "decision": v.decision.value,
                "policies": sorted({x.policy for x in v.violations}),
                "revision": v.policy_revision,
                "latency_ms": v.latency_ms,
            }
            log.info("verdict %s", orjson.dumps(line).decode())


# Waits between attempts at a batch whose write failed (writes are idempotent on the evidence id, so
# a retry never records a verdict twice): about 15 s in all, long enough for a database restart or
# failover; after that the batch is given up, counted and logged.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
DROP_LOG_INTERVAL = 10.0


ActOn = Callable[[Sequence[Record]], None]
"""Hands records to the response rules without waiting (the Responder's ``spawn``)."""


class BackgroundRecorder:
    """Queues records and writes them in batches from one background task.

    A failed write is retried after each of ``retry_delays`` (the store may be restarting); a batch
    that still fails is given up and counted in ``failed``. ``offer`` never waits: when the queue is
    full (the store has been down or slow for a while) the record is dropped and counted in
    ``dropped``, so the memory a store outage costs is bounded by ``max_queue``. ``put`` waits for
    room instead (back-pressure). ``stop`` writes what is queued, for at most ``drain_seconds``; what a
    store that is still down did not take by then is counted in ``dropped``.

    With ``act`` and a recorder that keeps an action outbox (:class:`ActionOutbox`), each batch is
    recorded into the outbox (``record_to_act``) and the records to act on are handed to ``act`` once
    they are in it: a crash after the write is acted on by the outbox sweep. ``act_unrecorded`` gets
    the records the store never took (dropped, or given up): their actions still run, outside the
    outbox. A recorder that is :class:`Connecting` is waited for before the first write.
    ``owns_recorder``: ``start`` and ``stop`` start and stop the recorder too (not when the
    composition runs the store as a component of its own)."""

    def __init__(
        self,
        recorder: Recorder,
        max_queue: int = 10_000,
        batch_size: int = 500,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        drain_seconds: float = 20.0,
        act: ActOn | None = None,
        act_unrecorded: ActOn | None = None,
        owns_recorder: bool = True,
    ) -> None:
        self.recorder = recorder
        self.batch_size = batch_size
        self.retry_delays = tuple(retry_delays)
        self.drain_seconds = drain_seconds
        self.act = act
        self.act_unrecorded = act_unrecorded
        self.owns_recorder = owns_recorder
        self._outbox = recorder if act is not None and isinstance(recorder, ActionOutbox) else None
        self._queue: asyncio.Queue[Record] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._writing = 0  # records of the batch being written (or retried)
        self._batch: list[Record] = []
        self.recorded = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self._drops_logged = 0
        self._drop_logged_at: float | None = None

    async def start(self) -> None:
        if self.owns_recorder:
            await self.recorder.start()
        self._task = asyncio.create_task(self._run(), name="tribunal-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            # A store that never connected takes nothing: no point waiting for it.
            never = isinstance(self.recorder, Connecting) and not self.recorder.connected
            if never:
                unwritten = self._queue.qsize()
            else:
                try:
                    await asyncio.wait_for(self._queue.join(), self.drain_seconds)
                    unwritten = 0
                except TimeoutError:
                    unwritten = self._writing + self._queue.qsize()
            if unwritten:
                self.dropped += unwritten
                log.error(
                    "stopped with %d verdicts not written: the store did not take them within %g s",
                    unwritten,
                    0 if never else self.drain_seconds,
                )
                self._unrecorded([*self._batch, *self._drain_queue()])
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.owns_recorder:
            await self.recorder.stop()

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return self._queue.qsize()

    def submit(self, record: Record) -> None:
        """Queue ``record``; raises asyncio.QueueFull when the queue is full (see ``offer``)."""
        self._queue.put_nowait(record)

    def offer(self, record: Record) -> bool:
        """Queue ``record`` if there is room; otherwise drop it, count it in ``dropped`` and log (at
        most every ``DROP_LOG_INTERVAL`` seconds). Never waits."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            self._log_drops()
            self._unrecorded([record])
            return False
        return True

    async def put(self, record: Record) -> None:
        """Queue ``record``, waiting for room when the queue is full."""
        await self._queue.put(record)

    async def flush(self) -> None:
        """Wait until everything queued so far is written (or given up)."""
        await self._queue.join()

    def _log_drops(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._drop_logged_at is not None and now - self._drop_logged_at < DROP_LOG_INTERVAL:
            return
        log.error(
            "the recorder queue is full (%d verdicts: the store is down or too slow); %d verdicts "
            "dropped since the last report",
            self._queue.maxsize,
            self.dropped - self._drops_logged,
        )
        self._drops_logged, self._drop_logged_at = self.dropped, now

    def _drain_queue(self) -> list[Record]:
        records = []
        while not self._queue.empty():
            records.append(self._queue.get_nowait())
            self._queue.task_done()
        return records

    def _unrecorded(self, records: Sequence[Record]) -> None:
        """Records the store will not take: acted on all the same, outside the outbox."""
        if records and self.act_unrecorded is not None:
            try:
                self.act_unrecorded(records)
            except Exception:
                log.exception("acting on %d verdicts that were not recorded failed", len(records))

    async def _run(self) -> None:
        if isinstance(self.recorder, Connecting) and not self.recorder.connected:
            await self.recorder.wait_connected()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._writing = len(batch)
            self._batch = batch
            try:
                await self._write(batch)
            finally:
                self._writing = 0
                self._batch = []
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[Record]) -> None:
        attempts = len(self.retry_delays) + 1

        def failed(state: RetryCallState) -> None:
            self.retries += 1
            exc = failure(state)
            log.warning(
                "recording %d verdicts failed (attempt %d of %d), retrying in %g s: %s: %s",
                len(batch),
                state.attempt_number,
                attempts,
                next_wait(state),
                type(exc).__name__,
                exc,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_delays(self.retry_delays),
            before_sleep=failed,
            reraise=True,
        )
        to_act: set[str] = set()
        try:
            if self._outbox is not None:
                to_act = set(await retrying(self._outbox.record_to_act, batch))
            else:
                await retrying(self.recorder.record, batch)
        except Exception:  # logged and counted; the source keeps serving
            self.failed += len(batch)
            log.exception("recording %d verdicts failed %d times; given up", len(batch), attempts)
            self._unrecorded(batch)
            return
        self.recorded += len(batch)
        if self.act is not None:
            acting = batch if self._outbox is None else [r for r in batch if r.evidence_id in to_act]
            if acting:
                try:
                    self.act(acting)
                except Exception:  # a bug handing them over; the outbox sweep acts later
                    log.exception("handing %d recorded verdicts to the response rules failed", len(acting))
