"""Judge evidence off the event loop, in worker processes.

regorus holds the GIL while it evaluates, so threads cannot use a second core: a ``JudgePool`` runs N
worker processes, each with its own compiled Judge. Batches amortise the inter-process hop: a worker
gets the raw bytes of many documents, parses, validates and judges each, and returns a light
``Judged`` (ids, decision, verdict JSON) or a ``Rejected`` (the error, naming the document and field)
per item. Hot reload reaches the workers: every batch carries the revision the main process runs; a
worker that has not compiled it answers so, and gets that exact policy set (not a re-read of the
directory). ``workers=0`` judges in-process, on the caller's thread (tests, tiny deployments).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, Protocol

import orjson

from tribunal.model import Decision, Evidence, EvidenceError, EvidenceKind, Verdict, parse_evidence
from tribunal.policy.enforcement import EnforcementConfig
from tribunal.policy.errors import PolicyError
from tribunal.policy.judge import Judge
from tribunal.policy.loader import PolicySet

log = logging.getLogger(__name__)

RawItem = tuple[bytes | None, str, EvidenceKind | None]
"""One document to judge: its bytes (JSON), its source name (``topic[partition]@offset``), and the
kind it must be (None: detect)."""

RejectReason = Literal["evidence", "policy", "internal"]


class Judged(NamedTuple):
    """A document judged. ``evidence`` and ``verdict`` are set in-process; from a worker only the
    light fields cross the process boundary, and the objects are re-read on demand. A named tuple:
    one is made and pickled per document, at a sixth of a frozen dataclass's cost."""

    source: str
    evidence_id: str
    kind: EvidenceKind
    subject_key: str
    decision: Decision
    latency_ms: float
    verdict_json: bytes
    received_at: datetime
    evidence: Evidence | None = None
    verdict: Verdict | None = None

    def load_evidence(self, raw: bytes) -> Evidence:
        """The Evidence object (re-parsed from ``raw`` when judged in a worker)."""
        if self.evidence is not None:
            return self.evidence
        evidence = parse_evidence(orjson.loads(raw), self.source, self.kind, raw=raw)
        evidence.received_at = self.received_at
        return evidence

    def load_verdict(self) -> Verdict:
        """The Verdict object (re-read from its JSON when judged in a worker)."""
        return self.verdict or Verdict.model_validate_json(self.verdict_json)

    def rebuild(self, raw: bytes) -> tuple[Evidence, Verdict]:
        """Both objects."""
        return self.load_evidence(raw), self.load_verdict()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A document that could not be judged: ``reason`` is ``evidence`` (unreadable or invalid: dead
    letter), ``policy`` (the policies failed on it) or ``internal`` (a bug or a crashed worker)."""

    source: str
    reason: RejectReason
    error: str
    field: str | None = None
    kind: EvidenceKind | None = None


Outcome = Judged | Rejected


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """Everything a worker needs to compile exactly the main process's revision."""

    policy_set: PolicySet
    engine: str
    enforcement: EnforcementConfig

    @property
    def revision(self) -> str:
        return self.policy_set.revision

    @classmethod
    def of(cls, judge: Judge) -> JudgeSpec:
        return cls(judge.policy_set, judge.engine.name, judge.enforcement)

    def build(self) -> Judge:
        return Judge.build(self.policy_set, self.engine, self.enforcement)


class JudgeProvider(Protocol):
    """Where the current Judge comes from: a :class:`~tribunal.policy.runtime.PolicyRuntime`."""

    @property
    def judge(self) -> Judge: ...


def judge_items(judge: Judge, items: Sequence[RawItem], max_bytes: int, *, keep: bool) -> list[Outcome]:
    """Parse and judge each item; never raises for one bad item. ``keep`` keeps the objects."""
    outcomes: list[Outcome] = []
    for data, source, kind in items:
        try:
            evidence = _parse(data, source, kind, max_bytes)
        except EvidenceError as exc:
            outcomes.append(Rejected(source, "evidence", str(exc), exc.field, kind))
            continue
        except Exception as exc:
            outcomes.append(
                Rejected(source, "internal", f"{source}: {type(exc).__name__}: {exc}", None, kind)
            )
            continue
        try:
            verdict = judge.judge(evidence)
        except PolicyError as exc:
            outcomes.append(Rejected(source, "policy", str(exc), None, evidence.kind))
            continue
        except Exception as exc:
            message = f"{source}: {type(exc).__name__}: {exc}"
            outcomes.append(Rejected(source, "internal", message, None, evidence.kind))
            continue
        outcomes.append(
            Judged(
                source=source,
                evidence_id=evidence.id,
                kind=evidence.kind,
                subject_key=verdict.subject.key(),
                decision=verdict.decision,
                latency_ms=verdict.latency_ms,
                verdict_json=verdict.model_dump_json().encode(),
                received_at=evidence.received_at,
                evidence=evidence if keep else None,
                verdict=verdict if keep else None,
            )
        )
    return outcomes


