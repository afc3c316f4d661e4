"""The validating admission webhook: ``POST /validate`` answers AdmissionReviews.

The API server waits for this answer, so the handler is strict about what it reads (size, content type,
depth, schema: a bad review gets 400 with a JSON error, never a 500), judges within a deadline, applies
the operator's failure policy when it cannot, and records the verdict in the background.

Reviews are judged by the server's judge pool (worker processes: regorus holds the GIL, so only
processes use a second core). The event loop reads only what it needs to answer (uid, apiVersion,
namespace and user for the exemptions, dryRun) with orjson; the worker parses and validates the review
and judges it, and an invalid review comes back as a 400 naming its field. Reviews that arrive while
every worker is busy are judged together in the next batch, so an idle server adds no wait."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from tribunal.model import (
    Decision,
    Enforcement,
    Evidence,
    EvidenceError,
    EvidenceKind,
    Verdict,
    parse_evidence,
    update_changes_nothing_judged,
)
from tribunal.model.admission import ADMISSION_API_VERSIONS
from tribunal.model.labels import labels_of
from tribunal.policy import EvaluationTimeout, Judged, Outcome, RawItem, Rejected
from tribunal.sources.body import BodyError, answer_refusal, read_limited
from tribunal.store import BackgroundRecorder, Record

log = logging.getLogger(__name__)

FailurePolicy = Literal["fail", "ignore"]
T = TypeVar("T")
MAX_WARNINGS = 50
STOP_RECORD_SECONDS = 1.0  # how long a stop waits for cancelled actions to record their verdicts
MAX_WARNING_CHARS = 512
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RawJudge(Protocol):
    """Judges raw documents in batches: a :class:`~tribunal.policy.JudgePool`."""

    @property
    def workers(self) -> int: ...

    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]: ...


class RunningLoop:
    """The running event loop, looked up once (again only if that loop has closed): on CPython 3.11
    ``asyncio.get_running_loop()``, and ``asyncio.create_task`` through it, make a getpid() system
    call each time, and a review needed four (2% of the event loop's time at saturation)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop


class MicroBatcher:
    """Hands reviews to ``pool`` in batches, at most ``slots`` batches at a time. While a worker has no
    batch a review goes at once, alone (no timer: no wait added when idle). Otherwise reviews wait and
    go together: into a free slot once as many wait as the batch launched last holds, and in any case
    as soon as a batch comes back. A review whose future is already done when its batch leaves
    (its deadline passed) is not sent. ``observe`` gets each batch's size.

    ``slots`` defaults to two per worker: each worker has the next batch waiting behind the one it
    judges, so it never idles while the server reads its answer and sends the next batch (measured on
    2 cores, one worker: 2,412-2,521 reviews/s at saturation with two slots, against 1,985 for two
    workers taking one batch at a time). Filling the second slot only once enough reviews wait keeps
    batches even: sent at once, the first review back after a batch went alone, a quarter of all
    batches held one review, and each cost a round trip (measured: 14-17% more reviews/s with a
    threshold, in three paired runs; 2-3% of batches hold one review with this one). The server leaves
    its event loop a core of its own (``tribunal serve`` runs one worker fewer than there are cores).
    """

    def __init__(
        self,
        pool: RawJudge,
        slots: int | None = None,
        observe: Callable[[int], None] | None = None,
        loop: RunningLoop | None = None,
    ) -> None:
        self.pool = pool
        self.slots = slots or (2 * pool.workers if pool.workers else 1)
        self._observe = observe
        self._waiting: list[tuple[RawItem, asyncio.Future[Outcome]]] = []
        self._busy = 0
        self._last_size = 0
        self._batches: set[asyncio.Task[None]] = set()
        self._loop = loop or RunningLoop()

    def submit(self, item: RawItem) -> asyncio.Future[Outcome]:
        """The outcome of ``item``, once judged; a pool failure is the future's exception."""
        future: asyncio.Future[Outcome] = self._loop().create_future()
        self._waiting.append((item, future))
        if self._busy < max(1, self.pool.workers) or (
            self._busy < self.slots and len(self._waiting) >= self._last_size
        ):
            self._launch()
        return future

    def _launch(self) -> None:
        batch = [(item, future) for item, future in self._waiting if not future.done()]
        self._waiting = []
        if not batch:
            return
        self._busy += 1
        self._last_size = len(batch)
        if self._observe is not None:
            self._observe(len(batch))
        task = self._loop().create_task(self._judge(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _judge(self, batch: list[tuple[RawItem, asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = await self.pool.judge_raw([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"the judge pool answered {len(outcomes)} of {len(batch)} reviews")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
        finally:
            self._busy -= 1
            if self._waiting:
                self._launch()


# Acts on a verdict (the response rules' dispatcher), returning one outcome per action. The evidence
# is None when a worker judged it (its labels are passed instead): nothing is parsed twice.
Act = Callable[[Evidence | None, Verdict, Mapping[str, str] | None], Awaitable[list[dict[str, Any]]]]


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
    # The whole body must arrive within this many seconds of the headers (else 408, connection closed).
    body_read_timeout_seconds: float = Field(10.0, gt=0)
    # Verdicts are handed to the recorder together, at most this often (0: each at once). Off the
    # response path: it only delays when a verdict shows in the store, and larger batches cost the
    # store far less per verdict.
    record_interval_seconds: float = Field(0.05, ge=0, le=5)
    # Reviews larger than this go to the bulk judge (when there is one): a huge review must not hold
    # up the small ones queued behind it in admission's workers.
    large_review_bytes: int = Field(512 * 1024, gt=0)


class BadReview(Exception):
    """The request body is not an AdmissionReview this webhook can answer. ``body_error``: the body
    itself could not be read (its status and whether to close the connection)."""

    def __init__(self, message: str, field: str | None = None, body_error: BodyError | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.body_error = body_error


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
            "Requests refused: 400 (malformed, oversized, wrong kind) or 408 (body too slow).",
            registry=registry,
        )
        self.unrecorded = Counter(
            "tribunal_admission_unrecorded",
            "Reviews answered whose verdict was never handed to the recorder, by reason (each logged).",
            ["reason"],
            registry=registry,
        )
        self.evaluation_errors = Counter(
            "tribunal_evaluation_errors",
            "Evaluations that failed or missed their deadline, by kind and cause.",
            ["kind", "cause"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "tribunal_admission_batch_size",
            "Reviews per batch handed to the judge pool.",
            buckets=BATCH_BUCKETS,
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
    """``POST /validate``. ``pool`` judges (batched by a :class:`MicroBatcher`); after the answer,
    ``act`` (the response rules) runs on the verdict and ``recorder`` keeps it with the action outcomes.
    Without ``act`` the verdict is only handed to ``recorder``, which acts on it once it is recorded
    (``tribunal serve`` with the SQL store: through the action outbox, so a crash after the write
    loses no action). ``dryRun`` requests cause neither: they have no side effects. ``stop`` waits
    for the actions still running."""

    def __init__(
        self,
        pool: RawJudge,
        recorder: BackgroundRecorder,
        config: WebhookConfig,
        registry: CollectorRegistry,
        revision: Callable[[], str],
        act: Act | None = None,
        stop_grace_seconds: float = 10.0,
        slots: int | None = None,
        bulk: RawJudge | None = None,
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.metrics = WebhookMetrics(registry)
        self._event_loop = RunningLoop()
        self.batcher = MicroBatcher(
            pool, slots, observe=self.metrics.batch_size.observe, loop=self._event_loop
        )
        # Reviews over config.large_review_bytes: judged by ``bulk`` (the workers of ingest and Kafka).
        self.large_batcher = MicroBatcher(bulk, loop=self._event_loop) if bulk is not None else None
        self._revision = revision
        self._act = act
        # Publishes the review as received (the Kafka audit copy), when Kafka is configured.
        self.audit: Callable[[bytes, str], Awaitable[None]] | None = None
        self._stop_grace = stop_grace_seconds
        self._pending: set[asyncio.Task[Any]] = set()
        self._acting: set[asyncio.Task[Any]] = set()  # the pending tasks acting on a verdict
        self._unrecorded: list[Record] = []
        self._record_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Wait for the actions still running, then hand every verdict held back to the recorder. A
        verdict whose actions are cut short by the stop is still recorded, with the outcomes it has."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self._stop_grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopped with %d verdicts still being acted on", len(late))
                # Cancelled, each records its verdict as it ends (see _acted).
                _, stuck = await asyncio.wait(late, timeout=STOP_RECORD_SECONDS)
                if unrecorded := len(stuck & self._acting):
                    self.metrics.unrecorded.labels("stopped").inc(unrecorded)
                    log.error(
                        "stopped with %d answered reviews not recorded: their actions ignored the stop",
                        unrecorded,
                    )
        self._hand_over()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/validate", self.validate)]

    async def validate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, self.config.max_body_bytes, self.config.body_read_timeout_seconds)
            doc = decode_review(body)
        except BadReview as exc:
            response = self._bad_request(exc.message, exc.field)
            if exc.body_error is None:
                return response
            response.set_status(exc.body_error.status)
            return await answer_refusal(request, response, exc.body_error)
        request_doc: dict[str, Any] = doc["request"]
        source = f"AdmissionReview {_uid_of(doc)}"
        exemption = self._exemption(request_doc)
        if exemption is not None:
            # Rare: validated here, so an invalid review from an exempt namespace still gets its 400.
            try:
                parse_evidence(doc, source, EvidenceKind.ADMISSION)
            except EvidenceError as exc:
                return self._bad_request(exc.message, exc.field)
            annotations = {"exempt": exemption, "policy-revision": self._revision()}
            answer, decision = _response(request_doc["uid"], True, annotations=annotations), "exempt"
        else:
            try:
                outcome = await self._judge(body, source, started)
            except Exception as exc:
                answer, decision = self._failure(_uid_of(doc), exc), "error"
            else:
                if isinstance(outcome, Rejected):
                    if outcome.reason == "evidence":
                        return self._bad_request(_rejection_message(outcome), outcome.field)
                    answer = self._failure(_uid_of(doc), EvaluationFailed(outcome.error))
                    decision = "error"
                else:
                    verdict = outcome.verdict or Verdict.model_validate_json(outcome.verdict_json)
                    if not _dry_run(request_doc.get("dryRun")):
                        self._after(outcome, verdict, body, doc)
                    answer, decision = self._response(request_doc["uid"], verdict), verdict.decision.value
        self.metrics.observe(decision, time.perf_counter() - started)
        reply = {"apiVersion": doc.get("apiVersion"), "kind": "AdmissionReview", "response": answer}
        return web.Response(body=orjson.dumps(reply), content_type="application/json")

    async def _judge(self, body: bytes, source: str, started: float) -> Outcome:
        """The pool's outcome for ``body``; raises EvaluationTimeout past the deadline."""
        # Time already spent waiting (a backed-up loop, a slow client) counts against the deadline.
        deadline = started + self.config.deadline_seconds
        if time.perf_counter() >= deadline:
            raise EvaluationTimeout(f"request waited past the {self.config.deadline_seconds:g} s deadline")
        batcher = self.batcher
        if self.large_batcher is not None and len(body) > self.config.large_review_bytes:
            batcher = self.large_batcher
        future = batcher.submit((body, source, EvidenceKind.ADMISSION))
        loop = self._event_loop()
        expiry = loop.call_at(loop.time() + deadline - time.perf_counter(), _expire, future)
        try:
            return await future
        finally:
            expiry.cancel()

    def _exemption(self, request: dict[str, Any]) -> str | None:
        if update_changes_nothing_judged(request):
            return "update changes nothing judged"
        namespace = request.get("namespace")
        if isinstance(namespace, str) and namespace and namespace in self.config.exempt_namespaces:
            return f"namespace {namespace}"
        user_info = request.get("userInfo")
        if not isinstance(user_info, dict):
            return None
        username = user_info.get("username")
        if isinstance(username, str) and username in self.config.exempt_users:
            return f"user {username}"
        groups = user_info.get("groups")
        for group in groups if isinstance(groups, list) else ():
            if isinstance(group, str) and group in self.config.exempt_groups:
                return f"group {group}"
        return None

    def _response(self, uid: str, verdict: Verdict) -> dict[str, Any]:
        # One pass over the violations (this runs on the event loop for every review).
        denying: list[str] = []
        warnings: list[str] = []
        violated: set[str] = set()
        excepted: set[str] = set()
        for v in verdict.violations:
            if v.exception is not None:
                excepted.add(v.policy)
                continue
            violated.add(v.policy)
            if v.enforcement is Enforcement.DENY:
                denying.append(f"[{v.policy}] {v.msg}")
            elif v.enforcement is Enforcement.WARN:
                warnings.append(_clip(f"[{v.policy}] {v.msg}"))
        annotations = {
            "policy-revision": verdict.policy_revision,
            "decision": verdict.decision.value,
        }
        if violated:
            annotations["violations"] = ",".join(sorted(violated))
        if excepted:
            annotations["excepted"] = ",".join(sorted(excepted))
        if self.config.dry_run and verdict.decision is not Decision.ALLOW:
            annotations["dry-run"] = f"would {verdict.decision.value}"
            return _response(uid, True, annotations=annotations)
        if len(warnings) > MAX_WARNINGS:
            warnings = [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings"]
        if not denying:
            return _response(uid, True, warnings=warnings, annotations=annotations)
        message = (
            f"denied by Tribunal ({len(denying)} violation{'s' if len(denying) != 1 else ''}): "
            + "; ".join(denying)
        )
        status = {"code": 403, "message": message, "reason": "Forbidden"}
        return _response(uid, False, status=status, warnings=warnings, annotations=annotations)

    def _failure(self, uid: str, exc: Exception) -> dict[str, Any]:
        cause = "deadline" if isinstance(exc, EvaluationTimeout) else "error"
        self.metrics.evaluation_errors.labels("admission", cause).inc()
        fail_open = self.config.failure_policy == "ignore"
        outcome = "fail_open" if fail_open else "fail_closed"
        self.metrics.failure_policy.labels(outcome, cause).inc()
        log.error("admission %s: %s (%s): %s", uid, cause, outcome, exc)
        annotations = {"failure-policy": outcome, "policy-revision": self._revision()}
        if fail_open:
            warning = _clip(f"Tribunal could not judge this request ({cause}); allowed by failure policy")
            return _response(uid, True, warnings=[warning], annotations=annotations)
        status = {
            "code": 500,
            "message": f"Tribunal could not judge this request ({cause}: {exc}); denied by failure policy",
            "reason": "InternalError",
        }
        return _response(uid, False, status=status, annotations=annotations)

    def _after(self, judged: Judged, verdict: Verdict, body: bytes, doc: dict[str, Any]) -> None:
        """Act and record off the response path. Every review answered here is recorded, or counted
        in ``tribunal_admission_unrecorded_total`` with the reason and logged. Without ``act``, the
        verdict is only recorded, with the subject's labels for whoever acts on it once it is
        recorded (the recorder's action outbox)."""
        if self.audit is not None:
            self._track(self._publish_audit(body, judged.evidence_id))
        if self._act is None:
            labels = None if judged.evidence is not None else labels_of(EvidenceKind.ADMISSION, doc)
            self._record_judged(judged, verdict, body, [], labels)
            return
        acting = self._track(self._act_on(judged, verdict, doc))
        self._acting.add(acting)
        acting.add_done_callback(self._acting.discard)
        # Recorded when acting ends, however it ends (done, failed, cut short by a stop: the answer
        # was given), from a done callback: one runs even for a task cancelled before it started.
        acting.add_done_callback(partial(self._acted, judged, verdict, body))

    def _acted(
        self, judged: Judged, verdict: Verdict, body: bytes, acting: asyncio.Task[list[dict[str, Any]]]
    ) -> None:
        outcomes: list[dict[str, Any]] = []
        if not acting.cancelled():
            if (exc := acting.exception()) is None:
                outcomes = acting.result()
            else:
                log.error("acting on admission %s failed", judged.evidence_id, exc_info=exc)
        self._record_judged(judged, verdict, body, outcomes)

    async def _act_on(self, judged: Judged, verdict: Verdict, doc: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._act is not None
        try:
            # A worker sends back ids and the verdict only. The Evidence is not read again: the
            # response rules need the subject's labels, read from the review as it arrived.
            labels = None if judged.evidence is not None else labels_of(EvidenceKind.ADMISSION, doc)
            return await self._act(judged.evidence, verdict, labels)
        except Exception:  # the dispatcher reports action failures as outcomes; this is a bug
            log.exception("acting on admission %s failed", judged.evidence_id)
            return []

    def _record_judged(
        self,
        judged: Judged,
        verdict: Verdict,
        body: bytes,
        outcomes: list[dict[str, Any]],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        # The store needs the record's id, kind, source and time; the Evidence is rebuilt from the
        # body only when the store writes it.
        try:
            if judged.evidence is not None:
                record = Record(judged.evidence, verdict, raw=body, actions=tuple(outcomes))
            else:
                record = Record.deferred(
                    judged.evidence_id,
                    judged.kind,
                    judged.source,
                    judged.received_at,
                    partial(judged.load_evidence, body),
                    lambda: verdict,
                    raw=body,
                    actions=tuple(outcomes),
                    labels=labels,
                )
            self._record(record)
        except Exception:
            self._lost(judged.evidence_id, "error")

    async def _publish_audit(self, body: bytes, uid: str) -> None:
        assert self.audit is not None
        try:
            await self.audit(body, uid)
        except Exception as exc:  # the answer stands; the audit copy is best effort, and logged
            log.error("admission %s: the audit copy could not be published: %s", uid, exc)

    def _record(self, record: Record) -> None:
        """Hold ``record`` back for the next hand-over to the recorder (one batch for all of them)."""
        self._unrecorded.append(record)
        interval = self.config.record_interval_seconds
        if not interval:
            self._hand_over()
        elif self._record_timer is None:
            self._record_timer = self._event_loop().call_later(interval, self._hand_over)

    def _hand_over(self) -> None:
        if self._record_timer is not None:
            self._record_timer.cancel()
            self._record_timer = None
        records, self._unrecorded = self._unrecorded, []
        for record in records:
            # Never waits: a full queue (the store down for a while) drops, counts and logs, so
            # a store outage costs bounded memory and never an answer.
            try:
                self.recorder.offer(record)
            except Exception:
                self._lost(record.evidence_id, "error")

    def _lost(self, evidence_id: str, reason: str) -> None:
        """An answered review that will not be recorded: counted by ``reason`` and logged (a bug)."""
        self.metrics.unrecorded.labels(reason).inc()
        log.exception("admission %s was answered but not recorded (%s)", evidence_id, reason)

    def _track(self, job: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = self._event_loop().create_task(job)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    def _bad_request(self, message: str, field: str | None) -> web.Response:
        self.metrics.invalid.inc()
        error: dict[str, Any] = {"error": message}
        if field:
            error["field"] = field
        return web.Response(status=400, body=orjson.dumps(error), content_type="application/json")


async def read_body(request: web.Request, limit: int, seconds: float | None = None) -> bytes:
    """The request body, refusing a non-JSON content type, an empty body, anything over ``limit``, a
    body that does not decode, and one that takes longer than ``seconds`` to arrive."""
    if request.content_type not in ("application/json", ""):
        raise BadReview(f"content type must be application/json, not {request.content_type}")
    try:
        return await read_limited(request, limit, seconds)
    except BodyError as exc:
        raise BadReview(f"{exc}: expected an AdmissionReview", body_error=exc) from None


def decode_review(body: bytes) -> Any:
    """The JSON document, if it is an AdmissionReview with a request (parse_evidence checks the rest,
    depth included)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadReview(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "AdmissionReview":
        raise BadReview("expected a JSON object of kind AdmissionReview", "kind")
    if doc.get("apiVersion") not in ADMISSION_API_VERSIONS:
        # Checked here too, not only by the model: every answer echoes it, the failure policy's included.
        raise BadReview(f"apiVersion: expected one of {', '.join(ADMISSION_API_VERSIONS)}", "apiVersion")
    if not isinstance(doc.get("request"), dict):
        raise BadReview("an AdmissionReview to answer must hold a request", "request")
    return doc


def _uid_of(doc: dict[str, Any]) -> str:
    uid = doc["request"].get("uid")
    return uid if isinstance(uid, str) and len(uid) <= 128 else "?"


class EvaluationFailed(Exception):
    """The judge pool could not judge a review (the policies failed on it, or a worker crashed)."""


def _dry_run(value: Any) -> bool:
    """``request.dryRun`` read as the model reads it (lax: ``"true"``, ``1``…); the worker validated it."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "t", "yes", "y", "on"}
    return bool(value)


def _expire(future: asyncio.Future[Outcome]) -> None:
    if not future.done():
        future.set_exception(EvaluationTimeout("no verdict within the deadline"))


def _rejection_message(rejected: Rejected) -> str:
    """The error of an invalid review without the source and field prefixes (the field goes apart)."""
    message = rejected.error.removeprefix(f"{rejected.source}: ")
    return message.removeprefix(f"{rejected.field}: ") if rejected.field else message


def _response(
    uid: str,
    allowed: bool,
    *,
    status: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview ``response`` as JSON, built directly (no model to dump per request)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if status is not None:
        response["status"] = status
    if warnings:
        response["warnings"] = warnings
    if annotations is not None:
        response["auditAnnotations"] = annotations
    return response


def _clip(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."
