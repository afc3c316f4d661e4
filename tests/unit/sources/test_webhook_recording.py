"""Every answered admission review is recorded, or counted in tribunal_admission_unrecorded_total with
the reason and logged: never lost in a background task whose exception nobody retrieves."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import pod, review
from tribunal.model import Decision, Evidence, EvidenceKind, Subject, Verdict
from tribunal.policy import Judged, Outcome, RawItem
from tribunal.sources.webhook import AdmissionWebhook, WebhookConfig
from tribunal.store import Record


class NoPool:
    workers = 1

    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]:
        raise AssertionError("not judged in these tests")


class ListRecorder:
    """Takes what the webhook offers; ``fail`` makes offering raise (a bug in the hand-over)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.records: list[Record] = []

    def offer(self, record: Record) -> bool:
        if self.fail:
            raise RuntimeError("the recorder is broken")
        self.records.append(record)
        return True


def _judged(uid: str, metadata: Any) -> tuple[Judged, Verdict, bytes, dict[str, Any]]:
    doc = review(pod({"name": "app", "image": "nginx:1.27"}), uid=uid)
    doc["request"]["object"]["metadata"] = metadata
    body = orjson.dumps(doc)
    now = datetime.now(UTC)
    verdict = Verdict(
        evidence_id=uid,
        kind=EvidenceKind.ADMISSION,
        subject=Subject(namespace="default", workload_kind="Pod"),
        decision=Decision.ALLOW,
        policy_revision="r1",
        engine="regorus",
        evaluated_at=now,
        latency_ms=0.1,
    )
    judged = Judged(
        source=f"AdmissionReview {uid}",
        evidence_id=uid,
        kind=EvidenceKind.ADMISSION,
        subject_key="default/Pod/-",
        decision=Decision.ALLOW,
        latency_ms=0.1,
        verdict_json=verdict.model_dump_json().encode(),
        received_at=now,
    )
    return judged, verdict, body, doc


def _webhook(recorder: ListRecorder, registry: CollectorRegistry, act: Any = None) -> AdmissionWebhook:
    return AdmissionWebhook(
        NoPool(),
        recorder,  # type: ignore[arg-type]
        WebhookConfig(record_interval_seconds=0),
        registry,
        revision=lambda: "r1",
        act=act,
        stop_grace_seconds=0.05,
    )


def _unrecorded(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("tribunal_admission_unrecorded_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("metadata", ["x", ["a", "b"], 5, {"labels": "x"}], ids=repr)
async def test_a_review_whose_metadata_is_not_an_object_is_acted_on_and_recorded(metadata: Any) -> None:
    seen: list[Mapping[str, str] | None] = []

    async def act(evidence: Evidence | None, verdict: Verdict, labels: Mapping[str, str] | None) -> list[Any]:
        seen.append(labels)
        return [{"action": "annotate", "status": "done"}]

    recorder, registry = ListRecorder(), CollectorRegistry()
    webhook = _webhook(recorder, registry, act)
    webhook._after(*_judged("odd-1", metadata))
    await webhook.stop()
    assert seen == [{}]
    [record] = recorder.records
    assert record.evidence_id == "odd-1" and record.actions == ({"action": "annotate", "status": "done"},)
    assert _unrecorded(registry, "error") == 0


async def test_a_record_that_cannot_be_handed_over_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    webhook = _webhook(ListRecorder(fail=True), registry)
    webhook._after(*_judged("lost-1", {"name": "web"}))
    await webhook.stop()
    assert _unrecorded(registry, "error") == 1
    assert "lost-1" in caplog.text and "not recorded" in caplog.text


async def test_a_failing_action_still_records_the_verdict() -> None:
    async def act(evidence: Evidence | None, verdict: Verdict, labels: Mapping[str, str] | None) -> list[Any]:
        raise RuntimeError("dispatcher bug")

    recorder = ListRecorder()
    webhook = _webhook(recorder, CollectorRegistry(), act)
    webhook._after(*_judged("act-fails", {"name": "web"}))
    await webhook.stop()
    assert [r.evidence_id for r in recorder.records] == ["act-fails"]


async def test_actions_cut_short_by_a_stop_still_record_the_verdict() -> None:
    started = asyncio.Event()

    async def act(evidence: Evidence | None, verdict: Verdict, labels: Mapping[str, str] | None) -> list[Any]:
        started.set()
        await asyncio.Event().wait()  # never finishes: the stop cancels it
        return []

    recorder, registry = ListRecorder(), CollectorRegistry()
    webhook = _webhook(recorder, registry, act)
    webhook._after(*_judged("slow-act", {"name": "web"}))
    await started.wait()
    await webhook.stop()
    assert [r.evidence_id for r in recorder.records] == ["slow-act"]
    assert _unrecorded(registry, "stopped") == 0
