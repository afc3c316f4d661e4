"""The SQL store: a ``Recorder`` on SQLAlchemy 2 async, SQLite (aiosqlite) by default and PostgreSQL
(asyncpg) for several replicas, chosen by the URL; plus the queries reports and the read API use."""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, event, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from tribunal.model import Severity, Subject
from tribunal.store import schema
from tribunal.store.errors import StoreError
from tribunal.store.migrations import migrate
from tribunal.store.queries import (
    ActivityRow,
    DailyViolationsRow,
    FindingQuery,
    FindingRow,
    FindingStatus,
    Page,
    StoredEvidence,
    VerdictQuery,
    VerdictRow,
    ViolationRow,
    decode_cursor,
    encode_cursor,
)
from tribunal.store.recorder import Record

log = logging.getLogger("tribunal.store")

_CHUNK = 500  # rows per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def create_store_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``: SQLite in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` for
    writes, or PostgreSQL through asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database_url: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            raise StoreError(f"database_url: use sqlite+aiosqlite://, not {parsed.drivername}://")
        memory = parsed.database in (None, "", ":memory:")
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": 60},
            **({"poolclass": StaticPool} if memory else {}),
        )
        _sqlite_transactions(engine, wal=not memory)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise StoreError(f"database_url: use postgresql+asyncpg://, not {parsed.drivername}://")
        return create_async_engine(parsed, pool_pre_ping=True)
    raise StoreError(
        f"database_url: unsupported database {backend!r} (sqlite+aiosqlite or postgresql+asyncpg)"
    )


