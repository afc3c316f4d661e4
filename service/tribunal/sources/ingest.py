"""HTTP ingest: ``POST /ingest/falco`` (Falco ``http_output``, falcosidekick's webhook output: one JSON
alert per request) and ``POST /ingest/trivy`` (one ``trivy --format json`` report or Trivy Operator
report resource, JSON or YAML).

Parsing and judging run in the judge pool's worker processes, off the event loop, so a Trivy report
with thousands of findings never stalls the admissions the same server answers. The verdict is
recorded before the answer (202 with the evidence id), so an accepted document is never lost; with
the SQL store it is recorded into the action outbox too, so its actions are not lost either."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from tribunal.model import EvidenceError, EvidenceKind
from tribunal.model.yaml_evidence import load_yaml_documents
from tribunal.policy.pool import Judged, Outcome, RawItem, Rejected
from tribunal.sources.body import BodyError, answer_refusal, read_limited
from tribunal.store import Record

log = logging.getLogger(__name__)

LARGE_DOCUMENT = 256 * 1024
YAML_CONTENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
Deliver = Callable[[Sequence[Record]], Awaitable[None]]


class BatchJudge(Protocol):
    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]: ...


class IngestConfig(BaseModel):
    """Limits of one ingest request. Who may post is the server's authenticator's (server/auth.py)."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0)
    # The whole body must arrive within this many seconds of the headers (else 408, connection closed).
    body_read_timeout_seconds: float = Field(10.0, gt=0)
    # Requests read, judged and recorded at once, and the bytes of their bodies; a request alone
    # always fits. One waits at most queue_seconds for room, then gets 429 with Retry-After.
    max_in_flight: int = Field(4, ge=1)
    max_bytes_in_flight: int = Field(128 * 1024 * 1024, gt=0)
    queue_seconds: float = Field(2.0, ge=0)


