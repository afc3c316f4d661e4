"""The validating admission webhook: ``POST /validate`` answers AdmissionReviews.

The API server waits for this answer, so the handler is strict about what it reads (size, content type,
depth, schema: a bad review gets 400 with a JSON error, never a 500), judges within a deadline, applies
the operator's failure policy when it cannot, and records the verdict in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from tribunal.model import (
    AdmissionResponse,
    AdmissionReview,
    Decision,
    Evidence,
    EvidenceError,
    EvidenceKind,
    Verdict,
    parse_evidence,
)
from tribunal.model.admission import Status
from tribunal.policy import EvaluationTimeout
from tribunal.sources.body import BodyError, read_limited
from tribunal.store import BackgroundRecorder, Record

log = logging.getLogger(__name__)

FailurePolicy = Literal["fail", "ignore"]
MAX_WARNINGS = 50
MAX_WARNING_CHARS = 512
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Evaluator(Protocol):
    async def judge(
        self, evidence: Evidence, deadline: float | None = None, context: dict[str, Any] | None = None
    ) -> Verdict: ...


# Acts on a verdict (the response rules' dispatcher), returning one outcome per action.
Act = Callable[[Evidence, Verdict], Awaitable[list[dict[str, Any]]]]


class WebhookConfig(BaseModel):
    """How the webhook admits. ``failure_policy``: ``fail`` denies (fail-closed) and ``ignore`` allows
    (fail-open) when a verdict cannot be reached within ``deadline_seconds``."""

    model_config = ConfigDict(extra="forbid")

    exempt_namespaces: frozenset[str] = frozenset({"kube-system"})
    exempt_users: frozenset[str] = frozenset()
    exempt_groups: frozenset[str] = frozenset()
    failure_policy: FailurePolicy = "fail"
    deadline_seconds: float = Field(3.0, gt=0, lt=30)
    dry_run: bool = False
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)


class BadReview(Exception):
    """The request body is not an AdmissionReview this webhook can answer."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tribunal_admission_requests",
            "AdmissionReviews answered, by decision (allow, warn, deny, exempt, error).",
            ["decision"],
            registry=registry,
        )
        self.latency = Histogram(
            "tribunal_admission_request_seconds",
            "Time from request to answer, by decision.",
            ["decision"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.invalid = Counter(
            "tribunal_admission_invalid_requests",
            "Requests answered 400 (malformed, oversized, wrong kind).",
            registry=registry,
        )
        self.evaluation_errors = Counter(
            "tribunal_evaluation_errors",
            "Evaluations that failed or missed their deadline, by kind and cause.",
            ["kind", "cause"],
            registry=registry,
        )
        self._by_decision: dict[str, tuple[Any, Any]] = {}
        self.failure_policy = Counter(
            "tribunal_admission_failure_policy",
            "Answers given by the failure policy, by outcome (fail_open, fail_closed) and cause.",
            ["outcome", "cause"],
            registry=registry,
        )

    def observe(self, decision: str, seconds: float) -> None:
        children = self._by_decision.get(decision)
        if children is None:
            children = (self.requests.labels(decision), self.latency.labels(decision))
            self._by_decision[decision] = children
        children[0].inc()
        children[1].observe(seconds)


class AdmissionWebhook:
    """``POST /validate``. ``evaluator`` judges; after the answer, ``act`` (the response rules) runs on
    the verdict and ``recorder`` keeps it with the action outcomes. ``dryRun`` requests cause neither:
    they have no side effects. ``stop`` waits for the actions still running."""

    def __init__(
        self,
        evaluator: Evaluator,
        recorder: BackgroundRecorder,
        config: WebhookConfig,
        registry: CollectorRegistry,
        revision: Callable[[], str],
        act: Act | None = None,
        stop_grace_seconds: float = 10.0,
    ) -> None:
        self.evaluator = evaluator
        self.recorder = recorder
        self.config = config
        self.metrics = WebhookMetrics(registry)
        self._revision = revision
        self._act = act
        # Publishes the review as received (the Kafka audit copy), when Kafka is configured.
        self.audit: Callable[[bytes, str], Awaitable[None]] | None = None
        self._stop_grace = stop_grace_seconds
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self._stop_grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopped with %d verdicts still being acted on", len(late))

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/validate", self.validate)]

    async def validate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, self.config.max_body_bytes)
            doc = decode_review(body)
            evidence = parse_evidence(doc, f"AdmissionReview {_uid_of(doc)}", EvidenceKind.ADMISSION)
        except BadReview as exc:
            return self._bad_request(exc.message, exc.field)
        except EvidenceError as exc:
            return self._bad_request(exc.message, exc.field)
        review = evidence.body
        assert isinstance(review, AdmissionReview) and review.request is not None
        answer, decision = await self._answer(review, evidence, body, started)
        self.metrics.observe(decision, time.perf_counter() - started)
        return web.Response(body=orjson.dumps(review.respond(answer)), content_type="application/json")

    async def _answer(
        self, review: AdmissionReview, evidence: Evidence, body: bytes, started: float
    ) -> tuple[AdmissionResponse, str]:
        request = review.request
        assert request is not None
        exemption = self._exemption(review)
        if exemption is not None:
            return AdmissionResponse(
                uid=request.uid,
                allowed=True,
                audit_annotations={"exempt": exemption, "policy-revision": self._revision()},
            ), "exempt"
        try:
            # Time already spent waiting (a backed-up loop, a slow client) counts against the deadline.
            remaining = self.config.deadline_seconds - (time.perf_counter() - started)
            if remaining <= 0:
                limit = self.config.deadline_seconds
                raise EvaluationTimeout(f"request waited past the {limit:g} s deadline")
            verdict = await self.evaluator.judge(evidence, remaining)
        except Exception as exc:
            return self._failure(request.uid, exc), "error"
        if not request.dry_run:
            self._after(evidence, verdict, body)
        return self._response(request.uid, verdict), verdict.decision.value

    def _exemption(self, review: AdmissionReview) -> str | None:
        request = review.request
        assert request is not None
        if request.namespace and request.namespace in self.config.exempt_namespaces:
            return f"namespace {request.namespace}"
        if request.user_info.username in self.config.exempt_users:
            return f"user {request.user_info.username}"
        for group in request.user_info.groups:
            if group in self.config.exempt_groups:
                return f"group {group}"
        return None

    def _response(self, uid: str, verdict: Verdict) -> AdmissionResponse:
        denying = verdict.denying
        warnings = [_clip(f"[{v.policy}] {v.msg}") for v in verdict.warning]
        annotations = {
            "policy-revision": verdict.policy_revision,
            "decision": verdict.decision.value,
        }
        violated = sorted({v.policy for v in verdict.violations if v.exception is None})
        if violated:
            annotations["violations"] = ",".join(violated)
        excepted = sorted({v.policy for v in verdict.violations if v.exception is not None})
        if excepted:
            annotations["excepted"] = ",".join(excepted)
        if self.config.dry_run and verdict.decision is not Decision.ALLOW:
            annotations["dry-run"] = f"would {verdict.decision.value}"
            return AdmissionResponse(uid=uid, allowed=True, audit_annotations=annotations)
        if len(warnings) > MAX_WARNINGS:
            warnings = [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings"]
        if not denying:
            return AdmissionResponse(
                uid=uid, allowed=True, warnings=warnings or None, audit_annotations=annotations
            )
        lines = [f"[{v.policy}] {v.msg}" for v in denying]
        message = (
            f"denied by Tribunal ({len(lines)} violation{'s' if len(lines) != 1 else ''}): "
            + "; ".join(lines)
        )
        return AdmissionResponse(
            uid=uid,
            allowed=False,
            status=Status(code=403, reason="Forbidden", message=message),
            warnings=warnings or None,
            audit_annotations=annotations,
        )

    def _failure(self, uid: str, exc: Exception) -> AdmissionResponse:
        cause = "deadline" if isinstance(exc, EvaluationTimeout) else "error"
        self.metrics.evaluation_errors.labels("admission", cause).inc()
        fail_open = self.config.failure_policy == "ignore"
        outcome = "fail_open" if fail_open else "fail_closed"
        self.metrics.failure_policy.labels(outcome, cause).inc()
        log.error("admission %s: %s (%s): %s", uid, cause, outcome, exc)
        annotations = {"failure-policy": outcome, "policy-revision": self._revision()}
        if fail_open:
            return AdmissionResponse(
                uid=uid,
                allowed=True,
                warnings=[
                    _clip(f"Tribunal could not judge this request ({cause}); allowed by failure policy")
                ],
                audit_annotations=annotations,
            )
        return AdmissionResponse(
            uid=uid,
            allowed=False,
            status=Status(
                code=500,
                reason="InternalError",
                message=f"Tribunal could not judge this request ({cause}: {exc}); denied by failure policy",
            ),
            audit_annotations=annotations,
        )

    def _after(self, evidence: Evidence, verdict: Verdict, body: bytes) -> None:
        """Act and record off the response path."""
        if self.audit is not None:
            self._track(self._publish_audit(body, evidence.id))
        if self._act is None:
            self._record(Record(evidence, verdict, raw=body))
            return
        self._track(self._act_then_record(evidence, verdict, body))

    async def _act_then_record(self, evidence: Evidence, verdict: Verdict, body: bytes) -> None:
        outcomes: list[dict[str, Any]] = []
        try:
            assert self._act is not None
            outcomes = await self._act(evidence, verdict)
        except Exception:  # the dispatcher reports action failures as outcomes; this is a bug
            log.exception("acting on admission %s failed", evidence.id)
        await self.recorder.put(Record(evidence, verdict, raw=body, actions=tuple(outcomes)))

    async def _publish_audit(self, body: bytes, uid: str) -> None:
        assert self.audit is not None
        try:
            await self.audit(body, uid)
        except Exception as exc:  # the answer stands; the audit copy is best effort, and logged
            log.error("admission %s: the audit copy could not be published: %s", uid, exc)

    def _record(self, record: Record) -> None:
        try:
            self.recorder.submit(record)
        except asyncio.QueueFull:  # never drop: wait for room, off the response path
            self._track(self.recorder.put(record))

    def _track(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _bad_request(self, message: str, field: str | None) -> web.Response:
        self.metrics.invalid.inc()
        error: dict[str, Any] = {"error": message}
        if field:
            error["field"] = field
        return web.Response(status=400, body=orjson.dumps(error), content_type="application/json")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing a non-JSON content type, an empty body and anything over ``limit``."""
    if request.content_type not in ("application/json", ""):
        raise BadReview(f"content type must be application/json, not {request.content_type}")
    try:
        return await read_limited(request, limit)
    except BodyError as exc:
        raise BadReview(f"{exc}: expected an AdmissionReview") from None


def decode_review(body: bytes) -> Any:
    """The JSON document, if it is an AdmissionReview with a request (parse_evidence checks the rest,
    depth included)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReview(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "AdmissionReview":
        raise BadReview("expected a JSON object of kind AdmissionReview", "kind")
    if not isinstance(doc.get("request"), dict):
        raise BadReview("an AdmissionReview to answer must hold a request", "request")
    return doc


def _uid_of(doc: dict[str, Any]) -> str:
    uid = doc["request"].get("uid")
    return uid if isinstance(uid, str) and len(uid) <= 128 else "?"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."