def _sqlite_transactions(engine: AsyncEngine, wal: bool) -> None:
    """pysqlite's own transaction handling defers BEGIN; take it over so writes start with BEGIN
    IMMEDIATE (the write lock up front: two writer processes wait for each other instead of failing
    with 'database is locked' on lock upgrade) and reads with a plain BEGIN."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get("tribunal_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@dataclass
class _Finding:
    """A findings row being updated in memory within one write transaction."""

    row: dict[str, Any]
    changed: bool = False


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _namespace(value: str | None) -> str:
    return value or ""


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlStore:
    """Records verdicts (a ``Recorder``: idempotent on evidence id) and answers queries about them.

    ``retention`` prunes raw evidence bodies older than it (rows, verdicts and findings are kept),
    at start and then at most every ``prune_interval`` while recording."""

    def __init__(
        self,
        url: str,
        *,
        retention: timedelta | None = None,
        prune_interval: timedelta = timedelta(hours=1),
        compress_level: int = 6,
    ) -> None:
        self.url = url
        self.retention = retention
        self.prune_interval = prune_interval
        self.compress_level = compress_level
        self._engine: AsyncEngine | None = None
        self._last_prune: datetime | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError("the store is not started")
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def start(self) -> None:
        """Connect and upgrade the schema in place; prune when retention is set."""
        if self._engine is not None:
            raise StoreError("the store is already started")
        self._engine = create_store_engine(self.url)
        try:
            applied = await migrate(self._engine)
        except Exception:
            await self._engine.dispose()
            self._engine = None
            raise
        if applied:
            log.info("database schema upgraded: applied %s", applied)
        await self._maybe_prune()

    async def stop(self) -> None:
        """Close every connection; safe to call twice."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

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

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # ------------------------------------------------------------------------------------------
    # Recording

    async def record(self, records: Sequence[Record]) -> None:
        """Write a batch in one transaction. Evidence already recorded (same id) is skipped whole,
        so redelivery changes nothing."""
        await self.record_new(records)

    async def record_new(self, records: Sequence[Record]) -> list[str]:
        """``record``, returning the evidence ids recorded for the first time: a redelivered message's
        id is not among them, so whoever acts on new verdicts acts once."""
        unique: dict[str, Record] = {}
        for item in records:
            unique.setdefault(item.evidence.id, item)
        if not unique:
            return []
        ordered = [unique[k] for k in sorted(unique)]  # one lock order for every writer: no deadlocks
        async with self._write() as conn:
            stmt = self._insert(schema.evidence).on_conflict_do_nothing(index_elements=["id"])
            result = await conn.execute(
                stmt.returning(schema.evidence.c.id), [self._evidence_row(r) for r in ordered]
            )
            new_ids = {row[0] for row in result}
            fresh = [r for r in ordered if r.evidence.id in new_ids]
            if not fresh:
                return []
            await conn.execute(schema.verdicts.insert(), [self._verdict_row(r) for r in fresh])
            violation_rows = [row for r in fresh for row in self._violation_rows(r)]
            if violation_rows:
                await conn.execute(schema.violations.insert(), violation_rows)
            action_rows = [row for r in fresh for row in self._action_rows(r.evidence.id, r.actions)]
            if action_rows:
                await conn.execute(schema.actions.insert(), action_rows)
            await self._update_findings(conn, fresh)
            await self._update_rollups(conn, fresh)
        await self._maybe_prune()
        return [r.evidence.id for r in fresh]

    async def record_actions(self, evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> None:
        """Add the outcomes of actions taken after the verdict was recorded (the Kafka path records
        first, so that a redelivered message is never acted on twice)."""
        if not outcomes:
            return
        rows = list(self._action_rows(evidence_id, outcomes))
        async with self._write() as conn:
            await conn.execute(schema.actions.insert(), rows)

    def _evidence_row(self, r: Record) -> dict[str, Any]:
        ev = r.evidence
        raw = r.raw if r.raw is not None else orjson.dumps(ev.event())
        return {
            "id": ev.id,
            "kind": ev.kind.value,
            "received_at": ev.received_at,
            "source": ev.source,
            "subject_key": ev.subject.key(),
            "namespace": _namespace(ev.subject.namespace),
            "subject": ev.subject.model_dump_json(exclude_none=True),
            "raw": zlib.compress(raw, self.compress_level),
            "raw_size": len(raw),
            "pruned_at": None,
        }

    @staticmethod
    def _verdict_row(r: Record) -> dict[str, Any]:
        v = r.verdict
        return {
            "evidence_id": r.evidence.id,
            "kind": v.kind.value,
            "subject_key": v.subject.key(),
            "namespace": _namespace(v.subject.namespace),
            "decision": v.decision.value,
            "policy_revision": v.policy_revision,
            "engine": v.engine,
            "received_at": r.evidence.received_at,
            "evaluated_at": v.evaluated_at,
            "latency_ms": v.latency_ms,
        }

    @staticmethod
    def _violation_rows(r: Record) -> Iterable[dict[str, Any]]:
        for x in r.verdict.violations:
            yield {
                "evidence_id": r.evidence.id,
                "policy": x.policy,
                "severity": x.severity.value,
                "enforcement": x.enforcement.value,
                "msg": x.msg,
                "controls": _json(x.controls),
                "details": _json(x.details),
                "exception": x.exception,
            }

    @staticmethod
    def _action_rows(evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        for outcome in outcomes:
            yield {
                "evidence_id": evidence_id,
                "target": str(outcome.get("target", outcome.get("action", "")))[:64],
                "status": str(outcome.get("status", ""))[:32],
                "recorded_at": datetime.now(UTC),
                "outcome": orjson.dumps(outcome, default=str).decode(),
            }

    async def _update_findings(self, conn: AsyncConnection, fresh: list[Record]) -> None:
        """Apply the new verdicts, oldest first, to the findings of their subjects: a violated policy
        opens (or excepts) its finding; a later verdict without it resolves it."""
        keys = sorted({r.verdict.subject.key() for r in fresh})
        if self.dialect == "postgresql":
            # Serialise writers per subject (sorted: no deadlock); SQLite's BEGIN IMMEDIATE already does.
            locks = sorted({_lock_key(k) for k in keys})
            await conn.execute(
                text(
                    "SELECT count(pg_advisory_xact_lock(k)) "
                    "FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) s"
                ),
                {"keys": locks},
            )
        current: dict[tuple[str, str], _Finding] = {}
        for chunk in _chunks(keys):
            result = await conn.execute(
                select(schema.findings).where(schema.findings.c.subject_key.in_(chunk))
            )
            for m in result.mappings():
                current[(m["policy"], m["subject_key"])] = _Finding(dict(m))
        by_subject: dict[tuple[str, str], list[_Finding]] = defaultdict(list)
        for existing in current.values():
            by_subject[(existing.row["subject_key"], existing.row["kind"])].append(existing)

        for r in sorted(fresh, key=lambda r: (_aware(r.evidence.received_at), r.evidence.id)):
            v, t, eid = r.verdict, _aware(r.evidence.received_at), r.evidence.id
            key = v.subject.key()
            violated: dict[str, list[Any]] = defaultdict(list)
            for x in v.violations:
                violated[x.policy].append(x)
            for policy, items in violated.items():
                excepted = all(x.exception for x in items)
                severity = max((x.severity for x in items), key=lambda s: s.rank)
                latest = {
                    "status": FindingStatus.EXCEPTED.value if excepted else FindingStatus.OPEN.value,
                    "last_seen": t,
                    "last_evidence_id": eid,
                    "msg": items[0].msg,
                    "controls": _json(sorted({c for x in items for c in x.controls})),
                    "exception": next((x.exception for x in items if x.exception), None),
                    "severity": severity.value,
                    "resolved_at": None,
                }
                found = current.get((policy, key))
                if found is None:
                    found = _Finding(
                        {
                            "policy": policy,
                            "subject_key": key,
                            "kind": v.kind.value,
                            "namespace": _namespace(v.subject.namespace),
                            "subject": v.subject.model_dump_json(exclude_none=True),
                            "first_seen": t,
                            "first_evidence_id": eid,
                            "count": 0,
                            "last_judged": t,
                            **latest,
                        }
                    )
                    current[(policy, key)] = found
                    by_subject[(key, v.kind.value)].append(found)
                row = found.row
                row["count"] += 1
                if t < _aware(row["first_seen"]):
                    row["first_seen"], row["first_evidence_id"] = t, eid
                if t >= _aware(row["last_seen"]):
                    row.update(latest)
                row["last_judged"] = max(_aware(row["last_judged"]), t)
                found.changed = True
            for f in by_subject[(key, v.kind.value)]:
                row = f.row
                if row["policy"] in violated:
                    continue
                if t > _aware(row["last_judged"]):
                    row["last_judged"] = t
                    f.changed = True
                if row["status"] != FindingStatus.RESOLVED.value and t > _aware(row["last_seen"]):
                    row["status"], row["resolved_at"] = FindingStatus.RESOLVED.value, t
                    f.changed = True

        changed = sorted(
            (f.row for f in current.values() if f.changed), key=lambda r: (r["policy"], r["subject_key"])
        )
        if changed:
            stmt = self._insert(schema.findings)
            columns = [c.name for c in schema.findings.columns if c.name not in ("policy", "subject_key")]
            stmt = stmt.on_conflict_do_update(
                index_elements=["policy", "subject_key"], set_={c: stmt.excluded[c] for c in columns}
            )
            await conn.execute(stmt, changed)

    async def _update_rollups(self, conn: AsyncConnection, fresh: list[Record]) -> None:
        activity: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        per_policy: dict[tuple[date, str, str], int] = defaultdict(int)
        for r in fresh:
            day = _aware(r.evidence.received_at).date()
            ns = _namespace(r.verdict.subject.namespace)
            counts = activity[(day, ns, r.verdict.kind.value)]
            counts[0] += 1
            counts[1] += r.verdict.decision.value == "deny"
            counts[2] += r.verdict.decision.value == "warn"
            for x in r.verdict.violations:
                per_policy[(day, ns, x.policy)] += 1
        a = schema.daily_activity
        stmt = self._insert(a)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "namespace", "kind"],
            set_={
                "verdicts": a.c.verdicts + stmt.excluded.verdicts,
                "denied": a.c.denied + stmt.excluded.denied,
                "warned": a.c.warned + stmt.excluded.warned,
            },
        )
        await conn.execute(
            stmt,
            [
                {"day": d, "namespace": ns, "kind": k, "verdicts": c[0], "denied": c[1], "warned": c[2]}
                for (d, ns, k), c in sorted(activity.items())
            ],
        )
        if per_policy:
            dv = schema.daily_violations
            stmt = self._insert(dv)
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "namespace", "policy"],
                set_={"violations": dv.c.violations + stmt.excluded.violations},
            )
            await conn.execute(
                stmt,
                [
                    {"day": d, "namespace": ns, "policy": p, "violations": n}
                    for (d, ns, p), n in sorted(per_policy.items())
                ],
            )

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
            raw=zlib.decompress(row["raw"]) if row["raw"] is not None else None,
            pruned_at=row["pruned_at"],
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
            x = schema.violations
            stmt = stmt.where(
                select(x.c.id).where(x.c.evidence_id == v.c.evidence_id, x.c.policy == query.policy).exists()
            )
        if query.cursor is not None:
            at, eid = decode_cursor(query.cursor, 2)
            stmt = stmt.where(tuple_(v.c.received_at, v.c.evidence_id) < tuple_(_cursor_time(at), str(eid)))
        stmt = stmt.order_by(v.c.received_at.desc(), v.c.evidence_id.desc()).limit(query.limit + 1)
        async with self.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            found: dict[str, list[ViolationRow]] = defaultdict(list)
            for chunk in _chunks([r["evidence_id"] for r in rows]):
                x = schema.violations
                result = await conn.execute(
                    select(x).where(x.c.evidence_id.in_(chunk)).order_by(x.c.evidence_id, x.c.id)
                )
                for m in result.mappings():
                    found[m["evidence_id"]].append(
                        ViolationRow(
                            policy=m["policy"],
                            severity=m["severity"],
                            enforcement=m["enforcement"],
                            msg=m["msg"],
                            controls=orjson.loads(m["controls"]),
                            details=orjson.loads(m["details"]),
                            exception=m["exception"],
                        )
                    )
        items = [
            VerdictRow.model_validate(
                {**r, "namespace": r["namespace"] or None, "violations": found[r["evidence_id"]]}
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
            stmt = stmt.where(a.c.day >= _aware(since).date())
        stmt = stmt.order_by(a.c.day, a.c.namespace, a.c.kind)
        async with self.engine.connect() as conn:
            return [
                ActivityRow.model_validate({**m, "namespace": m["namespace"] or None})
                for m in (await conn.execute(stmt)).mappings()
            ]

    async def daily_violations(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[DailyViolationsRow]:
        """Violations per day, namespace and policy."""
        d = schema.daily_violations
        stmt = select(d).where(d.c.policy.in_(sorted(set(policies))))
        if namespace is not None:
            stmt = stmt.where(d.c.namespace == namespace)
        if since is not None:
            stmt = stmt.where(d.c.day >= _aware(since).date())
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
            "violations": schema.violations,
            "actions": schema.actions,
            "findings": schema.findings,
        }
        out = {}
        async with self.engine.connect() as conn:
            for name, table in tables.items():
                out[name] = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
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
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        raise StoreError("cursor: not a cursor this store gave") from None


def _lock_key(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
