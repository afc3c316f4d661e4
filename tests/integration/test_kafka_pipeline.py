"""The Kafka pipeline against a real broker (Tansu): every shared sample judged once, every malformed
message dead-lettered with its error, offsets committed; a killed consumer loses nothing and acts on
nothing twice; two consumers of one group split the partitions."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from tests.conftest import POLICY_DIR, RULES_DIR, falco_alert, needs_shared
from tests.integration.kafka_support import (
    CountingRecorder,
    committed_and_ends,
    create_topics,
    falco_alerts,
    produce,
    read_topic,
    shared_messages,
    unique,
    wait_until,
)
from tribunal.model import EvidenceKind, Verdict, parse_evidence
from tribunal.policy import JudgePool, PolicyRuntime
from tribunal.sources.kafka import (
    H_ERROR,
    H_FIELD,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    KafkaConfig,
    KafkaSource,
)
from tribunal.sources.metrics import PipelineMetrics
from tribunal.store import Record, SqlStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime() -> PolicyRuntime:
    return PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR)


@pytest.fixture
async def inline_pool(runtime: PolicyRuntime) -> AsyncIterator[JudgePool]:
    async with JudgePool(runtime, 0) as pool:
        yield pool


def config(bootstrap: str, prefix: str, **overrides: object) -> KafkaConfig:
    base: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "topics": {f"{prefix}-falco": EvidenceKind.FALCO, f"{prefix}-trivy": EvidenceKind.TRIVY},
        "group_id": f"{prefix}-group",
        "verdict_topic": f"{prefix}-verdicts",
        "dlq_topic": f"{prefix}-dlq",
        "max_message_bytes": 8 * 1024 * 1024,
        "stop_grace": 10.0,
        "commit_interval": 0.2,
        # Tansu numbers the first generation of a group 0, and aiokafka sends LeaveGroup only for
        # generations > 0: a first member that stops is only dropped when its session times out; and a join
        # takes about half the session timeout on Tansu.
        "session_timeout_ms": 2000,
        "heartbeat_interval_ms": 300,
    }
    base.update(overrides)
    return KafkaConfig(**base)  # type: ignore[arg-type]


async def topics_for(bootstrap: str, prefix: str, falco: int = 3, trivy: int = 2) -> None:
    await create_topics(
        bootstrap,
        {f"{prefix}-falco": falco, f"{prefix}-trivy": trivy, f"{prefix}-verdicts": 3, f"{prefix}-dlq": 1},
    )


MALFORMED = {
    "not json": b"{not json at all",
    "wrong schema": b'{"rule": "Terminal shell", "priority": "Loud", "time": "2024-05-01T10:00:00Z", "output": "x"}',
    "empty": b"",
    "junk 5 MB": os.urandom(5 * 1024 * 1024),
    "not evidence": b'{"hello": "world"}',
}


@needs_shared
async def test_every_sample_yields_one_verdict_and_every_malformed_message_a_dead_letter(
    kafka_bootstrap: str, runtime: PolicyRuntime
) -> None:
    prefix = unique("samples")
    await topics_for(kafka_bootstrap, prefix)
    falco = shared_messages("falco", EvidenceKind.FALCO)
    trivy = shared_messages("trivy", EvidenceKind.TRIVY)
    assert len(falco) == 35 and len(trivy) == 42
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in falco])
    await produce(kafka_bootstrap, f"{prefix}-trivy", [v for v, _ in trivy])
    await produce(kafka_bootstrap, f"{prefix}-falco", list(MALFORMED.values()))
    # A Falco alert on the Trivy topic is the wrong kind of evidence there.
    await produce(kafka_bootstrap, f"{prefix}-trivy", [falco[0][0]])
    expected = {evidence_id for _, evidence_id in falco + trivy}
    bad = len(MALFORMED) + 1

    recorder = CountingRecorder()
    metrics = PipelineMetrics(CollectorRegistry())
    async with JudgePool(runtime, 2) as pool:  # worker processes: the production path
        source = KafkaSource(
            config(kafka_bootstrap, prefix), pool, recorder, metrics, on_recorded=recorder.act
        )
        await source.start()
        try:
            await wait_until(
                lambda: (
                    len(recorder.records) == len(expected)
                    and metrics.registry.get_sample_value(
                        "tribunal_evidence_dead_lettered_total", {"source": "kafka", "kind": "falco"}
                    )
                    == len(MALFORMED)
                ),
                "every message processed",
                limit=180,
            )
        finally:
            await source.stop()

    assert set(recorder.records) == expected
    assert set(recorder.acted) == expected and max(recorder.acted.values()) == 1

    verdicts = await read_topic(kafka_bootstrap, f"{prefix}-verdicts")
    ids = Counter(orjson.loads(m.value)["evidence_id"] for m in verdicts)
    assert set(ids) == expected
    assert max(ids.values()) == 1, "a verdict was published twice"
    first = Verdict.model_validate_json(verdicts[0].value)
    assert verdicts[0].key == first.subject.key().encode()

    letters = await read_topic(kafka_bootstrap, f"{prefix}-dlq")
    assert len(letters) == bad
    by_value = {m.value: dict(m.headers) for m in letters}
    for name, value in MALFORMED.items():
        headers = by_value[value]  # the original bytes, unchanged
        assert headers[H_TOPIC] == f"{prefix}-falco".encode(), name
        offset, partition = headers[H_OFFSET].decode(), headers[H_PARTITION].decode()
        assert headers[H_ERROR].startswith(f"{prefix}-falco[{partition}]@{offset}: ".encode()), name
        assert headers[H_REASON] == b"evidence", name
        assert headers["producer"] == b"test", name  # the original headers are kept
    assert b"not valid JSON" in by_value[MALFORMED["not json"]][H_ERROR]
    assert b"empty" in by_value[b""][H_ERROR]
    assert by_value[MALFORMED["wrong schema"]][H_FIELD] == b"priority"
    assert b"expected trivy evidence, this looks like falco" in by_value[falco[0][0]][H_ERROR]

    for topic in (f"{prefix}-falco", f"{prefix}-trivy"):
        committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", topic)
        assert committed == ends, topic
    sample = metrics.registry.get_sample_value
    assert sample("tribunal_evidence_processed_total", {"source": "kafka", "kind": "trivy"}) == 42
    assert (
        sample("tribunal_evidence_failed_total", {"source": "kafka", "kind": "trivy", "reason": "evidence"})
        == 1
    )


async def test_a_consumer_killed_mid_batch_loses_nothing_and_acts_on_nothing_twice(
    kafka_bootstrap: str, inline_pool: JudgePool
) -> None:
    prefix = unique("kill")
    await topics_for(kafka_bootstrap, prefix, falco=2)
    alerts = falco_alerts(300)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    expected = {evidence_id for _, evidence_id in alerts}
    # Commits only at stop: whatever the first consumer did is redelivered to the second.
    settings = config(kafka_bootstrap, prefix, chunk_size=16, commit_interval=3600)
    recorder = CountingRecorder(block_after=3)

    first = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=recorder.act
    )
    await first.start()
    await wait_until(recorder.blocked.is_set, "the first consumer to reach its crash point")
    await first.abort()  # cancelled mid-batch: verdicts published, some recorded, nothing committed
    done_before = set(recorder.records)
    assert 0 < len(done_before) < len(expected)
    committed, _ = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert set(committed.values()) <= {None}, "the killed consumer committed"

    recorder.block_after = None
    second = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=recorder.act
    )
    await second.start()
    try:
        await wait_until(lambda: len(recorder.records) == len(expected), "every alert recorded")
    finally:
        await second.stop()

    assert set(recorder.records) == expected  # no verdict missing
    assert recorder.acted == Counter(expected)  # each acted on exactly once
    assert recorder.new == Counter(expected)
    verdicts = Counter(
        orjson.loads(m.value)["evidence_id"] for m in await read_topic(kafka_bootstrap, f"{prefix}-verdicts")
    )
    assert set(verdicts) == expected  # at least once on the topic (redelivered ones may repeat)
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert committed == ends


class BlockingActions:
    """The actions hook: counts what it acted on; the call after ``block_after`` calls never returns
    (the consumer dies after recording a chunk and before acting on it)."""

    def __init__(self, block_after: int | None) -> None:
        self.acted: Counter[str] = Counter()
        self.calls = 0
        self.block_after = block_after
        self.blocked = asyncio.Event()

    async def act(self, records: Sequence[Record]) -> None:
        if self.block_after is not None and self.calls >= self.block_after:
            self.blocked.set()
            await asyncio.Event().wait()
        self.calls += 1
        self.acted.update(r.evidence_id for r in records)


async def test_a_consumer_killed_between_recording_and_acting_acts_at_redelivery_exactly_once(
    kafka_bootstrap: str, inline_pool: JudgePool, tmp_path: Path
) -> None:
    prefix = unique("outbox")
    # One partition: its chunks are recorded, acted on and settled in turn, so when the hook blocks no
    # other chunk is between acting and settling (that window is at least once by design).
    await topics_for(kafka_bootstrap, prefix, falco=1)
    alerts = falco_alerts(200)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    expected = {evidence_id for _, evidence_id in alerts}
    settings = config(kafka_bootstrap, prefix, chunk_size=16, commit_interval=3600)
    hook = BlockingActions(block_after=2)
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}") as store:
        first = KafkaSource(
            settings, inline_pool, store, PipelineMetrics(CollectorRegistry()), on_recorded=hook.act
        )
        await first.start()
        await wait_until(hook.blocked.is_set, "the first consumer to record a chunk it never acts on")
        await first.abort()  # recorded, not acted on, nothing committed
        assert (await store.counts())["pending_actions"] > 0
        acted_first = sum(hook.acted.values())

        hook.block_after = None
        second = KafkaSource(
            settings, inline_pool, store, PipelineMetrics(CollectorRegistry()), on_recorded=hook.act
        )
        await second.start()
        try:
            await wait_until(lambda: set(hook.acted) == expected, "every alert acted on")
        finally:
            await second.stop()
        counts = await store.counts()

    assert acted_first < len(expected)
    assert hook.acted == Counter(expected)  # the chunk recorded but never acted on was acted on, once
    assert counts["evidence"] == len(expected) and counts["pending_actions"] == 0


async def test_two_consumers_of_one_group_split_the_partitions_and_process_each_message_once(
    kafka_bootstrap: str, inline_pool: JudgePool
) -> None:
    prefix = unique("group")
    await topics_for(kafka_bootstrap, prefix, falco=4)
    settings = config(kafka_bootstrap, prefix)
    recorder = CountingRecorder()
    acted_by: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}

    def hook(name: str):  # type: ignore[no-untyped-def]
        async def act(records):  # type: ignore[no-untyped-def]
            acted_by[name].update(r.evidence.id for r in records)
            await recorder.act(records)

        return act

    a = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=hook("a")
    )
    b = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=hook("b")
    )
    await a.start()
    await b.start()
    try:
        falco_parts = lambda s: {tp for tp in s._parts if tp.topic == f"{prefix}-falco"}  # noqa: E731
        await wait_until(
            lambda: len(falco_parts(a)) + len(falco_parts(b)) == 4 and falco_parts(a) and falco_parts(b),
            "both members to hold partitions",
        )
        assert not falco_parts(a) & falco_parts(b)
        alerts = falco_alerts(200)
        await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
        expected = {evidence_id for _, evidence_id in alerts}
        await wait_until(lambda: len(recorder.records) == len(expected), "every alert recorded")
    finally:
        await a.stop()
        await b.stop()

    assert acted_by["a"] and acted_by["b"], "one member did all the work"
    assert not set(acted_by["a"]) & set(acted_by["b"])
    assert recorder.acted == Counter(expected)
    verdicts = Counter(
        orjson.loads(m.value)["evidence_id"] for m in await read_topic(kafka_bootstrap, f"{prefix}-verdicts")
    )
    assert verdicts == Counter(expected)
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert committed == ends


async def test_a_paused_partition_resumes_and_keeps_its_order(
    kafka_bootstrap: str, inline_pool: JudgePool
) -> None:
    prefix = unique("order")
    await topics_for(kafka_bootstrap, prefix, falco=2)
    alerts = falco_alerts(240)
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    recorder = CountingRecorder()
    order: list[tuple[int, int]] = []

    async def note(records):  # type: ignore[no-untyped-def]
        for r in records:  # the source names topic[partition]@offset
            partition, offset = r.evidence.source.rsplit("[", 1)[1].split("]@")
            order.append((int(partition), int(offset)))

    # At most 8 records in flight per partition, in chunks of 4: the partitions pause and resume often.
    settings = config(kafka_bootstrap, prefix, max_in_flight=8, chunk_size=4, batch_size=50)
    source = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=note
    )
    await source.start()
    try:
        await wait_until(lambda: len(recorder.records) == len(alerts), "every alert recorded")
    finally:
        await source.stop()
    for partition in (0, 1):
        offsets = [o for p, o in order if p == partition]
        assert offsets == sorted(offsets) and offsets, partition
    assert sorted(order) == sorted(set(order)) and len(order) == len(alerts)


async def test_a_member_joining_mid_stream_takes_partitions_and_nothing_is_acted_on_twice(
    kafka_bootstrap: str, inline_pool: JudgePool
) -> None:
    prefix = unique("join")
    await topics_for(kafka_bootstrap, prefix, falco=4)
    alerts = falco_alerts(600)
    expected = {i for _, i in alerts}
    await produce(kafka_bootstrap, f"{prefix}-falco", [v for v, _ in alerts])
    recorder = CountingRecorder()
    settings = config(kafka_bootstrap, prefix, chunk_size=8, max_in_flight=16, batch_size=16)
    a = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=recorder.act
    )
    b = KafkaSource(
        settings, inline_pool, recorder, PipelineMetrics(CollectorRegistry()), on_recorded=recorder.act
    )
    await a.start()
    try:
        await wait_until(lambda: len(recorder.records) > 0, "the first member to start")
        await b.start()  # a rebalance while a has work in flight: a finishes, commits, hands over
        await wait_until(lambda: len(recorder.records) == len(expected), "every alert recorded")
        assert b._parts, "the second member got no partition"
    finally:
        await b.stop()
        await a.stop()
    assert recorder.acted == Counter(expected)
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert committed == ends


@needs_shared
async def test_a_verdict_too_large_to_publish_is_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, inline_pool: JudgePool, runtime: PolicyRuntime
) -> None:
    prefix = unique("large")
    await topics_for(kafka_bootstrap, prefix, falco=1)
    # A sample whose verdict is larger than the alert: its verdict cannot be sent, its dead letter can.
    (big_verdict,) = [v for v, _ in shared_messages("falco", EvidenceKind.FALCO) if b"touch /bin/hack" in v]
    verdict = runtime.judge.judge(parse_evidence(orjson.loads(big_verdict), "x"))
    verdict_size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
        verdict.subject.key().encode(), verdict.model_dump_json().encode(), []
    )
    # An alert no policy objects to: its verdict holds no violation, so it is far smaller.
    small = orjson.dumps(
        falco_alert(
            rule="Falco internal: metrics snapshot", priority="Informational", tags=[], output_fields={}
        )
    )
    await produce(kafka_bootstrap, f"{prefix}-falco", [big_verdict, small])
    recorder = CountingRecorder()
    # A verdict's length varies by a few bytes between two judgements (latency_ms, evaluated_at): keep
    # a margin below it, and well above the dead letter (the alert and its error headers).
    limit = verdict_size - 64
    assert len(big_verdict) + 512 < limit
    settings = config(kafka_bootstrap, prefix, max_request_bytes=limit)
    metrics = PipelineMetrics(CollectorRegistry())
    source = KafkaSource(settings, inline_pool, recorder, metrics, on_recorded=recorder.act)
    await source.start()
    try:
        await wait_until(lambda: len(recorder.records) == 1, "the small alert recorded", limit=20)
    finally:
        await source.stop()
    assert set(recorder.records) == {falco_alert()["uuid"]}
    (letter,) = await read_topic(kafka_bootstrap, f"{prefix}-dlq")
    assert letter.value == big_verdict
    assert b"the verdict could not be published: MessageSizeTooLargeError" in dict(letter.headers)[H_ERROR]
    committed, ends = await committed_and_ends(kafka_bootstrap, f"{prefix}-group", f"{prefix}-falco")
    assert committed == ends == {0: 2}
