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
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.process import BaseProcess
from typing import Any, Literal, NamedTuple, Protocol

import orjson

from tribunal import collector
from tribunal.model import Decision, Evidence, EvidenceError, EvidenceKind, Verdict, parse_evidence
from tribunal.policy.enforcement import EnforcementConfig
from tribunal.policy.engine import EngineOptions
from tribunal.policy.errors import PolicyError
from tribunal.policy.judge import EvaluationWatch, Judge
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
    """A document that could not be judged: ``reason`` is ``evidence`` (unreadable or invalid, or its
    reading hit a bug: dead letter, 400), ``policy`` (the policies failed on it) or ``internal`` (a bug
    past reading, or a crashed worker)."""

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
    engine_options: EngineOptions = field(default_factory=EngineOptions)

    @property
    def revision(self) -> str:
        return self.policy_set.revision

    @classmethod
    def of(cls, judge: Judge) -> JudgeSpec:
        return cls(judge.policy_set, judge.engine.name, judge.enforcement, judge.engine_options)

    def build(self) -> Judge:
        return Judge.build(self.policy_set, self.engine, self.enforcement, self.engine_options)


class JudgeProvider(Protocol):
    """Where the current Judge comes from: a :class:`~tribunal.policy.runtime.PolicyRuntime`."""

    @property
    def judge(self) -> Judge: ...


def judge_items(
    judge: Judge,
    items: Sequence[RawItem],
    max_bytes: int,
    *,
    keep: bool,
    watch: EvaluationWatch | None = None,
) -> list[Outcome]:
    """Parse and judge each item; never raises for one bad item. ``keep`` keeps the objects. Every
    item is parsed before the engine judges any (``Judge.judge_many`` runs its queries back to back).
    ``watch`` is told the position in ``items`` of each document the engine starts on."""
    parsed: list[Evidence | Rejected] = []
    for data, source, kind in items:
        try:
            parsed.append(_parse(data, source, kind, max_bytes))
        except EvidenceError as exc:
            parsed.append(Rejected(source, "evidence", str(exc), exc.field, kind))
        except Exception as exc:
            # A bug, met on this document: reading it again would fail again, so it is refused as
            # unreadable (400, dead letter), not as a passing failure (503) its sender retries for
            # ever. Logged with the traceback, to be fixed.
            log.exception("%s: reading the document failed", source)
            error = f"{source}: could not be read: {type(exc).__name__}: {exc}"
            parsed.append(Rejected(source, "evidence", error, None, kind))
    evidences = [p for p in parsed if not isinstance(p, Rejected)]
    if watch is not None:
        watch = _AtItem(watch, [i for i, p in enumerate(parsed) if not isinstance(p, Rejected)])
    verdicts = iter(judge.judge_many(evidences, watch))
    outcomes: list[Outcome] = []
    for (_, source, _), evidence in zip(items, parsed, strict=True):
        if isinstance(evidence, Rejected):
            outcomes.append(evidence)
            continue
        verdict = next(verdicts)
        if isinstance(verdict, Exception):
            reason: RejectReason = "policy" if isinstance(verdict, PolicyError) else "internal"
            message = str(verdict) if reason == "policy" else f"{source}: {type(verdict).__name__}: {verdict}"
            outcomes.append(Rejected(source, reason, message, None, evidence.kind))
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


class _AtItem:
    """Tells ``watch`` positions in the batch rather than in the list of parsed documents."""

    def __init__(self, watch: EvaluationWatch, positions: list[int]) -> None:
        self.watch = watch
        self.positions = positions

    def evaluating(self, index: int) -> None:
        self.watch.evaluating(self.positions[index])

    def done(self) -> None:
        self.watch.done()


