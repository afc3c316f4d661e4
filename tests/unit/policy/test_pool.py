"""JudgePool: in-process and in worker processes it gives the same outcomes; bad documents become
Rejected naming the document and field; a policy reload reaches the workers; a dead worker is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from tests.conftest import POLICY_DIR, RULES_DIR, falco_alert, trivy_report
from tribunal.model import Decision, EvidenceKind, Verdict
from tribunal.policy import Judged, JudgePool, PolicyRuntime, RawItem, Rejected


@pytest.fixture(scope="module")
def runtime() -> PolicyRuntime:
    return PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR)


@pytest.fixture
async def workers(runtime: PolicyRuntime) -> AsyncIterator[JudgePool]:
    async with JudgePool(runtime, 1) as pool:
        yield pool


ITEMS: list[RawItem] = [
    (orjson.dumps(falco_alert()), "t[0]@0", EvidenceKind.FALCO),
    (orjson.dumps(trivy_report()), "t[0]@1", None),
    (b"{oops", "t[0]@2", None),
    (b"", "t[0]@3", EvidenceKind.FALCO),
    (None, "t[0]@4", None),
    (orjson.dumps(falco_alert(priority="Loud")), "t[0]@5", EvidenceKind.FALCO),
    (orjson.dumps(trivy_report()), "t[0]@6", EvidenceKind.FALCO),
]


def check(outcomes: list[Judged | Rejected]) -> None:
    falco, trivy, not_json, empty, none, bad_field, wrong_kind = outcomes
    assert isinstance(falco, Judged) and falco.evidence_id == falco_alert()["uuid"]
    assert falco.kind is EvidenceKind.FALCO and falco.subject_key == "shop/-/web-7d4"
    verdict = Verdict.model_validate_json(falco.verdict_json)
    assert verdict.evidence_id == falco.evidence_id and verdict.decision is falco.decision
    assert isinstance(trivy, Judged) and trivy.kind is EvidenceKind.TRIVY
    assert isinstance(not_json, Rejected) and not_json.reason == "evidence"
    assert not_json.error.startswith("t[0]@2: not valid JSON")
    assert isinstance(empty, Rejected) and empty.error == "t[0]@3: empty: no document"
    assert isinstance(none, Rejected) and none.reason == "evidence"
    assert isinstance(bad_field, Rejected) and bad_field.field == "priority"
    assert bad_field.error.startswith("t[0]@5: priority: ")
    assert (
        isinstance(wrong_kind, Rejected)
        and "expected falco evidence, this looks like trivy" in wrong_kind.error
    )


async def test_in_process_outcomes_name_the_document_and_field(runtime: PolicyRuntime) -> None:
    async with JudgePool(runtime, 0) as pool:
        outcomes = await pool.judge_raw(ITEMS)
    check(outcomes)
    judged = outcomes[0]
    assert isinstance(judged, Judged) and judged.evidence is not None and judged.verdict is not None


async def test_worker_outcomes_equal_in_process_ones(runtime: PolicyRuntime, workers: JudgePool) -> None:
    remote = await workers.judge_raw(ITEMS)
    check(remote)
    local = await JudgePool(runtime, 0).judge_raw(ITEMS)
    for a, b in zip(remote, local, strict=True):
        if isinstance(a, Judged):
            assert isinstance(b, Judged) and a.evidence is None  # only light fields cross processes
            keep = {"evidence_id", "kind", "subject", "decision", "violations", "policy_revision"}
            va, vb = Verdict.model_validate_json(a.verdict_json), Verdict.model_validate_json(b.verdict_json)
            assert va.model_dump(include=keep) == vb.model_dump(include=keep)
            evidence, verdict = a.rebuild(ITEMS[remote.index(a)][0] or b"")
            assert evidence.id == a.evidence_id and verdict.decision is a.decision
        else:
            assert a == b


async def test_a_policy_reload_reaches_the_workers(policy_dir: Callable[[dict[str, str]], Path]) -> None:
    rule = """package tribunal.falco.shell

import rego.v1

violations contains {"msg": "%s", "severity": "high"} if {
	input.event.rule == "Terminal shell in container"
}
"""
    root = policy_dir({"runtime/shell.rego": rule % "first"})
    runtime = PolicyRuntime(root)
    item: list[RawItem] = [(orjson.dumps(falco_alert()), "t[0]@0", EvidenceKind.FALCO)]
    async with JudgePool(runtime, 1) as pool:
        before = await pool.judge_raw(item)
        (root / "runtime" / "shell.rego").write_text(rule % "second")
        assert runtime.reload(force=True)
        after = await pool.judge_raw(item)
    msgs = [Verdict.model_validate_json(o.verdict_json).violations[0].msg for o in (*before, *after)]  # type: ignore[union-attr]
    assert msgs == ["first", "second"]
    assert Verdict.model_validate_json(after[0].verdict_json).policy_revision == runtime.revision  # type: ignore[union-attr]


async def test_a_killed_worker_is_replaced_and_the_batch_still_judged(runtime: PolicyRuntime) -> None:
    async with JudgePool(runtime, 1) as pool:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        outcomes = await pool.judge_raw(ITEMS[:1])
        assert pool.restarts == 1
    assert isinstance(outcomes[0], Judged) and outcomes[0].decision in set(Decision)


# About a second of CPU on the alert whose rule is "slow" (2,000 x 2,000 comparisons, little memory);
# nothing on the others.
SLOW_ON_DEMAND = """package tribunal.falco.slow

