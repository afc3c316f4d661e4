from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from tests.conftest import POLICY_DIR, pod, review
from tribunal.model import parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.store import BackgroundRecorder, LogRecorder, Record


class ListRecorder:
    """Keeps the evidence ids of each batch; the first ``failures`` writes raise (-1: every write)."""

    def __init__(self, fail_first: bool = False, failures: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.failures = 1 if fail_first else failures
        self.attempts = 0
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def record(self, records: Sequence[Record]) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.batches.append([r.evidence.id for r in records])


@pytest.fixture(scope="module")
def records() -> list[Record]:
    judge = Judge.build(load_policy_set(POLICY_DIR))
    out = []
    for i in range(5):
        ev = parse_evidence(
            review(
                pod({"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": bool(i % 2)}}),
                uid=f"uid-{i}",
            ),
            "test",
        )
        out.append(Record(ev, judge.judge(ev)))
    return out


async def test_background_recorder_batches_and_drains_on_stop(records: list[Record]) -> None:
    sink = ListRecorder()
    bg = BackgroundRecorder(sink, batch_size=3)
    await bg.start()
    for r in records:
        bg.submit(r)
    await bg.stop()
    assert [i for b in sink.batches for i in b] == [f"uid-{i}" for i in range(5)]
    assert max(len(b) for b in sink.batches) <= 3
    assert sink.stopped and bg.recorded == 5


async def test_background_recorder_survives_a_failed_write(records: list[Record]) -> None:
    sink = ListRecorder(fail_first=True)
    bg = BackgroundRecorder(sink, batch_size=1, retry_delays=())
    await bg.start()
    for r in records[:2]:
        await bg.put(r)
    await bg.flush()
    await bg.stop()
    assert bg.failed == 1 and bg.recorded == 1
    assert sink.batches == [["uid-1"]]


async def test_submit_raises_when_full(records: list[Record]) -> None:
    bg = BackgroundRecorder(ListRecorder(), max_queue=1)
    bg.submit(records[0])
    with pytest.raises(asyncio.QueueFull):
        bg.submit(records[1])


async def test_log_recorder_writes_one_line_per_verdict(records: list[Record], caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, "tribunal.record")
    await LogRecorder().record(records[:2])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert '"evidence_id":"uid-1"' in lines[1] and '"decision":"deny"' in lines[1]
    assert "privileged_containers" in lines[1]


