"""The SQL store: a ``Recorder`` on SQLAlchemy 2 async, SQLite (aiosqlite) by default and PostgreSQL
(asyncpg) for several replicas, chosen by the URL; plus the queries reports and the read API use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, TextClause, event, func, or_, select, text, tuple_, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from tenacity import AsyncRetrying, retry_if_exception

from tribunal.model import (
    Decision,
    EvidenceKind,
    Severity,
    Subject,
    Verdict,
    parse_evidence,
)
from tribunal.model.redact import Redaction
from tribunal.retrying import failure, next_wait, wait_delays
from tribunal.store import schema
from tribunal.store.errors import StoreError
from tribunal.store.migrations import migrate
from tribunal.store.queries import (
    ActivityRow,
    DailyViolationsRow,
    FindingQuery,
    FindingRow,
    Page,
    StoredEvidence,
    VerdictDetail,
    VerdictQuery,
    VerdictRow,
    decode_cursor,
    encode_cursor,
)
from tribunal.store.raw import DEFAULT_LEVEL, RawCodec
from tribunal.store.recorder import Outcomes, Record
from tribunal.store.write import CHUNK, VIOLATIONS_JSON, RecordWriter, aware

log = logging.getLogger("tribunal.store")
SQLITE_MIN = (3, 35)  # RETURNING (3.35) and UPDATE ... FROM (3.33)
# Waits between attempts at connecting to a database that does not answer at start (then every last
# one, until it does): a database starting beside the service, or away for a while.
CONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def create_store_engine(url: str, thread_nice: int = 0) -> AsyncEngine:
    """An async engine for ``url``: SQLite in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` for
    writes, its connections' threads at ``thread_nice`` (see ``lower_thread_priority``), or
    PostgreSQL through asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database_url: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            raise StoreError(f"database_url: use sqlite+aiosqlite://, not {parsed.drivername}://")
        if sqlite3.sqlite_version_info < SQLITE_MIN:
            raise StoreError(
                f"database_url: SQLite {'.'.join(map(str, SQLITE_MIN))} or newer is needed (the writes use "
                f"RETURNING and UPDATE ... FROM); this Python has SQLite {sqlite3.sqlite_version}"
            )
        memory = parsed.database in (None, "", ":memory:")
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": 60},
            **({"poolclass": StaticPool} if memory else {}),
        )
        _sqlite_transactions(engine, wal=not memory, thread_nice=thread_nice)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise StoreError(f"database_url: use postgresql+asyncpg://, not {parsed.drivername}://")
        engine = create_async_engine(parsed, pool_pre_ping=True)
        _postgres_text_without_nul(engine)
        return engine
    raise StoreError(
        f"database_url: unsupported database {backend!r} (sqlite+aiosqlite or postgresql+asyncpg)"
    )


NUL_REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` with every NUL character of a string (or of the strings in a tuple, list or dict)
    replaced by U+FFFD: PostgreSQL's text cannot hold NUL, and evidence may carry one (a Falco command
    line, a hostile review). Raw evidence bodies are bytes and keep theirs."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT) if "\x00" in value else value
    if isinstance(value, tuple):
        return tuple(without_nul(v) for v in value)
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: without_nul(v) for k, v in value.items()}
    return value