def _parse(data: bytes | None, source: str, kind: EvidenceKind | None, max_bytes: int) -> Evidence:
    if not data or not data.strip():
        raise EvidenceError(source, "empty: no document")
    if len(data) > max_bytes:
        raise EvidenceError(source, f"{len(data)} bytes: larger than the {max_bytes} byte limit")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EvidenceError(source, f"not valid JSON: {exc}") from None
    return parse_evidence(doc, source, kind, raw=data)


class _WorkerState:
    """The compiled Judge of one worker process (module state of the worker, never of the server)."""

    judge: Judge | None = None


_WORKER = _WorkerState()


def _worker_init(spec: JudgeSpec) -> None:
    _WORKER.judge = spec.build()
    gc.collect()
    gc.freeze()  # the compiled policies live as long as the worker: no full collection passes over them


def _worker_batch(
    revision: str, spec: JudgeSpec | None, items: Sequence[RawItem], max_bytes: int
) -> list[Outcome] | None:
    """Runs in a worker: None asks for the policy set of ``revision``, which this worker lacks."""
    if _WORKER.judge is None or _WORKER.judge.revision != revision:
        if spec is None or spec.revision != revision:
            return None
        previous, _WORKER.judge = _WORKER.judge, spec.build()
        if previous is not None:
            previous.engine.close()
    return judge_items(_WORKER.judge, items, max_bytes, keep=False)


class JudgePool:
    """Judges batches of raw documents in ``workers`` processes (0: in-process).

    ``start`` spawns the workers and compiles the current revision in each; ``stop`` is idempotent.
    At most ``2 * workers`` batches are handed to the workers at once; callers beyond that wait.
    """

    def __init__(
        self,
        policies: JudgeProvider,
        workers: int = 0,
        *,
        max_document_bytes: int = 64 * 1024 * 1024,
        start_method: str | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.policies = policies
        self.workers = workers
        self.max_document_bytes = max_document_bytes
        self.start_method = start_method or (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        self._executor: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(max(1, 2 * workers))
        self._specs: dict[str, JudgeSpec] = {}
        self._started = False
        self._stopped = False
        self._restart_lock = asyncio.Lock()
        self.restarts = 0

    @staticmethod
    def default_workers() -> int:
        """One worker per core this process may use."""
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    async def start(self) -> None:
        assert not self._started, "JudgePool.start() called twice"
        self._started = True
        if self.workers:
            await self._spawn()

    async def stop(self) -> None:
        self._stopped = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> JudgePool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _spawn(self) -> None:
        spec = self._spec(self.policies.judge)
        context = multiprocessing.get_context(self.start_method)
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_worker_init, initargs=(spec,)
        )
        loop = asyncio.get_running_loop()
        # One empty batch per worker, at once: each spawns a process, which compiles in its initializer.
        warmups = [
            loop.run_in_executor(
                self._executor, _worker_batch, spec.revision, None, [], self.max_document_bytes
            )
            for _ in range(self.workers)
        ]
        await asyncio.gather(*warmups)

    def _spec(self, judge: Judge) -> JudgeSpec:
        spec = self._specs.get(judge.revision)
        if spec is None:
            self._specs = {judge.revision: (spec := JudgeSpec.of(judge))}
        return spec

    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]:
        """One outcome per item, in order. Never raises for a bad document."""
        if not items:
            return []
        judge = self.policies.judge
        if not self.workers:
            return judge_items(judge, items, self.max_document_bytes, keep=True)
        assert self._started, "JudgePool.judge_raw() before start()"
        async with self._slots:
            return await self._submit(judge, items)

    async def _submit(self, judge: Judge, items: Sequence[RawItem]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        spec: JudgeSpec | None = None
        crashes = 0
        while True:
            executor = self._executor
            if executor is None:
                raise RuntimeError("JudgePool is stopped")
            try:
                result = await loop.run_in_executor(
                    executor, _worker_batch, judge.revision, spec, items, self.max_document_bytes
                )
            except BrokenProcessPool:
                crashes += 1
                log.error("a judge worker process died; restarting the pool (%d)", crashes)
                await self._restart(executor)
                if crashes >= 2:
                    return [
                        Rejected(
                            source, "internal", f"{source}: the judge worker process crashed", None, kind
                        )
                        for _, source, kind in items
                    ]
                continue
            if result is None:  # this worker has not compiled the revision yet
                spec = self._spec(judge)
                continue
            return result

    async def _restart(self, broken: ProcessPoolExecutor) -> None:
        async with self._restart_lock:
            if self._executor is not broken:  # restarted by another caller already, or stopped
                return
            self._executor = None
            self.restarts += 1
            await asyncio.to_thread(broken.shutdown, wait=False, cancel_futures=True)
            if not self._stopped:
                await self._spawn()
