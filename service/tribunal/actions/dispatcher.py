"""The dispatcher: matches a verdict against the response rules and runs the actions, concurrently,
each with a timeout and bounded retries of transient failures (exponential backoff with jitter);
deduplicates repeats within a rule's window; guards destructive actions; honours dry-run; counts
everything in Prometheus; and returns one outcome dict per action, for ``Record.actions``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from tribunal.actions.base import ActionError, ActionRequest, ActionSkipped, ActionTarget
from tribunal.actions.guard import BlastRadiusGuard, Deduper, DedupeWindows, DestructiveBudget
from tribunal.actions.rules import BoundAction, RuleMatchResult, RuleSet, RulesRuntime
from tribunal.model import Evidence, Verdict
from tribunal.model.redact import redact_violation_texts
from tribunal.settings import ActionSettings

log = logging.getLogger(__name__)

Outcome = dict[str, Any]
ActionKey = tuple[str, str, str]
"""(rule, action, target) of an outcome: which action of which rule it is."""


def action_key(outcome: Mapping[str, Any]) -> ActionKey:
    return (str(outcome.get("rule")), str(outcome.get("action")), str(outcome.get("target")))


class ActionMetrics:
    """Counters per action and target, kept here only (targets never count)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["action", "target"]
        self.outcomes = Counter(
            "tribunal_actions",
            "Actions by outcome: success, failure, skipped, dry_run, deduplicated, rate_limited, exempt.",
            [*labels, "status"],
            registry=registry,
        )
        self.attempts = Counter(
            "tribunal_action_attempts", "Attempts, retries included.", labels, registry=registry
        )
        self.retries = Counter(
            "tribunal_action_retries", "Retries of transient failures.", labels, registry=registry
        )
        self.dedupe_hits = Counter(
            "tribunal_action_dedupe_hits",
            "Actions not taken: a repeat within the dedupe window.",
            labels,
            registry=registry,
        )
        self.shared_state_errors = Counter(
            "tribunal_action_shared_state_errors",
            "Dedupe windows or blast-radius budgets that the database shared by the replicas did not "
            "answer: dedupe then acts (this replica's own windows), the guard refuses.",
            ["state"],
            registry=registry,
        )


