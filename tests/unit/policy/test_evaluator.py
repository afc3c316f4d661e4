from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.conftest import POLICY_DIR, pod, review
from tribunal.model import Evidence, parse_evidence
from tribunal.policy import EvaluationTimeout, Judge, ThreadEvaluator, load_policy_set


class SlowJudge:
    """Sleeps (releasing the GIL) before judging: stands for a queue of slow evaluations."""

    def __init__(self, judge: Judge, seconds: float) -> None:
        self.inner = judge
        self.engine = judge.engine
        self.seconds = seconds
        self.threads: set[str] = set()

    def judge(self, evidence: Evidence, context: dict[str, Any] | None = None) -> Any:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        return self.inner.judge(evidence, context)


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.build(load_policy_set(POLICY_DIR))


async def test_judges_on_its_own_thread(judge: Judge) -> None:
    slow = SlowJudge(judge, 0)
    evaluator = ThreadEvaluator(lambda: slow)  # type: ignore[arg-type,return-value]
    await evaluator.start()
    try:
        verdict = await evaluator.judge(parse_evidence(review(pod(), uid="a"), "t"))
    finally:
        await evaluator.stop()
    assert verdict.evidence_id == "a"
    assert slow.threads and all(name.startswith("tribunal-eval") for name in slow.threads)


async def test_deadline_answers_while_the_evaluation_is_still_running(judge: Judge) -> None:
    evaluator = ThreadEvaluator(lambda: SlowJudge(judge, 0.5))  # type: ignore[arg-type,return-value]
    await evaluator.start()
    try:
        with pytest.raises(EvaluationTimeout, match="no verdict within 20 ms"):
            await evaluator.judge(parse_evidence(review(pod(), uid="b"), "t"), deadline=0.02)
    finally:
        await evaluator.stop()


async def test_judging_before_start_is_an_error(judge: Judge) -> None:
    evaluator = ThreadEvaluator(lambda: judge)
    with pytest.raises(RuntimeError, match="not started"):
        await evaluator.judge(parse_evidence(review(pod(), uid="c"), "t"))
