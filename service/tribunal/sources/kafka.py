"""Evidence from Kafka: one consumer group, at-least-once, nothing lost.

Per partition, fetched messages are cut into chunks and judged in the :class:`JudgePool` at once (the
pool's workers run chunks of several partitions, and several chunks of one partition, in parallel);
one finisher task per partition then takes the chunks in offset order and, for each: sends the
rejected documents to the dead-letter topic, publishes the verdicts (keyed by subject), records them,
calls the hook with the evidence recorded for the first time, settles the hook's actions in the
action outbox (retried until the store takes it: a store outage holds the partition, it never
commits offsets past actions that are not settled), and only then marks the offsets done. Done
offsets are committed every ``commit_interval``, on partition revoke and on stop.

Idempotent on evidence id: a bounded set of the ids done in this process skips redelivered evidence
before it is published again; across processes, a Recorder with ``record_new`` (see
:class:`~tribunal.store.ClaimingRecorder`) tells which records are new, and only those reach the
hook (actions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential, wait_fixed

from tribunal.model import EvidenceKind
from tribunal.model.redact import Redaction, redact_unjudged, redact_verdict
from tribunal.policy.pool import Judged, JudgePool, Outcome, RawItem, Rejected
from tribunal.retrying import failure
from tribunal.sources.metrics import PipelineMetrics
from tribunal.store import ActionOutbox, Record, Recorder, record_claiming, settle_until_done

log = logging.getLogger(__name__)

DEFAULT_TOPICS: Mapping[str, EvidenceKind | None] = {
    "falco-events": EvidenceKind.FALCO,
    "trivy-reports": EvidenceKind.TRIVY,
    "tribunal-admissions": EvidenceKind.ADMISSION,
}

# Headers a dead letter carries besides the original message's own.
H_ERROR = "tribunal-error"
H_REASON = "tribunal-error-reason"
H_FIELD = "tribunal-error-field"
H_TOPIC = "tribunal-source-topic"
H_PARTITION = "tribunal-source-partition"
H_OFFSET = "tribunal-source-offset"
H_REDACTED = "tribunal-redacted"

COMMIT_TIMEOUT = 10.0
"""Seconds one offset commit may take before it is given up (and retried with the next)."""

LARGE_DOCUMENT = 256 * 1024
"""Documents larger than this are re-read into objects in a thread (big Trivy reports)."""

VerdictHook = Callable[[Sequence[Record]], Awaitable[None]]
"""Called with the records recorded for the first time, after they are recorded and published: where
the actions dispatcher plugs in (its Kafka alerts go out through :meth:`KafkaSource.publish`)."""


@dataclass(frozen=True)
class KafkaConfig:
    """How the consumer runs; ``topics`` maps each input topic to the evidence kind it carries."""

    bootstrap_servers: str
    topics: Mapping[str, EvidenceKind | None] = field(default_factory=lambda: dict(DEFAULT_TOPICS))
    group_id: str = "tribunal"
    verdict_topic: str = "tribunal-verdicts"
    dlq_topic: str = "tribunal-dlq"
    client_id: str = "tribunal"
    batch_size: int = 500
    """Most records one fetch (``getmany``) returns."""
    chunk_size: int = 128
    """Most records judged in one worker call; a chunk also ends after ``chunk_bytes``."""
    chunk_bytes: int = 1024 * 1024
    max_in_flight: int = 2000
    """Records of one partition fetched but not finished; past it the partition is paused."""
    stop_grace: float = 10.0
    """Seconds ``stop`` (and a revoke) waits for in-flight work before giving it up uncommitted."""
    commit_interval: float = 1.0
    seen_capacity: int = 100_000
    """Evidence ids remembered as done in this process."""
    max_message_bytes: int = 64 * 1024 * 1024
    max_request_bytes: int | None = None
    """Largest message the producer sends (verdicts, dead letters); default max_message_bytes + 64 KiB.
    Keep it at or below the broker's message.max.bytes: a verdict larger than that is dead-lettered."""
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    """A member silent this long is dropped from the group and its partitions reassigned."""
    heartbeat_interval_ms: int = 3_000
    redaction: Redaction = Redaction.SECRETS
    """What is taken out of dead letters and published verdicts (as of stored evidence)."""


