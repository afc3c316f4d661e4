"""Evaluation on one dedicated thread that owns its engine (the alternative to judging inline on the
event loop, which the in-process JudgePool does, and to the judge worker processes).

regorus engines are bound to the thread that built them and hold the GIL while they evaluate, so a
thread adds no throughput. An admission review takes about 0.3 ms to judge; handing it to a thread
under load made the two threads contend for the GIL (measured with bench/bench_webhook.py: 1.3x fewer
requests/s at saturation and 6x the p99 at 500 requests/s), so the webhook judges inline.

What a thread gives is a queue with a deadline: when evaluations pile up (a burst, a large Trivy
report ahead in line), a request whose deadline passes is answered by its caller's failure policy
instead of waiting. One evaluation that alone runs past the deadline still holds the GIL until it
ends: only a worker process can be abandoned mid-evaluation."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from tribunal.model import Evidence, Verdict
from tribunal.policy.judge import Judge

T = TypeVar("T")


class EvaluationTimeout(Exception):
    """The verdict was not ready within the deadline."""


class ThreadEvaluator:
    """Runs ``current_judge().judge(evidence)`` on one thread, in arrival order."""

    def __init__(self, current_judge: Callable[[], Judge], name: str = "tribunal-eval") -> None:
        self._current_judge = current_judge
        self._name = name
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=self._name)
        # Build the engine on its thread now, so the first request does not pay for the compile.
        await self._submit(lambda: self._current_judge().engine.evaluate("admission", b'{"kind":"warmup"}'))

    async def stop(self) -> None:
        if self._executor is not None:
            # The engine must be dropped by the thread that made it: release it there, then shut down.
            release = self._executor.submit(lambda: self._current_judge().engine.close())
            executor, self._executor = self._executor, None
            await asyncio.wrap_future(release)
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def judge(
        self, evidence: Evidence, deadline: float | None = None, context: dict[str, Any] | None = None
    ) -> Verdict:
        """The verdict on ``evidence``; raises EvaluationTimeout after ``deadline`` seconds and
        PolicyEvaluationError when the policies fail on it."""
        judge = self._current_judge()  # the revision current at arrival judges this evidence
        future = self._submit(lambda: judge.judge(evidence, context))
        if deadline is None:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            future.cancel()  # still queued: never runs; already running: finishes, result dropped
            raise EvaluationTimeout(f"no verdict within {deadline * 1000:.0f} ms") from None

    def _submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        if self._executor is None:
            raise RuntimeError("evaluator is not started")
        return asyncio.wrap_future(self._executor.submit(fn))