class Dispatcher:
    """``dispatch(evidence, verdict)`` acts on one verdict. ``targets`` maps (action, target name) to a
    built target; ``rules`` is the live rule set. ``start``/``stop`` are explicit and idempotent;
    ``stop`` also runs the ``closers`` (clients the composition handed over).

    ``dedupe`` and ``budget`` share the dedupe windows and the blast-radius budget between replicas
    (``tribunal.store.shared``); each call to them is bounded by ``shared_timeout``. When they fail,
    dedupe fails open (this process's own windows decide: the action is taken) and the budget fails
    closed (the destructive action is refused as ``rate_limited``); both count in
    ``tribunal_action_shared_state_errors_total``. Without them, both live in this process."""

    def __init__(
        self,
        rules: RulesRuntime,
        targets: dict[tuple[str, str], ActionTarget],
        settings: ActionSettings,
        registry: CollectorRegistry,
        *,
        dry_run: bool = False,
        exempt_namespaces: Iterable[str] = (),
        reload_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        closers: Iterable[Callable[[], Awaitable[None]]] = (),
        dedupe: DedupeWindows | None = None,
        budget: DestructiveBudget | None = None,
        shared_timeout: float = 2.0,
    ) -> None:
        self.rules = rules
        self.targets = targets
        self.settings = settings
        self.dry_run = dry_run
        self.reload_interval = reload_interval
        self.metrics = ActionMetrics(registry)
        self.deduper = Deduper(clock)
        self.guard = BlastRadiusGuard(settings.destructive_per_minute, exempt_namespaces, clock)
        self.shared_dedupe = dedupe
        self.budget: DestructiveBudget = budget if budget is not None else self.guard
        self.shared_timeout = shared_timeout
        self._shared_down: set[str] = set()  # shared state that failed last time (logged once)
        self._sleep = sleep
        self._jitter = jitter
        self._closers = list(closers)
        # Targets that look at every verdict (block-image clears fixed images), and how.
        self._observers = [
            (target, observe)
            for target in targets.values()
            if (observe := getattr(target, "observe", None)) is not None
        ]
        self._watch: asyncio.Task[None] | None = None
        self._started: list[ActionTarget] = []

    async def start(self) -> None:
        assert self._watch is None, "Dispatcher.start() called twice"
        try:
            for target in self.targets.values():
                await target.start()
                self._started.append(target)
        except BaseException:
            await self.stop()
            raise
        self._watch = asyncio.create_task(self._watch_rules(), name="tribunal-response-rules")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        while self._started:
            target = self._started.pop()
            try:
                await target.stop()
            except Exception:
                log.exception("stopping action target %s failed", type(target).__name__)
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            try:
                await close()
            except Exception:
                log.exception("closing an action client failed")

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def probe(self) -> str | None:
        """For a non-fatal ReadinessCheck: the response rules' last reload error, if any."""
        return self.rules.probe()

    async def _watch_rules(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            await asyncio.to_thread(self.rules.reload)

    async def dispatch(
        self,
        evidence: Evidence | None,
        verdict: Verdict,
        labels: Mapping[str, str] | None = None,
        *,
        only: Collection[ActionKey] | None = None,
    ) -> list[Outcome]:
        """Act on ``verdict``; one outcome per action taken, planned or skipped (empty when no rule
        matches). Never raises for a failed action: failures are outcomes. ``labels`` (the subject's,
        for rules that select on them) spare building ``evidence`` where the source has none.
        ``only``: run just these actions (``action_key`` of their earlier outcomes: a retry of those
        that failed), nothing else."""
        outcomes: list[Outcome] = []
        for target, observe in self._observers if only is None else ():
            try:
                observed = await observe(verdict)
            except Exception as exc:
                log.exception("observing verdict %s failed", verdict.evidence_id)
                observed = {"status": "failure", "error": str(exc), "target": type(target).__name__}
            if observed:
                outcomes.append(observed)
        rule_set: RuleSet = self.rules.rules
        matches = rule_set.match(verdict, evidence, labels)
        if only is not None:
            matches = [m for m in matches if any(k[0] == m.rule.rule.name for k in only)]
        if len(matches) == 1:  # the common case: no task for gather to wrap it in
            outcomes.extend(await self._rule(evidence, verdict, matches[0], only))
        elif matches:
            for result in await asyncio.gather(*(self._rule(evidence, verdict, m, only) for m in matches)):
                outcomes.extend(result)
        return outcomes

    async def _rule(
        self,
        evidence: Evidence | None,
        verdict: Verdict,
        match: RuleMatchResult,
        only: Collection[ActionKey] | None = None,
    ) -> list[Outcome]:
        rule = match.rule.rule
        actions = [
            b for b in match.rule.actions if only is None or (rule.name, b.spec.action, b.spec.name) in only
        ]
        policies = sorted({v.policy for v in match.violations})
        key = (rule.name, verdict.subject.key(), verdict.subject.container or "", ",".join(policies))
        repeats = await self._claim(key, rule.dedupe, verdict.evidence_id)
        if repeats:
            out = []
            for bound in actions:
                self.metrics.dedupe_hits.labels(bound.spec.action, bound.spec.name).inc()
                out.append(
                    self._outcome(bound, rule.name, "deduplicated", repeats=repeats, policies=policies)
                )
            return out
        requests = [
            (
                bound,
                ActionRequest(
                    evidence=evidence,
                    verdict=verdict,
                    rule=rule.name,
                    # What actions send out (alerts, annotations, Events) quotes no secret.
                    violations=redact_violation_texts(match.violations),
                    params=bound.params,
                    dedupe_seconds=rule.dedupe,
                ),
            )
            for bound in actions
        ]
        dry_run = self.dry_run or rule.dry_run
        first = [(b, r) for b, r in requests if not b.spec.runs_last]
        last = [(b, r) for b, r in requests if b.spec.runs_last]
        outcomes = list(await asyncio.gather(*(self._one(b, r, dry_run) for b, r in first)))
        outcomes += await asyncio.gather(*(self._one(b, r, dry_run) for b, r in last))
        if any(o["status"] == "failure" for o in outcomes):
            await self._release(key)  # let the next occurrence try again
        return outcomes

    async def _claim(self, key: tuple[str, ...], window: float, owner: str) -> int:
        """0: act (first in the window); else the repeats so far. Shared windows that do not answer
        fail open: this process's own windows decide."""
        if self.shared_dedupe is None or window <= 0:
            return self.deduper.check(key, window)
        try:
            async with asyncio.timeout(self.shared_timeout):
                repeats = await self.shared_dedupe.claim(key, window, owner)
        except Exception as exc:
            self._shared_failed("dedupe", exc)
            return self.deduper.check(key, window)
        self._shared_ok("dedupe")
        return repeats

    async def _release(self, key: tuple[str, ...]) -> None:
        self.deduper.forget(key)
        if self.shared_dedupe is None:
            return
        try:
            async with asyncio.timeout(self.shared_timeout):
                await self.shared_dedupe.release(key)
        except Exception as exc:  # the window stays: the next occurrence acts once it ends
            self._shared_failed("dedupe", exc)

    async def _take_budget(self, namespace: str) -> str | None:
        """Why a destructive action in ``namespace`` may not run now, or None (a slot taken). A shared
        budget that does not answer fails closed."""
        limit = self.settings.destructive_per_minute
        if self.budget is self.guard:
            allowed = self.guard.allow(namespace)
        else:
            try:
                async with asyncio.timeout(self.shared_timeout):
                    allowed = await self.budget.take(namespace)
            except Exception as exc:
                self._shared_failed("budget", exc)
                return (
                    "blast radius: the budget shared by the replicas (the database) does not answer; "
                    "destructive actions are refused until it does"
                )
            self._shared_ok("budget")
        if allowed:
            return None
        return f"blast radius: {limit} destructive actions per minute in {namespace}"

    def _shared_failed(self, state: str, exc: BaseException) -> None:
        self.metrics.shared_state_errors.labels(state).inc()
        if state not in self._shared_down:
            self._shared_down.add(state)
            what = "acting on this replica's own windows" if state == "dedupe" else "refusing to destroy"
            log.warning(
                "shared %s state unreachable (%s): %s until it answers",
                state,
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                what,
            )

    def _shared_ok(self, state: str) -> None:
        if state in self._shared_down:
            self._shared_down.discard(state)
            log.info("shared %s state answers again", state)

    def _outcome(self, bound: BoundAction, rule: str, status: str, **extra: Any) -> Outcome:
        self.metrics.outcomes.labels(bound.spec.action, bound.spec.name, status).inc()
        return {
            "rule": rule,
            "action": bound.spec.action,
            "target": bound.spec.name,
            "status": status,
            **extra,
        }

    async def _one(self, bound: BoundAction, request: ActionRequest, dry_run: bool) -> Outcome:
        spec = bound.spec
        target = self.targets[(spec.action, spec.name)]
        namespace = request.verdict.subject.namespace
        policies = request.policies
        if spec.touches_cluster and self.guard.is_exempt(namespace):
            return self._outcome(
                bound, request.rule, "exempt", reason=f"namespace {namespace} is exempt", policies=policies
            )
        if spec.touches_cluster and (refusal := self._not_granted(spec.action, namespace)) is not None:
            return self._outcome(bound, request.rule, "skipped", reason=refusal, policies=policies)
        if dry_run:
            try:
                plan = target.plan(request)
            except ActionSkipped as exc:
                return self._outcome(
                    bound, request.rule, "skipped", reason=str(exc), dry_run=True, policies=policies
                )
            return self._outcome(bound, request.rule, "dry_run", dry_run=True, plan=plan, policies=policies)
        if spec.destructive and namespace and (reason := await self._take_budget(namespace)) is not None:
            return self._outcome(bound, request.rule, "rate_limited", reason=reason, policies=policies)
        return await self._run(bound, target, request)

    def _not_granted(self, action: str, namespace: str | None) -> str | None:
        """Why this installation may not run ``action`` in ``namespace`` (its RBAC follows the same
        settings), or None."""
        if action not in self.settings.cluster_actions:
            return (
                f"the {action} action is not enabled in this installation "
                "(TRIBUNAL_ACTIONS__CLUSTER_ACTIONS; the chart's actions values)"
            )
        allowed = self.settings.namespaces
        if allowed and namespace not in allowed:
            return f"namespace {namespace} is outside those this installation acts in ({', '.join(allowed)})"
        return None

    async def _run(self, bound: BoundAction, target: ActionTarget, request: ActionRequest) -> Outcome:
        spec = bound.spec
        attempts = self.metrics.attempts.labels(spec.action, spec.name)
        retries = self.metrics.retries.labels(spec.action, spec.name)
        timeout = bound.timeout or self.settings.timeout_seconds
        started = datetime.now(UTC)
        attempt = 0

        async def once() -> dict[str, Any]:
            """One attempt; every failure as an ActionError (retriable or not), or ActionSkipped."""
            nonlocal attempt
            attempt += 1
            attempts.inc()
            try:
                async with asyncio.timeout(timeout):
                    return await target.run(request)
            except (ActionError, ActionSkipped):
                raise
            except TimeoutError:
                raise ActionError(f"timed out after {timeout:g}s", retriable=True) from None
            except Exception as exc:  # a bug in a target: recorded, never retried
                log.exception("action %s/%s raised", spec.action, spec.name)
                raise ActionError(f"{type(exc).__name__}: {exc}") from exc

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=lambda state: self.backoff(state.attempt_number),
            retry=retry_if_exception(lambda exc: isinstance(exc, ActionError) and exc.retriable),
            sleep=self._sleep,
            before_sleep=lambda _: retries.inc(),
            reraise=True,
        )
        try:
            detail: dict[str, Any] = await retrying(once)
        except ActionSkipped as exc:
            return self._outcome(
                bound, request.rule, "skipped", reason=str(exc), attempts=attempt, policies=request.policies
            )
        except ActionError as error:
            log.warning("action %s/%s of rule %s failed: %s", spec.action, spec.name, request.rule, error)
            return self._outcome(
                bound,
                request.rule,
                "failure",
                attempts=attempt,
                error=str(error),
                http_status=error.status,
                retriable=error.retriable,
                policies=request.policies,
                started_at=started.isoformat(),
            )
        return self._outcome(
            bound,
            request.rule,
            "success",
            attempts=attempt,
            detail=detail,
            policies=request.policies,
            started_at=started.isoformat(),
        )

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based): base * 2^(attempt-1), capped, then "equal jitter"
        (between half and all of it)."""
        delay = min(self.settings.backoff_max_seconds, self.settings.backoff_seconds * 2.0 ** (attempt - 1))
        return delay / 2 + self._jitter() * delay / 2