class SeenIds:
    """A bounded set of evidence ids, the oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, evidence_id: object) -> bool:
        return evidence_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, evidence_id: str) -> None:
        self._ids[evidence_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


@dataclass(eq=False)
class _Chunk:
    messages: list[Any]  # aiokafka ConsumerRecord
    judging: asyncio.Task[list[Outcome]]
    fetched_at: float


@dataclass(eq=False)
class _Partition:
    tp: TopicPartition
    kind: EvidenceKind | None
    chunks: deque[_Chunk] = field(default_factory=deque)
    in_flight: int = 0
    done: int | None = None  # next offset to commit
    committed: int | None = None
    paused: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    finisher: asyncio.Task[None] | None = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.source._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.source._assign(list(assigned))


class KafkaSource:
    """Consumes the input topics, judges in ``pool``, records with ``recorder``, publishes verdicts.

    ``start`` joins the group and starts fetching; ``stop`` stops fetching, finishes in-flight work
    within ``stop_grace``, commits and leaves the group (idempotent); ``abort`` drops everything
    without committing (a crash, for tests). ``wait`` returns when the fetch loop ends.
    """

    def __init__(
        self,
        config: KafkaConfig,
        pool: JudgePool,
        recorder: Recorder,
        metrics: PipelineMetrics,
        *,
        on_recorded: VerdictHook | None = None,
        hook_settles: bool = False,
    ) -> None:
        self.config = config
        self.pool = pool
        self.recorder = recorder
        self.metrics = metrics
        self.on_recorded = on_recorded
        # With a hook to act and a recorder that keeps an action outbox, actions are at least once.
        self._outbox = recorder if on_recorded is not None and isinstance(recorder, ActionOutbox) else None
        # The hook settles the outbox entries of the records it acted on itself (the Responder, which
        # writes the outcomes in the same transaction); otherwise the source settles them after it.
        self.hook_settles = hook_settles
        self.seen = SeenIds(config.seen_capacity)
        self._consumer: Any = None
        self._producer: Any = None
        self._parts: dict[TopicPartition, _Partition] = {}
        self._fetcher: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self._revoked: set[TopicPartition] = set()  # revoked, not yet re-assigned: fetched records dropped
        self._partition_of: dict[bytes, int] = {}
        self._verdict_partitions = 0
        self._max_request_bytes = config.max_request_bytes or config.max_message_bytes + 64 * 1024

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        assert not self._started, "KafkaSource.start() called twice"
        self._started = True
        cfg = self.config
        self._producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=cfg.client_id,
            acks="all",
            linger_ms=5,
            max_request_size=self._max_request_bytes,
            # Verdicts go out as one record batch per partition and chunk: let a batch hold a chunk.
            max_batch_size=min(self._max_request_bytes, 1024 * 1024),
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=cfg.client_id,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            max_partition_fetch_bytes=min(cfg.max_message_bytes, 16 * 1024 * 1024),
            fetch_max_bytes=64 * 1024 * 1024,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            # A revoke drains in-flight work (up to stop_grace) before the member rejoins.
            rebalance_timeout_ms=max(cfg.session_timeout_ms, int(cfg.stop_grace * 1000) + 5_000),
        )
        try:
            await self._producer.start()
            self._consumer.subscribe(list(cfg.topics), listener=_Rebalance(self))
            await self._consumer.start()
        except BaseException:
            self._stopped = True
            await self._consumer.stop()
            await self._producer.stop()
            raise
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="tribunal-kafka-fetch")
        self._committer = asyncio.create_task(self._commit_loop(), name="tribunal-kafka-commit")

    async def stop(self) -> None:
        """Stop fetching, finish in-flight work (up to ``stop_grace``), commit, leave the group."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        await _cancel(self._fetcher)
        parts = list(self._parts.values())
        await self._drain(parts, self.config.stop_grace)
        await self._commit()
        await _cancel(self._committer)
        await self._drop(parts)
        await self._close_clients()
        log.info("kafka consumer stopped")

    async def abort(self) -> None:
        """Cancel everything at once and commit nothing, as a crash would."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        await _cancel(self._fetcher)
        await _cancel(self._committer)
        await self._drop(list(self._parts.values()))
        await self._close_clients()

    async def wait(self) -> None:
        """Until the fetch loop ends: on stop, or with its error."""
        if self._fetcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetcher

    async def __aenter__(self) -> KafkaSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _close_clients(self) -> None:
        """Leave the group and close both clients; bounded, so a broker that never answers (or a
        rebalance that never ends) cannot hold the stop forever."""
        limit = max(5.0, self.config.stop_grace)
        try:
            await asyncio.wait_for(self._consumer.stop(), limit)
        except TimeoutError:
            log.warning("the consumer did not leave the group within %.0fs; closing anyway", limit)
        finally:
            await self._drop(list(self._parts.values()))  # any assigned while leaving
            try:
                await asyncio.wait_for(self._producer.stop(), limit)
            except TimeoutError:
                log.warning("the producer did not flush within %.0fs", limit)

    # -- fetching --------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        # A fetch that failed for a reason Kafka calls retriable is tried again a second later.
        fetching = AsyncRetrying(
            retry=retry_if_exception(
                lambda exc: isinstance(exc, KafkaError) and getattr(exc, "retriable", False)
            ),
            wait=wait_fixed(1.0),
            before_sleep=lambda state: log.warning("kafka fetch failed, retrying: %s", failure(state)),
            reraise=True,
        )
        while True:
            batches: dict[TopicPartition, list[Any]] = await fetching(
                consumer.getmany, timeout_ms=500, max_records=self.config.batch_size
            )
            now = time.monotonic()
            for tp, messages in batches.items():
                if tp in self._revoked:
                    continue  # uncommitted: the partition's next owner gets these again
                part = self._parts.get(tp)
                if part is None:
                    if tp not in consumer.assignment():
                        continue
                    part = self._assign_one(tp)
                for chunk in self._chunks(messages):
                    items: list[RawItem] = [
                        (m.value, f"{m.topic}[{m.partition}]@{m.offset}", part.kind) for m in chunk
                    ]
                    task = asyncio.create_task(self.pool.judge_raw(items), name=f"tribunal-judge-{tp}")
                    part.chunks.append(_Chunk(chunk, task, now))
                    part.in_flight += len(chunk)
                part.idle.clear()
                part.wake.set()
                if part.in_flight >= self.config.max_in_flight and not part.paused:
                    consumer.pause(tp)
                    part.paused = True
            self._update_lag()

    def _chunks(self, messages: list[Any]) -> Iterable[list[Any]]:
        chunk: list[Any] = []
        size = 0
        for message in messages:
            length = len(message.value or b"")
            if chunk and (len(chunk) >= self.config.chunk_size or size + length > self.config.chunk_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(message)
            size += length
        if chunk:
            yield chunk

    def _update_lag(self) -> None:
        for tp, part in self._parts.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and part.done is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - part.done))
            elif highwater is not None and part.chunks:
                first = part.chunks[0].messages[0].offset
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - first))

    # -- finishing, in offset order per partition ------------------------------------------------

    async def _finish_loop(self, part: _Partition) -> None:
        while True:
            while not part.chunks:
                part.idle.set()
                part.wake.clear()
                await part.wake.wait()
            chunk = part.chunks[0]
            try:
                outcomes = await chunk.judging
            except Exception as exc:  # the pool itself failed (stopped, broken): dead-letter the chunk
                log.exception("judging %s failed", part.tp)
                outcomes = [
                    Rejected(f"{m.topic}[{m.partition}]@{m.offset}", "internal", str(exc), None, part.kind)
                    for m in chunk.messages
                ]
            await self._deliver_with_retry(part, chunk, outcomes)
            part.chunks.popleft()
            part.in_flight -= len(chunk.messages)
            part.done = chunk.messages[-1].offset + 1
            if part.paused and part.in_flight < self.config.max_in_flight:
                if part.tp in self._consumer.assignment():
                    self._consumer.resume(part.tp)
                part.paused = False

    async def _deliver_with_retry(self, part: _Partition, chunk: _Chunk, outcomes: list[Outcome]) -> None:
        """``_deliver``, tried again until it succeeds, after a wait doubling from 0.2 s up to 5 s."""

        def failed(state: RetryCallState) -> None:
            offset = chunk.messages[0].offset
            log.error("delivering %s@%d failed, retrying: %s", part.tp, offset, failure(state))

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=5.0), before_sleep=failed, reraise=True
        )
        await retrying(self._deliver, chunk, outcomes)

    async def _deliver(self, chunk: _Chunk, outcomes: list[Outcome]) -> None:
        """Dead letters and verdicts of one chunk, then records and the hook. Raises (the chunk is
        retried) on a retriable failure; a message that can never be published is dead-lettered."""
        rejected: list[tuple[Any, Rejected]] = []
        fresh: list[tuple[Any, Judged]] = []
        chunk_ids: set[str] = set()
        for message, outcome in zip(chunk.messages, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                rejected.append((message, outcome))
            elif outcome.evidence_id in self.seen or outcome.evidence_id in chunk_ids:
                self.metrics.duplicates.labels("kafka", outcome.kind.value).inc()
            else:
                chunk_ids.add(outcome.evidence_id)
                fresh.append((message, outcome))
        failed = await self._publish_verdicts([judged for _, judged in fresh])
        if failed:  # verdicts that can never be published: dead-letter their messages instead
            for index, exc in sorted(failed.items()):
                message, judged = fresh[index]
                error = f"{judged.source}: the verdict could not be published: {type(exc).__name__}: {exc}"
                log.error("%s", error)
                rejected.append((message, Rejected(judged.source, "internal", error, None, judged.kind)))
                chunk_ids.discard(judged.evidence_id)
            fresh = [f for i, f in enumerate(fresh) if i not in failed]
        letters = [await self._dead_letter(message, outcome) for message, outcome in rejected]
        for index, exc in (await self._settle(letters)).items():
            message, outcome = rejected[index]
            log.error("%s: could not be dead-lettered, dropped: %s (%s)", outcome.source, exc, outcome.error)
        new = await self._record(await self._records(fresh))
        if self.on_recorded is not None and new:
            try:
                await self.on_recorded(new)
            except Exception:  # the hook's own failures are its business; the verdicts stand
                self.metrics.delivery_errors.labels("hook").inc()
                log.exception("the verdict hook failed on %d records", len(new))
            else:
                await self._settle_actions(new)
        for evidence_id in chunk_ids:
            self.seen.add(evidence_id)
        self._count(chunk, [r for _, r in rejected], fresh)

    async def _publish_verdicts(self, verdicts: list[Judged]) -> dict[int, BaseException]:
        """Publish ``verdicts`` to the verdict topic, keyed by subject, and wait for the broker.

        Built into one record batch per partition (a C builder: far less Python per message than a
        ``send`` each). Returns, by index, the verdicts that can never be published: larger than the
        producer's request limit, or refused by the broker for good (then each of the refused batch is
        sent alone, to find which). Raises on a retriable failure: the chunk is delivered again."""
        topic = self.config.verdict_topic
        partitions = len(await self._producer.partitions_for(topic))
        if partitions != self._verdict_partitions:
            self._partition_of.clear()
            self._verdict_partitions = partitions
        failed: dict[int, BaseException] = {}
        batches: dict[int, list[tuple[Any, list[int]]]] = {}
        limit = self._max_request_bytes
        # Violations quote the evidence (a command line, a secret finding): redacted as the store's.
        mode = self.config.redaction
        values = [redact_verdict(j.kind, j.verdict_json, mode) for j in verdicts]
        for index, judged in enumerate(verdicts):
            key = judged.subject_key.encode()
            value = values[index]
            if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) > limit:
                failed[index] = MessageSizeTooLargeError(
                    f"the verdict is larger than the {limit} byte request limit (max_request_bytes)"
                )
                continue
            open_batches = batches.setdefault(self._partition(key), [])
            if not open_batches or open_batches[-1][0].append(key=key, value=value, timestamp=None) is None:
                batch = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
                open_batches.append((batch, []))
            open_batches[-1][1].append(index)
        sent: list[tuple[asyncio.Future[Any], int, list[int]]] = []
        for partition, open_batches in batches.items():
            for batch, indices in open_batches:
                future = await self._producer.send_batch(batch, topic, partition=partition)
                sent.append((future, partition, indices))
        results = await asyncio.gather(*(future for future, _, _ in sent), return_exceptions=True)
        for (_, partition, indices), result in zip(sent, results, strict=True):
            if not isinstance(result, BaseException):
                continue
            self.metrics.delivery_errors.labels("publish").inc()
            if not isinstance(result, KafkaError) or getattr(result, "retriable", False):
                raise result
            one_by_one = [
                await self._send(topic, values[i], verdicts[i].subject_key.encode(), partition)
                for i in indices
            ]
            for position, exc in (await self._settle(one_by_one)).items():
                failed[indices[position]] = exc
        return failed

    async def _dead_letter(self, message: Any, rejected: Rejected) -> asyncio.Future[Any] | BaseException:
        """Send ``message`` to the dead-letter topic, its likely secrets redacted as the store's
        evidence is (header ``tribunal-redacted`` says so when anything was taken out)."""
        headers = _dead_letter_headers(message, rejected)
        value = message.value
        if value is not None and self.config.redaction != Redaction.NONE:
            mode, kind = self.config.redaction, rejected.kind
            if len(value) > LARGE_DOCUMENT:
                redacted = await asyncio.to_thread(redact_unjudged, value, kind, mode)
            else:
                redacted = redact_unjudged(value, kind, mode)
            if redacted is not value:
                value = redacted
                headers.append((H_REDACTED, str(mode).encode()))
        return await self._send(self.config.dlq_topic, value, message.key, headers=headers)

    async def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any] | BaseException:
        """The broker's future for one message, or the error that means it can never be sent."""
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value, key=key, partition=partition, headers=headers
            )
            return future
        except KafkaError as exc:
            if getattr(exc, "retriable", False):
                raise
            error: BaseException = exc
            return error

    async def _settle(self, sends: list[asyncio.Future[Any] | BaseException]) -> dict[int, BaseException]:
        """Wait for every send; raise the first retriable failure, return the others by index."""
        futures = [s for s in sends if isinstance(s, asyncio.Future)]
        results = iter(await asyncio.gather(*futures, return_exceptions=True))
        failed: dict[int, BaseException] = {}
        for index, send in enumerate(sends):
            outcome = send if not isinstance(send, asyncio.Future) else next(results)
            if isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError) or getattr(outcome, "retriable", False):
                    self.metrics.delivery_errors.labels("publish").inc()
                    raise outcome
                if not isinstance(outcome, KafkaError):
                    self.metrics.delivery_errors.labels("publish").inc()
                    raise outcome
                failed[index] = outcome
        return failed

    def _partition(self, key: bytes) -> int:
        """The verdict topic's partition of ``key``, as Kafka's default partitioner picks it (murmur2),
        remembered: subjects repeat, and aiokafka's murmur2 is pure Python."""
        partition = self._partition_of.get(key)
        if partition is None:
            if len(self._partition_of) > 100_000:
                self._partition_of.clear()
            partition = (murmur2(key) & 0x7FFFFFFF) % self._verdict_partitions
            self._partition_of[key] = partition
        return partition

    async def _records(self, fresh: list[tuple[Any, Judged]]) -> list[Record]:
        """Records of the judged messages. The Evidence and Verdict objects are rebuilt only when a
        recorder (or the hook) reads them; a large document is rebuilt now, in a thread, off the loop."""
        records = []
        for message, judged in fresh:
            raw: bytes = message.value
            if judged.evidence is not None and judged.verdict is not None:  # judged in-process
                records.append(Record(judged.evidence, judged.verdict, raw))
            elif len(raw) > LARGE_DOCUMENT:
                evidence, verdict = await asyncio.to_thread(judged.rebuild, raw)
                records.append(Record(evidence, verdict, raw))
            else:
                records.append(
                    Record.deferred(
                        judged.evidence_id,
                        judged.kind,
                        judged.source,
                        judged.received_at,
                        partial(judged.load_evidence, raw),
                        judged.load_verdict,
                        raw,
                    )
                )
        return records

    async def _record(self, records: list[Record]) -> list[Record]:
        """Record; the records to act on. With a hook and a recorder that keeps an action outbox (the
        SQL store), those are the new ones plus any recorded before but never acted on (a consumer
        that died in between): actions are then at least once, and once they settled, never again."""
        try:
            if self._outbox is not None:
                to_act = set(await self._outbox.record_to_act(records))
                return [r for r in records if r.evidence_id in to_act]
            return await record_claiming(self.recorder, records)
        except Exception:
            self.metrics.delivery_errors.labels("record").inc()
            raise

    async def _settle_actions(self, acted: list[Record]) -> None:
        """Take what the hook acted on out of the outbox, retried until the store takes it (the
        chunk's offsets wait for it): given up, the outbox sweep would act on them a second time."""
        if self._outbox is None or self.hook_settles:
            return
        await settle_until_done(
            self._outbox,
            [r.evidence_id for r in acted],
            on_retry=self.metrics.delivery_errors.labels("record").inc,
        )

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        """Publish to ``topic`` with the consumer's producer and wait for the broker's ack (the
        actions' Kafka alerts, the webhook's audit copy of admission reviews)."""
        if self._producer is None:
            raise RuntimeError("the Kafka producer is not started yet (waiting for the database)")
        await self._producer.send_and_wait(topic, value, key=key)

    def _count(self, chunk: _Chunk, rejected: list[Rejected], fresh: list[tuple[Any, Judged]]) -> None:
        m = self.metrics
        elapsed = time.monotonic() - chunk.fetched_at
        for item in rejected:
            kind = item.kind.value if item.kind else "unknown"
            m.failed.labels("kafka", kind, item.reason).inc()
            m.dead_lettered.labels("kafka", kind).inc()
        per_kind: dict[EvidenceKind, list[float]] = {}
        for _, judged in fresh:
            per_kind.setdefault(judged.kind, []).append(judged.latency_ms / 1000)
        for kind, engine_seconds in per_kind.items():
            m.processed.labels("kafka", kind.value).inc(len(engine_seconds))
            latency = m.latency.labels("kafka", kind.value)
            engine = m.engine_latency.labels(kind.value)
            for seconds in engine_seconds:
                latency.observe(elapsed)
                engine.observe(seconds)

    # -- offsets and rebalancing -----------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval)
            await self._commit()
            self._update_lag()

    async def _commit(self, parts: Iterable[_Partition] | None = None) -> None:
        offsets = {
            p.tp: p.done
            for p in (self._parts.values() if parts is None else parts)
            if p.done is not None and p.done != p.committed
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), COMMIT_TIMEOUT)
        except (KafkaError, TimeoutError) as exc:  # e.g. in a rebalance; done offsets are committed later
            self.metrics.delivery_errors.labels("commit").inc()
            log.warning("commit failed (will retry): %r", exc)
            return
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    def _assign(self, assigned: list[TopicPartition]) -> None:
        self._revoked.difference_update(assigned)
        if self._stopped:
            return
        for tp in assigned:
            if tp not in self._parts:
                self._assign_one(tp)
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    def _assign_one(self, tp: TopicPartition) -> _Partition:
        part = _Partition(tp, self.config.topics.get(tp.topic))
        part.idle.set()
        part.finisher = asyncio.create_task(self._finish_loop(part), name=f"tribunal-finish-{tp}")
        self._parts[tp] = part
        return part

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        self._revoked.update(revoked)
        parts = [self._parts[tp] for tp in revoked if tp in self._parts]
        if not parts or self._stopped:
            return
        await self._drain(parts, self.config.stop_grace)
        await self._commit(parts)
        await self._drop(parts)
        log.info("revoked %s", sorted(f"{p.tp.topic}[{p.tp.partition}]" for p in parts))

    async def _drain(self, parts: list[_Partition], grace: float) -> None:
        """Wait until ``parts`` have finished their in-flight work, for at most ``grace`` seconds."""
        waits = [asyncio.ensure_future(p.idle.wait()) for p in parts if not p.idle.is_set()]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            left = sum(p.in_flight for p in parts)
            log.warning("grace of %.1fs over: %d in-flight messages left uncommitted", grace, left)

    async def _drop(self, parts: list[_Partition]) -> None:
        for part in parts:
            self._parts.pop(part.tp, None)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(part.tp.topic, str(part.tp.partition))
            for chunk in part.chunks:
                chunk.judging.cancel()
            await _cancel(part.finisher)
            for chunk in part.chunks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await chunk.judging
            part.chunks.clear()


def _dead_letter_headers(message: Any, rejected: Rejected) -> list[tuple[str, bytes]]:
    headers = list(message.headers or ())
    headers += [
        (H_ERROR, rejected.error.encode()[:4096]),
        (H_REASON, rejected.reason.encode()),
        (H_TOPIC, message.topic.encode()),
        (H_PARTITION, str(message.partition).encode()),
        (H_OFFSET, str(message.offset).encode()),
    ]
    if rejected.field:
        headers.append((H_FIELD, rejected.field.encode()))
    return headers


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed: %s", task.get_name(), task.exception())
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