class _CpuLimit:
    """In a worker: the engine may spend ``seconds`` of CPU on one document. Past that the kernel
    stops the process (SIGPROF, whose default action is to terminate: regorus holds the GIL and
    cannot be interrupted from Python), and ``progress`` (batch id, position in the batch), in
    memory shared with the server, tells the server which document it was."""

    def __init__(self, progress: Any, seconds: float) -> None:
        self.progress = progress
        self.seconds = seconds

    def batch(self, batch_id: int) -> _CpuLimit:
        self.progress[0], self.progress[1] = batch_id, -1
        return self

    def evaluating(self, index: int) -> None:
        self.progress[1] = index
        signal.setitimer(signal.ITIMER_PROF, self.seconds)

    def done(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        self.progress[1] = -1


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
    collector.settle()  # the compiled policies live as long as the worker: no collection walks them


def _worker_batch(
    revision: str,
    spec: JudgeSpec | None,
    items: Sequence[RawItem],
    max_bytes: int,
    watch: EvaluationWatch | None = None,
) -> list[Outcome] | None:
    """Runs in a worker: None asks for the policy set of ``revision``, which this worker lacks."""
    if _WORKER.judge is None or _WORKER.judge.revision != revision:
        if spec is None or spec.revision != revision:
            return None
        previous, _WORKER.judge = _WORKER.judge, spec.build()
        if previous is not None:
            previous.engine.close()
    return judge_items(_WORKER.judge, items, max_bytes, keep=False, watch=watch)


# Worker protocol: length-prefixed pickles over a socket pair. A request is (batch id, revision, spec
# or None, items, max_bytes); a reply is ("ok", outcomes or None) or ("error", text). Replies come in
# request order, so several requests can be in flight on one worker.
_FRAME = struct.Struct("!Q")


def _worker_main(
    sock: socket.socket,
    spec: JudgeSpec,
    progress: Any = None,
    cpu_limit: float | None = None,
    niceness: int = 0,
) -> None:
    """A judge worker process: compile ``spec``, then answer requests until the socket closes. With
    ``cpu_limit``, each document's evaluation may use that many seconds of CPU (see _CpuLimit); with
    ``niceness``, the worker yields the CPU to normal-priority processes (admission's workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops the pool
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    if niceness:
        os.nice(niceness)
    limit = _CpuLimit(progress, cpu_limit) if cpu_limit and progress is not None else None
    _worker_init(spec)
    with sock:
        while (request := _recv_frame(sock)) is not None:
            batch, revision, wanted, items, max_bytes = pickle.loads(request)
            watch = limit.batch(batch) if limit is not None else None
            try:
                reply: tuple[str, object] = ("ok", _worker_batch(revision, wanted, items, max_bytes, watch))
            except Exception as exc:  # a bug, not a bad document (judge_items never raises for one)
                reply = ("error", f"{type(exc).__name__}: {exc}")
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
            sock.sendall(_FRAME.pack(len(data)) + data)  # one frame, one send (see _Worker.call)


def _recv_frame(sock: socket.socket) -> bytes | None:
    header = _recv_exactly(sock, _FRAME.size)
    return None if header is None else _recv_exactly(sock, _FRAME.unpack(header)[0])


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        count = sock.recv_into(view[received:])
        if count == 0:
            return None  # the server closed its end (stopping, or gone)
        received += count
    return bytes(buffer)


class WorkerDied(Exception):
    """A judge worker process exited (killed, crashed) with requests in flight."""


class _Worker:
    """One judge worker process and the server's end of its socket pair. ``call`` sends a request
    and waits for its reply; a reader task hands replies to the waiting calls in order."""

    def __init__(
        self,
        process: BaseProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        progress: Any = None,
    ) -> None:
        self.process = process
        self.progress = progress  # (batch id, position) the worker is judging, shared with it
        self._reader = reader
        self._writer = writer
        self._waiting: deque[asyncio.Future[tuple[str, object]]] = deque()
        self.broken = False
        self._replies = asyncio.create_task(self._read_replies(), name="tribunal-judge-replies")

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def call(self, request: bytes) -> tuple[str, object]:
        if self.broken:
            raise WorkerDied(f"judge worker {self.process.pid} has exited")
        future: asyncio.Future[tuple[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            # One write, one frame: sent in two, the worker woke for the header alone.
            self._writer.write(_FRAME.pack(len(request)) + request)
            await self._writer.drain()
        except (ConnectionError, OSError):
            self._fail()
        return await future

    async def _read_replies(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(_FRAME.size)
                reply = pickle.loads(await self._reader.readexactly(_FRAME.unpack(header)[0]))
                future = self._waiting.popleft()
                if not future.done():  # its caller may have stopped waiting (a deadline)
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._fail()

    def _fail(self) -> None:
        self.broken = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(WorkerDied(f"judge worker {self.process.pid} has exited"))

    @property
    def over_cpu_limit(self) -> bool:
        """Whether the worker was stopped by its CPU limit on one document (see _CpuLimit)."""
        return self.process.exitcode == -signal.SIGPROF

    def stopped_on(self, batch: int) -> int | None:
        """The position in batch ``batch`` of the document the CPU limit stopped the worker on."""
        if not self.over_cpu_limit or self.progress is None or self.progress[0] != batch:
            return None
        position = int(self.progress[1])
        return position if position >= 0 else None

    async def close(self, grace: float = 5.0) -> None:
        """Close the socket (the worker exits at end of input); kill it after ``grace`` seconds."""
        self._writer.close()
        await asyncio.to_thread(self.process.join, grace)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, grace)
        self._replies.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._replies


class JudgePool:
    """Judges batches of raw documents in ``workers`` processes (0: in-process).

    ``start`` spawns the workers and compiles the current revision in each; ``stop`` is idempotent.
    Each worker takes up to two batches at once (one being judged, the next waiting in its socket),
    so at most ``2 * workers`` batches are in flight; callers beyond that wait. A worker is a process
    with a socket pair to the server, no threads on either side: a call costs about a quarter of a
    ``ProcessPoolExecutor`` round trip (measured here: 0.11 against 0.45 ms of the server's CPU).
    With ``cpu_limit_seconds``, a worker whose evaluation of one document passes that much CPU is
    stopped and replaced: that document is rejected (reason ``policy``), the rest judged again.
    """

    def __init__(
        self,
        policies: JudgeProvider,
        workers: int = 0,
        *,
        max_document_bytes: int = 64 * 1024 * 1024,
        cpu_limit_seconds: float | None = None,
        niceness: int = 0,
        start_method: str | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.policies = policies
        self.workers = workers
        self.max_document_bytes = max_document_bytes
        # Per document, in worker processes only: a thread cannot stop an evaluation on itself.
        self.cpu_limit_seconds = cpu_limit_seconds
        # Added to the workers' nice value: the bulk pool's yield the CPU to admission's.
        self.niceness = niceness
        self.over_limit = 0  # documents rejected because their evaluation passed the CPU limit
        self._batch_ids = 0
        self.start_method = start_method or (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        self._procs: list[_Worker] = []
        self._slots = asyncio.Semaphore(max(1, 2 * workers))
        self._specs: dict[str, JudgeSpec] = {}
        self._started = False
        self._stopped = False
        self._replace_lock = asyncio.Lock()
        self.restarts = 0

    @staticmethod
    def default_workers(spare_cores: int = 0) -> int:
        """One worker per core this process may use, but ``spare_cores`` (at least one worker)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores - spare_cores)

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for CPU accounting in benchmarks, and tests)."""
        return [w.process.pid for w in self._procs if w.process.pid is not None]

    async def start(self) -> None:
        assert not self._started, "JudgePool.start() called twice"
        self._started = True
        if self.workers:
            spec = self._spec(self.policies.judge)
            self._procs = list(await asyncio.gather(*(self._start_worker(spec) for _ in range(self.workers))))
        else:  # build this thread's engine now, so the first document does not pay for the compile
            self.policies.judge.engine.evaluate("admission", b'{"kind":"warmup"}')

    async def stop(self) -> None:
        self._stopped = True
        procs, self._procs = self._procs, []
        await asyncio.gather(*(w.close() for w in procs))
        if not self.workers and self._started:
            self.policies.judge.engine.close()  # dropped by the thread that built it

    async def __aenter__(self) -> JudgePool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start_worker(self, spec: JudgeSpec) -> _Worker:
        ours, theirs = socket.socketpair()
        context: Any = multiprocessing.get_context(self.start_method)  # typeshed: BaseContext
        progress = context.RawArray("q", [-1, -1])
        process: BaseProcess = context.Process(
            target=_worker_main,
            args=(theirs, spec, progress, self.cpu_limit_seconds, self.niceness),
            name="tribunal-judge",
            daemon=True,
        )
        try:
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(process, reader, writer, progress)
        # An empty batch: answered once the worker has compiled the policies.
        await worker.call(self._request(0, spec.revision, None, []))
        return worker

    def _request(self, batch: int, revision: str, spec: JudgeSpec | None, items: Sequence[RawItem]) -> bytes:
        return pickle.dumps(
            (batch, revision, spec, list(items), self.max_document_bytes), pickle.HIGHEST_PROTOCOL
        )

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
        spec: JudgeSpec | None = None
        crashes = 0
        while True:
            if self._stopped or not self._procs:
                raise RuntimeError("JudgePool is stopped")
            worker = min(self._procs, key=lambda w: (w.broken, w.in_flight))
            self._batch_ids += 1
            batch = self._batch_ids
            try:
                status, result = await worker.call(self._request(batch, judge.revision, spec, items))
            except WorkerDied:
                await self._replace(worker)  # whoever replaces it first also reaps it: its exit is known
                position = worker.stopped_on(batch)
                if position is not None:
                    return await self._without(judge, items, position)
                if worker.over_cpu_limit:  # on another batch's document: this one waited behind it
                    continue
                crashes += 1
                log.error("a judge worker process died; starting another (%d)", crashes)
                if crashes >= 2:
                    return [
                        Rejected(
                            source, "internal", f"{source}: the judge worker process crashed", None, kind
                        )
                        for _, source, kind in items
                    ]
                continue
            if status == "error":
                raise RuntimeError(f"judge worker: {result}")
            if result is None:  # this worker has not compiled the revision yet
                spec = self._spec(judge)
                continue
            assert isinstance(result, list)
            return result

    async def _without(self, judge: Judge, items: Sequence[RawItem], position: int) -> list[Outcome]:
        """The outcomes of ``items``, the one at ``position`` rejected: its evaluation passed the
        CPU limit (the worker judging it was stopped). The others are judged again."""
        _, source, kind = items[position]
        self.over_limit += 1
        log.error(
            "judging %s took more than %g s of CPU: its judge worker was stopped and replaced",
            source,
            self.cpu_limit_seconds,
        )
        rest = [item for i, item in enumerate(items) if i != position]
        outcomes = await self._submit(judge, rest) if rest else []
        error = (
            f"{source}: judging it took more than {self.cpu_limit_seconds:g} s of CPU "
            "(TRIBUNAL_JUDGE_CPU_LIMIT_SECONDS); the judge worker was stopped"
        )
        outcomes.insert(position, Rejected(source, "policy", error, None, kind))
        return outcomes

    async def _replace(self, dead: _Worker) -> None:
        async with self._replace_lock:
            if dead not in self._procs or self._stopped:  # replaced by another caller, or stopping
                return
            self.restarts += 1
            self._procs.remove(dead)
            await dead.close(grace=1.0)
            self._procs.append(await self._start_worker(self._spec(self.policies.judge)))