def _postgres_text_without_nul(engine: AsyncEngine) -> None:
    """Every statement's string parameters on PostgreSQL go through :func:`without_nul`, so no text a
    document carries fails a write (which would fail its whole batch) or a query (a 500)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute", retval=True)
    def _clean(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        return statement, without_nul(parameters)


def lower_thread_priority(nice: int) -> int:
    """Add ``nice`` to the nice value of the calling thread (Linux schedules threads one by one; a
    no-op elsewhere and for 0); returns the thread's nice value after, or 0 when it asked for
    nothing or was refused. Never raises: where the system refuses, the thread keeps its priority
    and a warning is logged."""
    if not nice or not hasattr(os, "setpriority"):
        return 0
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:  # a sandbox that refuses it: the writes still work, at the same priority
        log.warning("could not lower the priority of a database thread: %s", exc)
        return 0


def _sqlite_transactions(engine: AsyncEngine, wal: bool, thread_nice: int = 0) -> None:
    """pysqlite's own transaction handling defers BEGIN; take it over so writes start with BEGIN
    IMMEDIATE (the write lock up front: two writer processes wait for each other instead of failing
    with 'database is locked' on lock upgrade) and reads with a plain BEGIN.

    aiosqlite runs each connection in a thread of its own. With ``thread_nice`` that thread runs at
    a lower priority than the event loop and the judge workers: SQLite's writes are background work,
    and at the same priority their bursts took the CPU from the loop answering reviews (measured on
    2 cores at 500 reviews/s: docs/benchmarks.md). The thread lowers itself, through an SQL function
    (the only public way to run code on aiosqlite's thread)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        if thread_nice:
            dbapi_connection.create_function("tribunal_lower_priority", 1, lower_thread_priority)
            cursor.execute("SELECT tribunal_lower_priority(?)", (thread_nice,))
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get("tribunal_write", False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        # Straight to aiosqlite: one trip to its thread (a statement through SQLAlchemy takes four).
        conn.connection.dbapi_connection.run_async(lambda driver: driver.execute(statement))


class SqlStore:
    """Records verdicts (a ``Recorder``: idempotent on evidence id) and answers queries about them.

    ``retention`` prunes raw evidence bodies older than it (rows, verdicts and findings are kept),
    at start and then at most every ``prune_interval`` while recording. Raw bodies are stored
    zstd-compressed at ``compress_level`` (1-19; any level, and the zlib of earlier versions, reads
    back the same). Raw bodies are redacted before they are written, as ``redaction`` says
    (``tribunal.model.redact``: secret values replaced by a marker; ``none`` keeps them whole). On
    SQLite, ``thread_nice`` lowers the priority of the connections' threads.

    With ``wait_for_database``, ``start`` does not fail when the database does not answer yet: it
    tries again in the background after each of ``connect_delays`` (then every last one), logging
    each failure with its cause, until it connects or ``stop``. Meanwhile ``connected`` is false,
    ``probe`` says why (a readiness check), the store's methods fail as in an outage, and
    ``wait_connected`` waits. A wrong URL or a schema newer than this version still fails at once."""

    def __init__(
        self,
        url: str,
        *,
        retention: timedelta | None = None,
        prune_interval: timedelta = timedelta(hours=1),
        compress_level: int = DEFAULT_LEVEL,
        thread_nice: int = 0,
        redaction: Redaction | str = Redaction.SECRETS,
        wait_for_database: bool = False,
        connect_delays: Sequence[float] = CONNECT_DELAYS,
    ) -> None:
        self.url = url
        self.wait_for_database = wait_for_database
        self.connect_delays = tuple(connect_delays) or (1.0,)
        self._connected = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None
        self._connect_error: str | None = None
        self._connect_attempts = 0
        self.redaction = Redaction(redaction)
        self.thread_nice = thread_nice
        self.retention = retention
        self.prune_interval = prune_interval
        self.compress_level = compress_level
        self._codec = RawCodec(compress_level)  # used on the event loop only (see store/raw.py)
        self._engine: AsyncEngine | None = None
        self._writer: RecordWriter | None = None
        self._last_prune: datetime | None = None
        # Told the records written for the first time, after their transaction (per-policy metrics):
        # each evidence counts once, whichever source it came from, off the answer's path.
        self.on_recorded: Callable[[Sequence[Record]], None] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError(self._not_started())
        return self._engine

    @property
    def writer(self) -> RecordWriter:
        """The write path for this store's dialect (see ``write.py``)."""
        if self._writer is None:
            raise StoreError(self._not_started())
        return self._writer

    def _not_started(self) -> str:
        if self._connecting is not None:
            return f"the store is not connected yet: {self.probe()}"
        return "the store is not started"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def start(self) -> None:
        """Connect and upgrade the schema in place; prune when retention is set. With
        ``wait_for_database``, a database that does not answer is tried again in the background."""
        if self._engine is not None or self._connecting is not None:
            raise StoreError("the store is already started")
        if not self.wait_for_database:
            await self._connect()
            return
        try:
            await self._connect()
        except StoreError:  # misconfigured (the URL, a newer schema): waiting will not help
            raise
        except Exception as exc:
            self._connect_failed(exc, self.connect_delays[0])
            self._connecting = asyncio.create_task(self._keep_connecting(), name="tribunal-store-connect")

    async def _connect(self) -> None:
        engine = create_store_engine(self.url, self.thread_nice)
        writer = RecordWriter(engine.dialect.name, self._codec, self.redaction)
        try:
            applied = await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine, self._writer = engine, writer
        self._connect_error = None
        self._connected.set()
        if self._connect_attempts:
            log.info("connected to the database after %d failed attempts", self._connect_attempts)
        if applied:
            log.info("database schema upgraded: applied %s", applied)
        await self._maybe_prune()

    def _connect_failed(self, exc: BaseException, delay: float) -> None:
        """Log a failed attempt (once, with its cause) and the wait before the next."""
        self._connect_attempts += 1
        self._connect_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning(
            "the database (%s) does not answer (attempt %d): %s; trying again in %g s",
            _safe_url(self.url),
            self._connect_attempts,
            self._connect_error,
            delay,
        )

    async def _keep_connecting(self) -> None:
        """After the first attempt (``start``'s) failed: wait its delay, then try again until connected."""
        await asyncio.sleep(self.connect_delays[0])
        retrying = AsyncRetrying(
            wait=wait_delays(self.connect_delays, skip=1),
            # Not once connected (only pruning failed), and never a cancellation (a stop).
            retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and self._engine is None),
            before_sleep=lambda state: self._connect_failed(failure(state), next_wait(state)),
            reraise=True,
        )
        try:
            await retrying(self._connect)
        except Exception:
            log.exception("pruning at start failed")

    @property
    def connected(self) -> bool:
        """True once the store has connected (and upgraded the schema)."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Return once the store has connected."""
        await self._connected.wait()

    def probe(self) -> str | None:
        """For a ReadinessCheck: None once connected, else why not yet."""
        if self.connected:
            return None
        if self._connect_error is None:
            return "connecting to the database"
        return (
            f"the database does not answer ({self._connect_attempts} attempts; last: "
            f"{self._connect_error}); trying again"
        )

    async def stop(self) -> None:
        """Close every connection (and stop trying to connect); safe to call twice."""
        if self._connecting is not None:
            task, self._connecting = self._connecting, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        self._connected.clear()

    async def __aenter__(self) -> SqlStore:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            await conn.execution_options(tribunal_write=True)
            async with conn.begin():
                yield conn

    # ------------------------------------------------------------------------------------------
    # Recording

    async def record(self, records: Sequence[Record]) -> None:
        """Write a batch in one transaction. Evidence already recorded (same id) is skipped whole,
        so redelivery changes nothing."""
        await self.record_new(records)

    async def record_new(self, records: Sequence[Record]) -> list[str]:
        """``record``, returning the evidence ids recorded for the first time: a redelivered message's
        id is not among them, so whoever acts on new verdicts acts once."""
        ordered = _ordered(records)
        if not ordered:
            return []
        async with self._write() as conn:
            fresh = await self.writer.write(conn, ordered)
        self._recorded(fresh)
        await self._maybe_prune()
        return [r.evidence_id for r in fresh]

    def _recorded(self, fresh: Sequence[Record]) -> None:
        if fresh and self.on_recorded is not None:
            try:
                self.on_recorded(fresh)
            except Exception:  # a metric must never fail a write that has committed
                log.exception("on_recorded failed on %d records", len(fresh))

    async def record_to_act(self, records: Sequence[Record]) -> list[str]:
        """``record``, keeping the evidence recorded now in the action outbox until
        :meth:`settle_actions`. Returns the ids to act on: those recorded now, and those recorded
        before whose actions never settled (the consumer died between recording and acting). So a
        redelivered message is acted on if it was not, and not again if it was."""
        ordered = _ordered(records)
        if not ordered:
            return []
        pending = schema.pending_actions
        async with self._write() as conn:
            written = await self.writer.write(conn, ordered)
            fresh = [r.evidence_id for r in written]
            if fresh:
                now = datetime.now(UTC)
                await conn.execute(pending.insert(), [{"evidence_id": i, "recorded_at": now} for i in fresh])
            new = set(fresh)
            seen_before = [r.evidence_id for r in ordered if r.evidence_id not in new]
            unsettled: list[str] = []
            for chunk in _chunks(seen_before):
                result = await conn.execute(
                    select(pending.c.evidence_id).where(pending.c.evidence_id.in_(chunk))
                )
                unsettled.extend(row[0] for row in result)
            for chunk in _chunks(unsettled):
                # Acted on now by this caller: renew the lease, so the outbox sweep leaves them alone.
                await conn.execute(
                    update(pending)
                    .where(pending.c.evidence_id.in_(chunk))
                    .values(recorded_at=datetime.now(UTC))
                )
        self._recorded(written)
        await self._maybe_prune()
        return fresh + sorted(unsettled)

    async def claim_unsettled(self, grace: timedelta, limit: int = 100) -> list[Record]:
        """Up to ``limit`` outbox entries recorded more than ``grace`` ago (their actions never
        settled: whoever recorded them died before acting), rebuilt as they were recorded: the
        Evidence from its stored raw body, the Verdict from its verdict row (not judged again).
        Taking them is a lease: their ``recorded_at`` becomes now, in one transaction and only where
        it is still older than ``grace`` (on PostgreSQL rows another replica is claiming are
        skipped), so several replicas on one database never take the same entry while its lease
        runs. Entries that cannot be rebuilt (the raw body was pruned by retention, or no
        longer parses) are logged and settled: they are never acted on."""
        pending, e, v = schema.pending_actions, schema.evidence, schema.verdicts
        now = datetime.now(UTC)
        cutoff = now - grace
        due = (
            select(pending.c.evidence_id)
            .where(pending.c.recorded_at < cutoff)
            .order_by(pending.c.recorded_at, pending.c.evidence_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(pending)
            .where(pending.c.evidence_id.in_(due.scalar_subquery()), pending.c.recorded_at < cutoff)
            .values(recorded_at=now)
            .returning(pending.c.evidence_id)
        )
        async with self._write() as conn:
            ids = sorted(row[0] for row in await conn.execute(claim))
            evidence_rows: dict[str, dict[str, Any]] = {}
            verdict_rows: dict[str, dict[str, Any]] = {}
            for chunk in _chunks(ids):
                for m in (await conn.execute(select(e).where(e.c.id.in_(chunk)))).mappings():
                    evidence_rows[m["id"]] = dict(m)
                for m in (await conn.execute(select(v).where(v.c.evidence_id.in_(chunk)))).mappings():
                    verdict_rows[m["evidence_id"]] = dict(m)
        if not ids:
            return []
        built = await asyncio.to_thread(
            _rebuild_all, [(i, evidence_rows.get(i), verdict_rows.get(i)) for i in ids]
        )
        records = [r for r in built if isinstance(r, Record)]
        dropped = [r for r in built if isinstance(r, str)]
        if dropped:
            await self.settle_actions(dropped)
        return records

    async def settle_actions(self, evidence_ids: Sequence[str], outcomes: Outcomes | None = None) -> None:
        """Take evidence out of the action outbox: its actions have run. In the same transaction,
        record the ``outcomes`` (by evidence id) of the evidence this call took out. Idempotent:
        evidence already settled (by a try whose answer was lost, or by whoever acted first) is left
        alone, and its outcomes are not written a second time."""
        ids = sorted(set(evidence_ids))
        if not ids:
            return
        pending = schema.pending_actions
        async with self._write() as conn:
            settled: list[str] = []
            for chunk in _chunks(ids):
                result = await conn.execute(
                    pending.delete().where(pending.c.evidence_id.in_(chunk)).returning(pending.c.evidence_id)
                )
                settled.extend(row[0] for row in result)
            if outcomes:
                written = [(i, outcomes[i]) for i in sorted(settled) if outcomes.get(i)]
                if written:
                    await self.writer.write_outcomes(conn, written)

    async def record_actions(self, evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> None:
        """Add the outcomes of actions taken after the verdict was recorded (the Kafka path records
        first, so that a redelivered message is never acted on twice)."""
        if not outcomes:
            return
        async with self._write() as conn:
            await self.writer.write_actions(conn, evidence_id, outcomes)

    # ------------------------------------------------------------------------------------------
    # Retention

    async def prune(self, older_than: datetime) -> int:
        """Drop the raw bodies of evidence received before ``older_than``; returns how many. Evidence
        rows (so idempotency), verdicts, violations and findings stay."""
        e = schema.evidence
        async with self._write() as conn:
            result = await conn.execute(
                update(e)
                .where(e.c.received_at < older_than, e.c.raw.is_not(None))
                .values(raw=None, pruned_at=datetime.now(UTC))
            )
        return int(result.rowcount)

    async def _maybe_prune(self) -> None:
        if self.retention is None:
            return
        now = datetime.now(UTC)
        if self._last_prune is not None and now - self._last_prune < self.prune_interval:
            return
        self._last_prune = now
        pruned = await self.prune(now - self.retention)
        if pruned:
            log.info("retention: pruned the raw bodies of %d evidence", pruned)

    # ------------------------------------------------------------------------------------------
    # Queries

    async def get_evidence(self, evidence_id: str) -> StoredEvidence | None:
        """The evidence with its raw document decompressed, or None."""
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(select(schema.evidence).where(schema.evidence.c.id == evidence_id)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return StoredEvidence(
            id=row["id"],
            kind=row["kind"],
            received_at=row["received_at"],
            source=row["source"],
            subject=Subject.model_validate_json(row["subject"]),
            raw=self._codec.decompress(row["raw"]) if row["raw"] is not None else None,
            pruned_at=row["pruned_at"],
        )

    async def get_verdict(self, evidence_id: str) -> VerdictDetail | None:
        """The verdict recorded for ``evidence_id``, with its violations, its actions' outcomes (in
        the order recorded) and whether its actions are still pending; None when there is none."""
        v, a, p = schema.verdicts, schema.actions, schema.pending_actions
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(v).where(v.c.evidence_id == evidence_id))).mappings().first()
            if row is None:
                return None
            outcomes = (
                await conn.execute(select(a).where(a.c.evidence_id == evidence_id).order_by(a.c.id))
            ).mappings()
            actions = [
                {
                    "target": o["target"],
                    "status": o["status"],
                    "recorded_at": o["recorded_at"],
                    "outcome": orjson.loads(o["outcome"]),
                }
                for o in outcomes
            ]
            pending = (
                await conn.execute(select(p.c.evidence_id).where(p.c.evidence_id == evidence_id))
            ).first() is not None
        r = dict(row)
        return VerdictDetail.model_validate(
            {
                **r,
                "namespace": r["namespace"] or None,
                "violations": orjson.loads(r["violations"]),
                "actions": actions,
                "actions_pending": pending,
            }
        )

    async def verdicts(self, query: VerdictQuery) -> Page[VerdictRow]:
        """Verdicts newest first (by time received), with their violations."""
        v = schema.verdicts
        stmt: Select[Any] = select(v)
        if query.kind is not None:
            stmt = stmt.where(v.c.kind == query.kind.value)
        if query.decision is not None:
            stmt = stmt.where(v.c.decision == query.decision.value)
        if query.namespace is not None:
            stmt = stmt.where(v.c.namespace == query.namespace)
        if query.subject is not None:
            stmt = stmt.where(v.c.subject_key == query.subject)
        if query.since is not None:
            stmt = stmt.where(v.c.received_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(v.c.received_at < query.until)
        if query.policy is not None:
            stmt = stmt.where(self._violates(query.policy))
        if query.cursor is not None:
            at, eid = decode_cursor(query.cursor, 2)
            stmt = stmt.where(tuple_(v.c.received_at, v.c.evidence_id) < tuple_(_cursor_time(at), str(eid)))
        stmt = stmt.order_by(v.c.received_at.desc(), v.c.evidence_id.desc()).limit(query.limit + 1)
        async with self.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
            more = len(rows) > query.limit
            rows = rows[: query.limit]
        items = [
            VerdictRow.model_validate(
                {**r, "namespace": r["namespace"] or None, "violations": orjson.loads(r["violations"])}
            )
            for r in rows
        ]
        cursor = (
            encode_cursor([items[-1].received_at.isoformat(), items[-1].evidence_id])
            if more and items
            else None
        )
        return Page[VerdictRow](items=items, next_cursor=cursor)

    async def findings(self, query: FindingQuery) -> Page[FindingRow]:
        """Findings, most recently seen first."""
        f = schema.findings
        stmt: Select[Any] = select(f)
        if query.status is not None:
            stmt = stmt.where(f.c.status == query.status.value)
        if query.policy:
            stmt = stmt.where(f.c.policy.in_(query.policy))
        if query.kind is not None:
            stmt = stmt.where(f.c.kind == query.kind.value)
        if query.namespace is not None:
            stmt = stmt.where(f.c.namespace == query.namespace)
        if query.subject is not None:
            stmt = stmt.where(f.c.subject_key == query.subject)
        if query.severity is not None:
            stmt = stmt.where(f.c.severity == query.severity.value)
        if query.since is not None:
            stmt = stmt.where(f.c.last_seen >= query.since)
        if query.cursor is not None:
            at, policy, key = decode_cursor(query.cursor, 3)
            stmt = stmt.where(
                tuple_(f.c.last_seen, f.c.policy, f.c.subject_key)
                < tuple_(_cursor_time(at), str(policy), str(key))
            )
        stmt = stmt.order_by(f.c.last_seen.desc(), f.c.policy.desc(), f.c.subject_key.desc())
        stmt = stmt.limit(query.limit + 1)
        async with self.engine.connect() as conn:
            rows = [_finding(m) for m in (await conn.execute(stmt)).mappings()]
        more = len(rows) > query.limit
        items = rows[: query.limit]
        cursor = None
        if more and items:
            last = items[-1]
            cursor = encode_cursor([last.last_seen.isoformat(), last.policy, last.subject_key])
        return Page[FindingRow](items=items, next_cursor=cursor)

    async def all_findings(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[FindingRow]:
        """Every finding of ``policies`` (last seen since ``since``), for reports."""
        f = schema.findings
        wanted = sorted(set(policies))
        if not wanted:
            return []
        stmt = select(f).where(f.c.policy.in_(wanted))
        if namespace is not None:
            stmt = stmt.where(f.c.namespace == namespace)
        if since is not None:
            stmt = stmt.where(or_(f.c.last_seen >= since, f.c.last_judged >= since))
        stmt = stmt.order_by(f.c.namespace, f.c.policy, f.c.subject_key)
        async with self.engine.connect() as conn:
            return [_finding(m) for m in (await conn.execute(stmt)).mappings()]

    async def activity(
        self, namespace: str | None = None, since: datetime | None = None
    ) -> list[ActivityRow]:
        """Verdicts per day, namespace and kind."""
        a = schema.daily_activity
        stmt = select(a)
        if namespace is not None:
            stmt = stmt.where(a.c.namespace == namespace)
        if since is not None:
            stmt = stmt.where(a.c.day >= aware(since).date())
        stmt = stmt.order_by(a.c.day, a.c.namespace, a.c.kind)
        async with self.engine.connect() as conn:
            return [
                ActivityRow.model_validate({**m, "namespace": m["namespace"] or None})
                for m in (await conn.execute(stmt)).mappings()
            ]

    def _violates(self, policy: str) -> TextClause:
        """Verdicts with a violation of ``policy`` (a scan of the JSON lists of the rows the other
        conditions leave)."""
        if self.dialect == "postgresql":
            condition = (
                "EXISTS (SELECT 1 FROM json_array_elements(CAST(verdicts.violations AS json)) AS x "
                "WHERE x->>'policy' = :violated_policy)"
            )
        else:
            condition = (
                "EXISTS (SELECT 1 FROM json_each(verdicts.violations) AS x "
                "WHERE json_extract(x.value, '$.policy') = :violated_policy)"
            )
        return text(condition).bindparams(violated_policy=policy)

    async def daily_violations(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[DailyViolationsRow]:
        """Violations per day, namespace and policy."""
        d = schema.daily_violations
        stmt = select(d).where(d.c.policy.in_(sorted(set(policies))))
        if namespace is not None:
            stmt = stmt.where(d.c.namespace == namespace)
        if since is not None:
            stmt = stmt.where(d.c.day >= aware(since).date())
        stmt = stmt.order_by(d.c.day, d.c.namespace, d.c.policy)
        async with self.engine.connect() as conn:
            return [
                DailyViolationsRow.model_validate({**m, "namespace": m["namespace"] or None})
                for m in (await conn.execute(stmt)).mappings()
            ]

    async def counts(self) -> dict[str, int]:
        """Rows per table (for tests, health and benchmarks)."""
        tables = {
            "evidence": schema.evidence,
            "verdicts": schema.verdicts,
            "actions": schema.actions,
            "findings": schema.findings,
            "pending_actions": schema.pending_actions,
        }
        out = {}
        async with self.engine.connect() as conn:
            for name, table in tables.items():
                out[name] = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            length = (
                "json_array_length(CAST(violations AS json))"
                if self.dialect == "postgresql"
                else "json_array_length(violations)"
            )
            total = await conn.execute(text(f"SELECT coalesce(sum({length}), 0) FROM verdicts"))
            out["violations"] = int(total.scalar_one())
            out["raw_kept"] = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(schema.evidence)
                        .where(schema.evidence.c.raw.is_not(None))
                    )
                ).scalar_one()
            )
        return out


def _rebuild_all(rows: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> list[Record | str]:
    """Each outbox entry as a Record, or its evidence id when it cannot be rebuilt (logged). Runs in
    a thread of its own: it has its own codec."""
    codec = RawCodec()
    out: list[Record | str] = []
    for evidence_id, evidence_row, verdict_row in rows:
        if evidence_row is None or verdict_row is None:
            log.warning("outbox: evidence %s has no recorded verdict; its actions are dropped", evidence_id)
            out.append(evidence_id)
        elif evidence_row["raw"] is None:
            log.warning(
                "outbox: the raw body of evidence %s was pruned (retention) before its actions ran; "
                "they are dropped",
                evidence_id,
            )
            out.append(evidence_id)
        else:
            try:
                out.append(_rebuild(evidence_row, verdict_row, codec))
            except Exception as exc:  # a body that no longer parses must not stop the others
                log.warning(
                    "outbox: evidence %s cannot be rebuilt (%s); its actions are dropped", evidence_id, exc
                )
                out.append(evidence_id)
    return out


def _rebuild(evidence_row: dict[str, Any], verdict_row: dict[str, Any], codec: RawCodec) -> Record:
    """The Record as it was recorded: Evidence parsed again from its raw body, the Verdict as stored."""
    raw = codec.decompress(evidence_row["raw"])
    kind = EvidenceKind(evidence_row["kind"])
    evidence = parse_evidence(orjson.loads(raw), evidence_row["source"], kind, raw=raw)
    evidence.id = evidence_row["id"]
    evidence.received_at = aware(evidence_row["received_at"])
    verdict = Verdict(
        evidence_id=verdict_row["evidence_id"],
        kind=EvidenceKind(verdict_row["kind"]),
        subject=Subject.model_validate_json(evidence_row["subject"]),
        decision=Decision(verdict_row["decision"]),
        violations=VIOLATIONS_JSON.validate_json(verdict_row["violations"]),
        policy_revision=verdict_row["policy_revision"],
        engine=verdict_row["engine"],
        evaluated_at=aware(verdict_row["evaluated_at"]),
        latency_ms=verdict_row["latency_ms"],
    )
    return Record(evidence, verdict, raw)


def _finding(m: Any) -> FindingRow:
    return FindingRow.model_validate(
        {
            **m,
            "namespace": m["namespace"] or None,
            "subject": orjson.loads(m["subject"]),
            "controls": orjson.loads(m["controls"]),
            "severity": Severity(m["severity"]),
        }
    )


def _cursor_time(value: Any) -> datetime:
    try:
        return aware(datetime.fromisoformat(str(value)))
    except ValueError:
        raise StoreError("cursor: not a cursor this store gave") from None


def _safe_url(url: str) -> str:
    """``url`` without its password, for logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "?"


def _ordered(records: Sequence[Record]) -> list[Record]:
    """One record per evidence id (the first), sorted by id: one lock order for every writer, so
    concurrent writers cannot deadlock."""
    unique: dict[str, Record] = {}
    for item in records:
        unique.setdefault(item.evidence_id, item)
    return [unique[k] for k in sorted(unique)]


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