import rego.v1

violations contains {"msg": "slow", "severity": "low"} if {
	input.event.rule == "slow"
	count([1 | some x in numbers.range(1, 2000); some y in numbers.range(1, 2000); x == y + 1]) < 0
}

violations contains {"msg": "seen", "severity": "low"} if input.event.rule != "slow"
"""


async def test_a_document_past_the_cpu_limit_is_rejected_and_its_worker_replaced(
    policy_dir: Callable[[dict[str, str]], Path],
) -> None:
    runtime = PolicyRuntime(policy_dir({"runtime/slow.rego": SLOW_ON_DEMAND}))
    fine, slow = falco_alert(), falco_alert(rule="slow", uuid="slow-1")
    batch: list[RawItem] = [
        (orjson.dumps(fine), "t[0]@0", EvidenceKind.FALCO),
        (orjson.dumps(slow), "t[0]@1", EvidenceKind.FALCO),
        (orjson.dumps(falco_alert(uuid="other")), "t[0]@2", EvidenceKind.FALCO),
    ]
    behind: list[RawItem] = [(orjson.dumps(fine), "t[1]@0", EvidenceKind.FALCO)]
    async with JudgePool(runtime, 1, cpu_limit_seconds=0.2) as pool:
        (first,) = pool.pids
        # The second batch waits in the same worker behind the runaway one, and is judged again.
        outcomes, queued = await asyncio.gather(pool.judge_raw(batch), pool.judge_raw(behind))
        (second,) = pool.pids
        after = await pool.judge_raw(behind)
        assert pool.restarts == 1 and pool.over_limit == 1 and second != first
    ok_before, stopped, ok_after = outcomes
    assert isinstance(stopped, Rejected) and stopped.reason == "policy" and stopped.source == "t[0]@1"
    assert "t[0]@1: judging it took more than 0.2 s of CPU" in stopped.error
    for judged in (ok_before, ok_after, *queued, *after):
        assert isinstance(judged, Judged)
        assert [v.msg for v in Verdict.model_validate_json(judged.verdict_json).violations] == ["seen"]
    assert [o.evidence_id for o in (ok_before, ok_after)] == [fine["uuid"], "other"]  # type: ignore[union-attr]


async def test_without_a_cpu_limit_a_long_evaluation_finishes(
    policy_dir: Callable[[dict[str, str]], Path],
) -> None:
    runtime = PolicyRuntime(policy_dir({"runtime/slow.rego": SLOW_ON_DEMAND}))
    item: list[RawItem] = [(orjson.dumps(falco_alert(rule="slow")), "t[0]@0", EvidenceKind.FALCO)]
    async with JudgePool(runtime, 1) as pool:
        (outcome,) = await pool.judge_raw(item)
        assert pool.restarts == 0 and pool.over_limit == 0
    assert isinstance(outcome, Judged) and outcome.decision is Decision.ALLOW


async def test_a_document_whose_reading_crashes_is_rejected_as_unreadable_not_as_transient(
    runtime: PolicyRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading a document is deterministic: a bug that makes it raise (logged with its traceback)
    must not answer 503 / internal, which producers retry for ever."""

    def crash(*args: object, **kwargs: object) -> None:
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr("tribunal.policy.pool.parse_evidence", crash)
    async with JudgePool(runtime, 0) as pool:
        [outcome] = await pool.judge_raw([(orjson.dumps(falco_alert()), "t[0]@9", EvidenceKind.FALCO)])
    assert isinstance(outcome, Rejected) and outcome.reason == "evidence"
    assert outcome.error.startswith("t[0]@9: could not be read: AttributeError")
    assert "t[0]@9" in caplog.text and "Traceback" in caplog.text


async def test_workers_run_at_the_lower_priority_asked(runtime: PolicyRuntime) -> None:
    """The bulk pool's workers (ingest, Kafka) yield the CPU to admission's: their nice value is
    raised by ``niceness``; a pool without it runs at the server's own."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    async with JudgePool(runtime, 1, niceness=5) as bulk, JudgePool(runtime, 1) as admission:
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in bulk.pids] == [min(19, own + 5)]
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in admission.pids] == [own]
        [judged] = await bulk.judge_raw(ITEMS[:1])
        assert isinstance(judged, Judged)
