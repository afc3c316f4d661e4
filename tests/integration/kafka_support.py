"""Helpers of the Kafka integration tests: topics, producing, reading a topic whole, a recorder that
counts, and the shared samples as Kafka messages."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.conftest import PROJECT, shared_fixtures
from tribunal.model import Evidence, EvidenceKind, parse_evidence
from tribunal.sources import read_documents
from tribunal.store import Record

MAX_BYTES = 8 * 1024 * 1024


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics.items()])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, values: Sequence[bytes | None], key: bytes | None = None
) -> list[tuple[int, int]]:
    """Send ``values`` (round-robin over partitions when no key); their (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_BYTES, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=[("producer", b"test")]) for value in values
        ]
        results = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(r.partition, r.offset) for r in results]


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message of ``topic`` up to the high watermarks its fetches report. (Tansu answers
    ListOffsets(latest) with the base offset of the last batch + 1, so ``end_offsets`` undercounts
    batched partitions; the high watermark of a Fetch response is right.)"""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_BYTES,
        fetch_max_bytes=4 * MAX_BYTES,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        messages: list[Any] = []
        remaining = set(partitions)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=200)
            for records in batch.values():
                messages.extend(records)
            for tp in list(remaining):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    remaining.discard(tp)
        return messages
    finally:
        await consumer.stop()


async def committed_and_ends(bootstrap: str, group: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition holding messages: the group's committed offset and the end (last offset + 1)."""
    messages = await read_topic(bootstrap, topic)
    ends: dict[int, int] = {}
    for message in messages:
        ends[message.partition] = max(ends.get(message.partition, 0), message.offset + 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in ends}
        return committed, ends
    finally:
        await consumer.stop()


class CountingRecorder:
    """Idempotent on evidence id like a real store; counts what was new, and what the hook acted on.
    ``block_after``: the record call after that many returns blocks until cancelled (a crash point)."""

    def __init__(self, block_after: int | None = None) -> None:
        self.records: dict[str, Record] = {}
        self.new: Counter[str] = Counter()
        self.acted: Counter[str] = Counter()
        self.calls = 0
        self.block_after = block_after
        self.blocked = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def record(self, records: Sequence[Record]) -> None:
        await self.record_new(records)

    async def record_new(self, records: Sequence[Record]) -> Collection[str]:
        if self.block_after is not None and self.calls >= self.block_after:
            self.blocked.set()
            await asyncio.Event().wait()  # never returns: the consumer is killed here
        self.calls += 1
        fresh = [r.evidence.id for r in records if r.evidence.id not in self.records]
        for record in records:
            self.records.setdefault(record.evidence.id, record)
        self.new.update(fresh)
        return fresh

    async def act(self, records: Sequence[Record]) -> None:
        """The actions hook."""
        self.acted.update(r.evidence.id for r in records)


def shared_messages(folder: str, kind: EvidenceKind) -> list[tuple[bytes, str]]:
    """Every document of ../shared/fixtures/<folder> as a JSON message, with its evidence id."""
    out = []
    for path in shared_fixtures(folder, ".json", ".jsonl", ".yaml", ".yml"):
        for document in read_documents(str(path)):
            assert not isinstance(document, Exception), document
            value = orjson.dumps(document.content)
            evidence: Evidence = parse_evidence(document.content, document.source, kind)
            out.append((value, evidence.id))
    return out


def falco_alerts(count: int) -> list[tuple[bytes, str]]:
    """``count`` Falco alerts from the shared samples (cycled), each with a fresh uuid; where
    ../shared is absent, from the project's own examples/falco."""
    samples = [orjson.loads(value) for value, _ in shared_messages("falco", EvidenceKind.FALCO)]
    if not samples:
        samples = [
            d.content
            for path in sorted((PROJECT / "examples" / "falco").iterdir())
            for d in read_documents(str(path))
            if not isinstance(d, Exception)
        ]
    out = []
    for i in range(count):
        alert = dict(samples[i % len(samples)])
        alert["uuid"] = str(uuid.uuid4())
        out.append((orjson.dumps(alert), alert["uuid"]))
    return out


async def wait_until(predicate: Any, what: str, limit: float = 60.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``limit`` seconds (a hang guard, not a
    speed assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
