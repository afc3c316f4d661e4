"""The retry loops on tenacity wait what they waited as hand-written loops, count and log the same:
the store's connect-wait at start, the background recorder, settling actions, the Trivy Operator
watch's relist backoff and the Kafka consumer's delivery. The waits are recorded, not slept."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import errors
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from tests.conftest import POLICY_DIR, pod, review
from tests.unit.store.test_recorder import ListRecorder
from tribunal.model import parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.sources.k8s_watch import TrivyOperatorWatch, WatchConfig
from tribunal.sources.kafka import KafkaSource
from tribunal.store import SETTLE_DELAYS, BackgroundRecorder, Record, SqlStore, settle_until_done
from tribunal.store.recorder import RETRY_DELAYS
from tribunal.store.sql import CONNECT_DELAYS

REAL_SLEEP = asyncio.sleep


@pytest.fixture(scope="module")
def records() -> list[Record]:
    judge = Judge.build(load_policy_set(POLICY_DIR))
    evidence = [
        parse_evidence(review(pod({"name": "app", "image": "nginx"}), uid=f"u{i}"), "test") for i in range(5)
    ]
    return [Record(ev, judge.judge(ev)) for ev in evidence]


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every asyncio.sleep of more than 0 s, recorded and not slept (tenacity sleeps through it)."""
    taken: list[float] = []

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:
            taken.append(delay)
        return await REAL_SLEEP(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return taken


class Outbox:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def settle_actions(self, evidence_ids: Sequence[str], outcomes: Any = None) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the store restarts")


async def test_settling_waits_each_delay_then_the_last_until_it_succeeds(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    outbox, retried = Outbox(failures=7), []
    with caplog.at_level(logging.INFO, "tribunal.record"):
        await settle_until_done(outbox, ["a", "b"], on_retry=lambda: retried.append(1))
    assert waits == [*SETTLE_DELAYS, SETTLE_DELAYS[-1], SETTLE_DELAYS[-1]] == [0.2, 0.5, 1, 2, 5, 5, 5]
    assert outbox.calls == 8 and len(retried) == 7
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "marking the actions of 2 verdicts done failed (attempt 1), retrying in 0.2 s: "
        "ConnectionError: the store restarts"
    )
    assert "(attempt 7), retrying in 5 s" in lines[6]
    assert lines[7] == "marked the actions of 2 verdicts done after 7 failures" and len(lines) == 8


async def test_settling_at_once_logs_nothing_and_a_stop_cancels_it(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "tribunal.record"):
        await settle_until_done(Outbox(failures=0), ["a"])
        await settle_until_done(Outbox(failures=0), [])
    assert waits == [] and caplog.records == []

    async def cancel_soon() -> None:
        while len(waits) < 3:
            await REAL_SLEEP(0)
        task.cancel()

    task = asyncio.create_task(settle_until_done(Outbox(failures=-1), ["a"]))
    helper = asyncio.create_task(cancel_soon())
    with pytest.raises(asyncio.CancelledError):
        await task
    await helper


async def test_the_recorder_waits_its_delays_then_gives_up(
    waits: list[float], records: list[Record], caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListRecorder(failures=-1)
    bg = BackgroundRecorder(sink, batch_size=5)
    with caplog.at_level(logging.WARNING, "tribunal.record"):
        await bg.start()
        for r in records:
            bg.submit(r)
        await bg.flush()
        await bg.stop()
    assert waits == list(RETRY_DELAYS) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert (bg.recorded, bg.failed, bg.retries, sink.attempts) == (0, 5, 5, 6)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "recording 5 verdicts failed (attempt 1 of 6), retrying in 0.5 s: OSError: disk full"
    assert lines[5] == "recording 5 verdicts failed 6 times; given up"
    assert caplog.records[5].exc_info is not None  # with its traceback


async def test_the_store_waits_for_its_database_with_its_connect_delays(
    waits: list[float], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-yet"  # SQLite cannot open a file in a folder that does not exist
    store = SqlStore(f"sqlite+aiosqlite:///{folder / 'tribunal.db'}", wait_for_database=True)
    with caplog.at_level(logging.INFO, "tribunal.store"):
        await store.start()
        assert not store.connected and "1 attempts" in (store.probe() or "")
        while len(waits) < 8:
            await REAL_SLEEP(0.01)
        folder.mkdir()
        await asyncio.wait_for(store.wait_connected(), 10)
        await store.stop()
    first = waits[:8]
    assert first == [*CONNECT_DELAYS, CONNECT_DELAYS[-1], CONNECT_DELAYS[-1]] == [0.5, 1, 2, 4, 8, 15, 15, 15]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned[0].startswith("the database (sqlite+aiosqlite:///") and "(attempt 1)" in warned[0]
    assert warned[0].endswith("; trying again in 0.5 s") and "trying again in 15 s" in warned[6]
    assert any(r.getMessage().startswith("connected to the database after ") for r in caplog.records)


API = SimpleNamespace()  # an ApiClient that is never called: the listing and the watch are scripted


class _Script:
    """The API client factory, the listing and the watch of a TrivyOperatorWatch, playing a script of
    steps: an exception to raise, or a resourceVersion to return."""

    def __init__(self, steps: list[tuple[str, Any]]) -> None:
        self.steps = steps
        self.done = asyncio.Event()

    async def step(self, name: str) -> Any:
        if not self.steps:
            self.done.set()
            await asyncio.Event().wait()  # until the test stops the watch
        expected, outcome = self.steps.pop(0)
        assert expected == name, (expected, name)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_the_watch_relists_after_a_backoff_doubling_from_1_s_reset_by_a_listing(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _Script(
        [("api", OSError("refused"))] * 4
        + [("api", API), ("list", "v1"), ("watch", ApiException(status=500, reason="boom"))]
        + [("api", API), ("list", ApiException(status=403, reason="Forbidden"))]
        + [("api", API), ("list", "v2"), ("watch", ApiException(status=410, reason="Gone"))]
        + [("api", API), ("list", "v3"), ("watch", RuntimeError("a bug"))]
    )
    watcher = TrivyOperatorWatch(
        lambda: script.step("api"),
        pool=SimpleNamespace(),  # type: ignore[arg-type]
        deliver=SimpleNamespace(),  # type: ignore[arg-type]
        config=WatchConfig(plurals=("vulnerabilityreports",), max_backoff_seconds=3),
        registry=CollectorRegistry(),
    )
    monkeypatch.setattr(watcher, "_list", lambda api, plural: script.step("list"))
    monkeypatch.setattr(watcher, "_watch", lambda api, plural, version: script.step("watch"))
    await watcher.start()
    await asyncio.wait_for(script.done.wait(), 10)
    problem = watcher.probe()
    await watcher.stop()
    # What the hand-written loop waited: 1 s doubling up to the maximum, back to 1 s after a
    # listing; a watch too old (410) lists again at once.
    assert waits == [1, 2, 3, 3, 1, 2, 1]
    errors = {
        s.labels["cause"]: s.value for s in watcher.errors.collect()[0].samples if s.name.endswith("_total")
    }
    assert errors == {"connection": 4.0, "api": 2.0, "other": 1.0}
    assert problem == "vulnerabilityreports: RuntimeError: a bug"


async def test_kafka_delivery_waits_doubling_from_0_2_s_up_to_5_s(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    attempts = []

    async def deliver(chunk: Any, outcomes: Any) -> None:
        attempts.append(1)
        if len(attempts) <= 7:
            raise ConnectionError("broker away")

    source = SimpleNamespace(_deliver=deliver)
    part = SimpleNamespace(tp="falco-events-0")
    chunk = SimpleNamespace(messages=[SimpleNamespace(offset=41)])
    with caplog.at_level(logging.ERROR, "tribunal.sources.kafka"):
        await KafkaSource._deliver_with_retry(source, part, chunk, [])  # type: ignore[arg-type]
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0] and len(attempts) == 8
    assert caplog.records[0].getMessage() == "delivering falco-events-0@41 failed, retrying: broker away"


async def test_a_kafka_fetch_failing_retriably_is_tried_again_a_second_later(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[Exception] = [errors.RequestTimedOutError(), errors.KafkaConnectionError("gone")]
    failures.append(errors.UnsupportedVersionError())  # not retriable: the fetch loop stops

    async def getmany(**_: Any) -> dict[Any, Any]:
        raise failures.pop(0)

    source = SimpleNamespace(
        _consumer=SimpleNamespace(getmany=getmany), config=SimpleNamespace(batch_size=10)
    )
    with (
        caplog.at_level(logging.WARNING, "tribunal.sources.kafka"),
        pytest.raises(errors.UnsupportedVersionError),
    ):
        await KafkaSource._fetch_loop(source)  # type: ignore[arg-type]
    assert waits == [1.0, 1.0] and failures == []
    assert [r.getMessage() for r in caplog.records] == [
        "kafka fetch failed, retrying: [Error 7] RequestTimedOutError",
        "kafka fetch failed, retrying: KafkaConnectionError: gone",
    ]