class IngestBudget:
    """Room for at most ``max_requests`` requests and ``max_bytes`` of their bodies at once. ``take``
    waits up to ``wait`` seconds for room and says whether it got it; ``give_back`` returns it."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self._room = asyncio.Condition()

    def _size(self, size: int) -> int:
        return min(size, self.max_bytes)  # a request alone always fits

    async def take(self, size: int, wait: float) -> bool:
        size = self._size(size)

        def fits() -> bool:
            return self.requests < self.max_requests and self.bytes + size <= self.max_bytes

        async with self._room:
            if not fits():
                try:
                    async with asyncio.timeout(wait):
                        await self._room.wait_for(fits)
                except TimeoutError:
                    return False
            self.requests += 1
            self.bytes += size
            return True

    async def give_back(self, size: int) -> None:
        async with self._room:
            self.requests -= 1
            self.bytes -= self._size(size)
            self._room.notify_all()


class HttpIngest:
    """The ingest endpoints. ``deliver`` records the judged evidence (and hands new verdicts on to the
    response rules) before the 202 answer."""

    def __init__(
        self, pool: BatchJudge, deliver: Deliver, config: IngestConfig, registry: CollectorRegistry
    ) -> None:
        self.pool = pool
        self.deliver = deliver
        self.config = config
        self.budget = IngestBudget(config.max_in_flight, config.max_bytes_in_flight)
        self.requests = Counter(
            "tribunal_ingest_requests",
            "Ingest requests, by kind and HTTP status.",
            ["kind", "status"],
            registry=registry,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/ingest/falco", self._handler(EvidenceKind.FALCO)),
            web.post("/ingest/trivy", self._handler(EvidenceKind.TRIVY)),
        ]

    def _handler(self, kind: EvidenceKind) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            response = await self.ingest(request, kind)
            self.requests.labels(kind.value, str(response.status)).inc()
            return response

        return handle

    async def ingest(self, request: web.Request, kind: EvidenceKind) -> web.Response:
        source = f"POST /ingest/{kind.value} from {request.remote or '?'}"
        # Room is taken before the body is read: bodies waiting to be judged are bounded too.
        size = request.content_length or self.config.max_body_bytes
        if not await self.budget.take(size, self.config.queue_seconds):
            return await self._busy(request, source)
        try:
            return await self._ingest(request, kind, source)
        finally:
            await self.budget.give_back(size)

    async def _busy(self, request: web.Request, source: str) -> web.Response:
        """429: no room. The body is read and dropped (bounded by the read deadline), so the client
        reads the answer instead of a reset connection, and the connection stays usable."""
        retry = max(1, math.ceil(self.config.queue_seconds))
        response = _json(
            429,
            {
                "error": f"{source}: busy: {self.budget.requests} ingest requests "
                f"({self.budget.bytes} bytes) in progress; retry in {retry} s",
            },
        )
        response.headers["Retry-After"] = str(retry)
        try:
            async with asyncio.timeout(self.config.body_read_timeout_seconds):
                await request.release()
        except (TimeoutError, web.RequestPayloadError):
            response.force_close()
        return response

    async def _ingest(self, request: web.Request, kind: EvidenceKind, source: str) -> web.Response:
        try:
            body = await read_limited(
                request, self.config.max_body_bytes, self.config.body_read_timeout_seconds
            )
        except BodyError as exc:
            return await answer_refusal(request, _json(exc.status, {"error": f"{source}: {exc}"}), exc)
        if request.content_type in YAML_CONTENT_TYPES:
            try:
                body = await asyncio.to_thread(_yaml_to_json, body, source)
            except EvidenceError as exc:
                return _json(400, {"error": str(exc)})
        if not _is_object(body):  # a Trivy report and a Falco alert are objects: not worth a worker
            return _json(400, {"error": f"{source}: expected a JSON object"})
        [outcome] = await self.pool.judge_raw([(body, source, kind)])
        if isinstance(outcome, Rejected):
            return _rejected(outcome)
        assert isinstance(outcome, Judged)
        record = await record_of(outcome, body)
        try:
            await self.deliver([record])
        except Exception:
            log.exception("%s: recording evidence %s failed", source, record.evidence_id)
            return _json(503, {"error": "the verdict could not be recorded; retry", "id": record.evidence_id})
        decision = record.verdict.decision.value
        return _json(202, {"id": record.evidence_id, "kind": kind.value, "decision": decision})


async def record_of(judged: Judged, raw: bytes) -> Record:
    """The Record of a document a judge worker judged, its objects rebuilt from ``raw`` (off the
    event loop when the document is large: a Trivy report with thousands of findings)."""
    if len(raw) > LARGE_DOCUMENT:
        evidence, verdict = await asyncio.to_thread(judged.rebuild, raw)
    else:
        evidence, verdict = judged.rebuild(raw)
    return Record(evidence, verdict, raw)


def _yaml_to_json(body: bytes, source: str) -> bytes:
    """The one YAML document of ``body`` as JSON: evidence's YAML reader (no aliases, JSON's types
    only, bounded nesting), so it is never larger than the YAML was by more than its punctuation."""
    documents = load_yaml_documents(body, source)
    if len(documents) != 1:
        raise EvidenceError(source, f"expected one YAML document, got {len(documents) or 'none'}")
    try:
        return orjson.dumps(documents[0])
    except orjson.JSONEncodeError as exc:  # not expected: the reader returns JSON values only
        raise EvidenceError(source, f"cannot be written as JSON: {exc}") from None


def _is_object(body: bytes) -> bool:
    """Whether the JSON document ``body`` is an object (its first non-blank byte is ``{``)."""
    return body[:4096].lstrip()[:1] == b"{"


def _rejected(outcome: Rejected) -> web.Response:
    error: dict[str, Any] = {"error": outcome.error}
    if outcome.field:
        error["field"] = outcome.field
    if outcome.reason == "evidence":
        return _json(400, error)
    # The policies failed on it, or a worker crashed: not the sender's fault, and worth a retry.
    return _json(500 if outcome.reason == "policy" else 503, error)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