async def test_a_failed_write_is_retried_until_the_store_takes_it(
    records: list[Record], caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListRecorder(failures=2)
    bg = BackgroundRecorder(sink, batch_size=10, retry_delays=(0, 0, 0))
    await bg.start()
    with caplog.at_level(logging.WARNING, "tribunal.record"):
        for r in records[:3]:
            bg.submit(r)
        await bg.flush()
    await bg.stop()
    assert sink.batches == [["uid-0", "uid-1", "uid-2"]]  # once, whole, on the third attempt
    assert (bg.recorded, bg.failed, bg.retries, bg.dropped, sink.attempts) == (3, 0, 2, 0, 3)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "attempt 1 of 4" in warnings[0] and "OSError: disk full" in warnings[0]


async def test_a_batch_failing_every_retry_is_given_up_and_the_next_one_written(
    records: list[Record], caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListRecorder(failures=3)
    bg = BackgroundRecorder(sink, batch_size=2, retry_delays=(0, 0))
    with caplog.at_level(logging.WARNING, "tribunal.record"):
        for r in records[:4]:
            bg.submit(r)
        await bg.start()
        await bg.flush()
    await bg.stop()
    assert sink.batches == [["uid-2", "uid-3"]]
    assert (bg.recorded, bg.failed, bg.retries) == (2, 2, 2)
    assert any("failed 3 times; given up" in r.getMessage() for r in caplog.records)


async def test_offer_drops_and_counts_when_full_logging_once_per_interval(
    records: list[Record], caplog: pytest.LogCaptureFixture
) -> None:
    bg = BackgroundRecorder(ListRecorder(), max_queue=2)
    with caplog.at_level(logging.ERROR, "tribunal.record"):
        accepted = [bg.offer(r) for r in records]
    assert accepted == [True, True, False, False, False]
    assert (bg.queued, bg.dropped) == (2, 3)
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and "queue is full (2 verdicts" in errors[0] and "1 verdicts dropped" in errors[0]


async def test_stop_gives_up_on_a_store_that_stays_down_and_counts_what_it_held(
    records: list[Record], caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListRecorder(failures=-1)
    bg = BackgroundRecorder(sink, batch_size=2, retry_delays=(0.01,) * 1000, drain_seconds=0.2)
    await bg.start()
    for r in records:
        bg.submit(r)
    with caplog.at_level(logging.ERROR, "tribunal.record"):
        await bg.stop()
    assert sink.batches == [] and sink.stopped
    assert (bg.recorded, bg.failed, bg.dropped) == (0, 0, 5)
    assert bg.retries > 0
    assert any("stopped with 5 verdicts not written" in r.getMessage() for r in caplog.records)


class OutboxRecorder(ListRecorder):
    """A recorder with an action outbox: ``record_to_act`` records like ``record`` and returns the ids
    not recorded before; ``connected`` starts false when ``connect_later``."""

    def __init__(self, failures: int = 0, connect_later: bool = False) -> None:
        super().__init__(failures=failures)
        self.seen: set[str] = set()
        self.settled: list[str] = []
        self._connected = asyncio.Event()
        if not connect_later:
            self._connected.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def connect(self) -> None:
        self._connected.set()

    async def record_to_act(self, records: Sequence[Record]) -> list[str]:
        assert self.connected, "written before the store connected"
        await self.record(records)
        fresh = [r.evidence_id for r in records if r.evidence_id not in self.seen]
        self.seen.update(fresh)
        return fresh

    async def settle_actions(self, evidence_ids: Sequence[str], outcomes: object = None) -> None:
        self.settled.extend(evidence_ids)


async def test_with_an_outbox_a_batch_is_acted_on_once_written_and_a_repeat_not_again(
    records: list[Record],
) -> None:
    sink, acted = OutboxRecorder(), []
    bg = BackgroundRecorder(sink, batch_size=10, act=lambda rs: acted.append([r.evidence_id for r in rs]))
    await bg.start()
    for r in records[:3]:
        bg.submit(r)
    await bg.flush()
    for r in records[2:]:  # uid-2 again: recorded before, not acted on twice
        bg.submit(r)
    await bg.stop()
    assert sink.batches == [["uid-0", "uid-1", "uid-2"], ["uid-2", "uid-3", "uid-4"]]
    assert acted == [["uid-0", "uid-1", "uid-2"], ["uid-3", "uid-4"]]


async def test_records_the_store_never_takes_are_acted_on_outside_the_outbox(
    records: list[Record],
) -> None:
    sink, acted, unrecorded = OutboxRecorder(failures=-1), [], []
    bg = BackgroundRecorder(
        sink,
        max_queue=2,
        retry_delays=(0.01,),
        act=acted.extend,
        act_unrecorded=lambda rs: unrecorded.extend(r.evidence_id for r in rs),
    )
    await bg.start()
    assert bg.offer(records[0]) and bg.offer(records[1])
    assert not bg.offer(records[2])  # the queue is full: dropped, and acted on at once
    assert unrecorded == ["uid-2"]
    await bg.flush()  # the store refuses every write: given up, and acted on
    await bg.stop()
    assert acted == [] and sorted(unrecorded) == ["uid-0", "uid-1", "uid-2"]
    assert bg.failed == 2 and bg.dropped == 1


async def test_nothing_is_written_before_a_connecting_store_connects(records: list[Record]) -> None:
    sink, acted = OutboxRecorder(connect_later=True), []
    bg = BackgroundRecorder(sink, act=acted.extend, owns_recorder=False)
    await bg.start()
    bg.submit(records[0])
    await asyncio.sleep(0.05)
    assert sink.attempts == 0 and bg.queued == 1  # waiting, not failing and giving up
    sink.connect()
    await bg.flush()
    await bg.stop()
    assert sink.batches == [["uid-0"]] and [r.evidence_id for r in acted] == ["uid-0"]
    assert not sink.stopped  # owns_recorder=False: the store is stopped by whoever started it


async def test_stop_does_not_wait_for_a_store_that_never_connected(records: list[Record]) -> None:
    sink, unrecorded = OutboxRecorder(connect_later=True), []
    bg = BackgroundRecorder(sink, act=list, act_unrecorded=unrecorded.extend, drain_seconds=60)
    await bg.start()
    bg.submit(records[0])
    async with asyncio.timeout(5):
        await bg.stop()
    assert bg.dropped == 1 and [r.evidence_id for r in unrecorded] == ["uid-0"]
