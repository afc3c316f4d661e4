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
    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail_first = fail_first
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def record(self, records: Sequence[Record]) -> None:
        if self.fail_first:
            self.fail_first = False
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
    bg = BackgroundRecorder(sink, batch_size=1)
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
