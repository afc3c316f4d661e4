"""The SQL store's write path: rows built as tuples and written with the driver's executemany,
skipping SQLAlchemy's per-row parameter processing, which cost more than everything else in a write.
On SQLite the statements go to aiosqlite itself, inside the transaction SQLAlchemy began: through
SQLAlchemy's adapter every statement took four trips to aiosqlite's thread (cursor, execute, fetch,
close; 0.46 ms of CPU) where aiosqlite takes one (0.08 ms), and a batch has about ten.

Values are stored exactly as the column types in ``schema.py`` store them, so reads, reports,
migrations and databases written before keep working: on SQLite times are naive UTC text
'YYYY-MM-DD HH:MM:SS.ffffff' and days 'YYYY-MM-DD'; on PostgreSQL aware UTC datetimes and dates,
which asyncpg encodes itself.

Raw evidence is redacted here, on its one way into the store (``tribunal.model.redact``: secret values
replaced by a marker, as ``TRIBUNAL_EVIDENCE_REDACTION`` says), after the policies judged it whole.
When something was taken out of a record's evidence, its verdict's violations and its findings'
messages go through the same rules: they quote the evidence (a Falco alert's command line, a Trivy
secret finding's match). Evidence with nothing to take out costs no more than a look at its bytes."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tribunal.model import Violation
from tribunal.model.redact import Redaction, redact, redact_text, redact_violations
from tribunal.store.queries import FindingStatus
from tribunal.store.raw import RawCodec
from tribunal.store.recorder import Record

CHUNK = 500  # rows per multi-row statement or IN (...) list: far below either database's parameter limit
# Records whose rows are built between two turns of the event loop. The write shares the loop with
# the webhook: a batch of 25 admission verdicts built in one go held the loop up to 4-7 ms, which
# was the webhook's p99 at 500 reviews/s (docs/benchmarks.md).
PACE = 8
# Raw bodies larger than this are redacted in a thread, off the event loop (parsing and serialising
# again an 850 KB Trivy report with secret findings took 4 ms).
LARGE_BODY = 256 * 1024
T = TypeVar("T")
R = TypeVar("R")

# Column order of the tuples built below (the tables are in schema.py; a test checks they match).
EVIDENCE_COLUMNS = (
    "id", "kind", "received_at", "source", "subject_key", "namespace", "subject", "raw", "raw_size",
    "pruned_at",
)  # fmt: skip
VERDICT_COLUMNS = (
    "evidence_id", "kind", "subject_key", "namespace", "decision", "policy_revision", "engine",
    "received_at", "evaluated_at", "latency_ms", "violations",
)  # fmt: skip
ACTION_COLUMNS = ("evidence_id", "target", "status", "recorded_at", "outcome")
FINDING_COLUMNS = (
    "policy", "subject_key", "kind", "namespace", "subject", "severity", "status", "first_seen",
    "last_seen", "count", "first_evidence_id", "last_evidence_id", "msg", "controls", "exception",
    "last_judged", "resolved_at",
)  # fmt: skip
ACTIVITY_COLUMNS = ("day", "namespace", "kind", "verdicts", "denied", "warned")
DAILY_VIOLATION_COLUMNS = ("day", "namespace", "policy", "violations")

# A verdict's violations as its row keeps them (one call, not one per violation).
VIOLATIONS_JSON = TypeAdapter(list[Violation])

_OPEN, _EXCEPTED, _RESOLVED = (
    FindingStatus.OPEN.value, FindingStatus.EXCEPTED.value, FindingStatus.RESOLVED.value
)  # fmt: skip


# How a findings row of one write merges into the stored one (in SET, ``findings`` is the stored
# row): the latest violation is the last seen; its state (status, message, ...) wins only if no later
# verdict on the subject was judged before it (a late delivery is counted, and changes no status);
# the earliest first seen is kept; counts add up.
_LATEST = "excluded.last_seen >= findings.last_seen"
_CURRENT = f"{_LATEST} AND excluded.last_seen >= findings.last_judged"
_EARLIEST = "excluded.first_seen < findings.first_seen"
_MERGE_FINDING = ", ".join(
    [
        *(
            f"{c} = CASE WHEN {_CURRENT} THEN excluded.{c} ELSE findings.{c} END"
            for c in ("severity", "status", "msg", "controls", "exception")
        ),
        f"resolved_at = CASE WHEN {_CURRENT} THEN NULL ELSE findings.resolved_at END",
        *(
            f"{c} = CASE WHEN {_LATEST} THEN excluded.{c} ELSE findings.{c} END"
            for c in ("last_evidence_id", "last_seen")
        ),
        *(
            f"{c} = CASE WHEN {_EARLIEST} THEN excluded.{c} ELSE findings.{c} END"
            for c in ("first_evidence_id", "first_seen")
        ),
        "count = findings.count + excluded.count",
        "last_judged = CASE WHEN excluded.last_judged > findings.last_judged"
        " THEN excluded.last_judged ELSE findings.last_judged END",
    ]
)
# Judgements ``judged`` (subject, kind, time) applied to their subjects' findings: the latest time is
# the last judged; a finding not yet resolved is resolved by the first judgement after its last
# violation (every such judgement is one without it).
_JUDGE_FINDINGS = f"""UPDATE findings SET
  last_judged = CASE WHEN j.latest > findings.last_judged THEN j.latest ELSE findings.last_judged END,
  status = CASE WHEN j.resolves IS NULL OR findings.status = '{_RESOLVED}' THEN findings.status
    ELSE '{_RESOLVED}' END,
  resolved_at = CASE WHEN j.resolves IS NULL OR findings.status = '{_RESOLVED}' THEN findings.resolved_at
    ELSE j.resolves END
FROM (
  SELECT f.policy, f.subject_key, max(b.at) AS latest,
    min(CASE WHEN b.at > f.last_seen THEN b.at END) AS resolves
  FROM findings AS f JOIN judged AS b ON f.subject_key = b.subject_key AND f.kind = b.kind
  GROUP BY f.policy, f.subject_key
) AS j
WHERE findings.policy = j.policy AND findings.subject_key = j.subject_key
  AND (j.latest > findings.last_judged OR (j.resolves IS NOT NULL AND findings.status <> '{_RESOLVED}'))"""


def dumps(value: Any) -> str:
    """JSON text as the store keeps it (sorted keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def aware(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; naive values are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's SQLite ``DateTime`` stores a ``UTCDateTime``: naive UTC text, always
    with microseconds."""
    if value.tzinfo is not UTC:
        value = aware(value)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _identity(value: Any) -> Any:
    return value


class _Statements(Protocol):
    """Runs statements in the caller's write transaction, with the driver's placeholders."""

    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]: ...

    async def run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...


class _AlchemyStatements:
    """Through SQLAlchemy (PostgreSQL: asyncpg's transaction starts with SQLAlchemy's first statement,
    so statements sent to asyncpg directly could run outside it)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
        return list(await self.conn.exec_driver_sql(sql, tuple(params)))

    async def run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            await self.conn.exec_driver_sql(sql, rows)


class _AiosqliteStatements:
    """Straight to aiosqlite: one trip to its thread per statement (SQLite's BEGIN IMMEDIATE was sent
    when the transaction began, so they run inside it)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection  # aiosqlite.Connection

    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self.connection.execute_fetchall(sql, params)
        return rows

    async def run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            await self.connection.executemany(sql, rows)


@dataclass(slots=True)
class _Item:
    """A record with what several of its rows need, computed once."""

    record: Record
    id: str  # the evidence id
    at: datetime  # evidence received_at, aware UTC
    stored_at: Any  # the same as the database stores it
    day: date  # of ``at``, for the rollups
    key: str  # the verdict's subject: key, namespace ('' when none) and JSON
    namespace: str
    subject: str
    raw: bytes | None = None  # the raw body as stored (redacted), when made ahead of its row
    redacted: bool = False  # whether redaction took something out of the raw body


@dataclass(slots=True)
class _Finding:
    """What one write's verdicts say about a (policy, subject) finding (times aware UTC): the
    earliest and the latest violating verdict, with the latest one's state, and how many violated.
    The upsert merges it into the stored row (see ``_MERGE_FINDING``)."""

    policy: str
    subject_key: str
    kind: str
    namespace: str
    subject: str
    severity: str
    status: str
    first_seen: datetime
    last_seen: datetime
    count: int
    first_evidence_id: str
    last_evidence_id: str
    msg: str
    controls: str
    exception: str | None
    last_judged: datetime

    def see(self, items: list[Violation], at: datetime, evidence_id: str) -> None:
        """Take the state of the latest violating verdict: ``items``, this policy's violations in it."""
        first = items[0]
        if len(items) == 1:  # the common case, made cheap
            excepted, exception, severity = bool(first.exception), first.exception or None, first.severity
            controls = sorted(set(first.controls))
        else:
            excepted = all(x.exception for x in items)
            exception = next((x.exception for x in items if x.exception), None)
            severity = max((x.severity for x in items), key=lambda s: s.rank)
            controls = sorted({c for x in items for c in x.controls})
        self.status = _EXCEPTED if excepted else _OPEN
        self.last_seen = self.last_judged = at
        self.last_evidence_id = evidence_id
        self.msg = first.msg
        self.controls = dumps(controls)
        self.exception = exception
        self.severity = severity.value

    def row(self, time: Callable[[datetime], Any]) -> tuple[Any, ...]:
        """The row as ``FINDING_COLUMNS``, times through ``time``."""
        return (
            self.policy, self.subject_key, self.kind, self.namespace, self.subject, self.severity,
            self.status, time(self.first_seen), time(self.last_seen), self.count,
            self.first_evidence_id, self.last_evidence_id, self.msg, self.controls, self.exception,
            time(self.last_judged), None,
        )  # fmt: skip


class RecordWriter:
    """Writes batches of records on one dialect ("sqlite" or "postgresql") inside the caller's write
    transaction. Raw bodies are redacted as ``redaction`` says, then compressed by ``codec`` (zstd)."""

    def __init__(self, dialect: str, codec: RawCodec, redaction: Redaction | str = Redaction.SECRETS) -> None:
        self.postgresql = dialect == "postgresql"
        self.codec = codec
        self.redaction = Redaction(redaction)
        self._time: Callable[[datetime], Any] = aware if self.postgresql else sqlite_time
        self._day: Callable[[date], Any] = _identity if self.postgresql else date.isoformat
        self._verdicts_sql = self._insert_sql("verdicts", VERDICT_COLUMNS)
        self._actions_sql = self._insert_sql("action_outcomes", ACTION_COLUMNS)
        self._findings_sql = self._insert_sql(
            "findings", FINDING_COLUMNS, f" ON CONFLICT (policy, subject_key) DO UPDATE SET {_MERGE_FINDING}"
        )
        self._activity_sql = self._insert_sql(
            "daily_activity",
            ACTIVITY_COLUMNS,
            " ON CONFLICT (day, namespace, kind) DO UPDATE SET"
            " verdicts = daily_activity.verdicts + excluded.verdicts,"
            " denied = daily_activity.denied + excluded.denied,"
            " warned = daily_activity.warned + excluded.warned",
        )
        self._daily_violations_sql = self._insert_sql(
            "daily_violations",
            DAILY_VIOLATION_COLUMNS,
            " ON CONFLICT (day, namespace, policy) DO UPDATE SET"
            " violations = daily_violations.violations + excluded.violations",
        )

    def _marks(self, count: int, width: int) -> str:
        """``count`` parenthesised groups of ``width`` placeholders, in the driver's style."""
        if not self.postgresql:
            group = "(" + ", ".join("?" * width) + ")"
            return ", ".join([group] * count)
        return ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")" for i in range(count)
        )

    def _insert_sql(self, table: str, columns: Sequence[str], suffix: str = "", rows: int = 1) -> str:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {self._marks(rows, len(columns))}{suffix}"

    async def write(self, conn: AsyncConnection, records: Sequence[Record]) -> list[Record]:
        """Write ``records`` (unique evidence ids, sorted: one lock order for every writer); returns
        the ones new to the store, whose verdicts (with their violations), actions, findings and
        rollups follow."""
        run = await self._statements(conn)
        items = await _paced(records, lambda r: (self._item(r),))
        if self.redaction is not Redaction.NONE:
            for item in items:
                raw = item.record.raw
                if raw is not None and len(raw) > LARGE_BODY:
                    item.raw = await asyncio.to_thread(redact, item.record.kind, raw, self.redaction)
                    item.redacted = item.raw is not raw
        new_ids: set[str] = set()
        for i in range(0, len(items), CHUNK):
            chunk = items[i : i + CHUNK]
            sql = self._insert_sql(
                "evidence", EVIDENCE_COLUMNS, " ON CONFLICT (id) DO NOTHING RETURNING id", len(chunk)
            )
            params = await _paced(chunk, self._evidence_row)
            new_ids.update(row[0] for row in await run.fetch(sql, params))
        fresh = [item for item in items if item.id in new_ids]
        if not fresh:
            return []
        verdict_rows = await _paced(fresh, lambda item: (self._verdict_row(item),))
        await run.run_many(self._verdicts_sql, verdict_rows)
        await run.run_many(
            self._actions_sql,
            [row for item in fresh for row in self.action_rows(item.id, item.record.actions)],
        )
        await self._update_findings(conn, run, fresh)
        await self._update_rollups(run, fresh)
        return [item.record for item in fresh]

    async def write_actions(
        self, conn: AsyncConnection, evidence_id: str, outcomes: Sequence[dict[str, Any]]
    ) -> None:
        """Add action outcomes to recorded evidence."""
        run = await self._statements(conn)
        await run.run_many(self._actions_sql, list(self.action_rows(evidence_id, outcomes)))

    async def write_outcomes(
        self, conn: AsyncConnection, outcomes: Sequence[tuple[str, Sequence[dict[str, Any]]]]
    ) -> None:
        """Add the action outcomes of several pieces of recorded evidence, in one statement."""
        rows = [row for evidence_id, items in outcomes for row in self.action_rows(evidence_id, items)]
        if rows:
            run = await self._statements(conn)
            await run.run_many(self._actions_sql, rows)

    async def _statements(self, conn: AsyncConnection) -> _Statements:
        if self.postgresql:
            return _AlchemyStatements(conn)
        return _AiosqliteStatements((await conn.get_raw_connection()).driver_connection)

    def _item(self, r: Record) -> _Item:
        at = aware(r.received_at)
        s = r.verdict.subject
        return _Item(
            r, r.evidence_id, at, self._time(at), at.date(), s.key(), s.namespace or "",
            s.model_dump_json(exclude_none=True),
        )  # fmt: skip

    def _evidence_row(self, item: _Item) -> tuple[Any, ...]:
        r = item.record
        raw = item.raw
        if raw is None:
            whole = r.raw if r.raw is not None else orjson.dumps(r.evidence.event())
            raw = redact(r.kind, whole, self.redaction)
            item.redacted = raw is not whole
        s = r.subject
        if s is r.verdict.subject:  # as the judge makes them
            key, namespace, subject = item.key, item.namespace, item.subject
        else:
            key, namespace, subject = s.key(), s.namespace or "", s.model_dump_json(exclude_none=True)
        return (
            r.evidence_id, r.kind.value, item.stored_at, r.source, key, namespace, subject,
            self.codec.compress(raw), len(raw), None,
        )  # fmt: skip

    def _verdict_row(self, item: _Item) -> tuple[Any, ...]:
        v = item.record.verdict
        violations = VIOLATIONS_JSON.dump_json(v.violations)
        if item.redacted:  # set by _evidence_row, which ran first
            violations = redact_violations(v.kind, violations, self.redaction)
        return (
            item.id, v.kind.value, item.key, item.namespace, v.decision.value,
            v.policy_revision, v.engine, item.stored_at, self._time(v.evaluated_at), v.latency_ms,
            violations.decode(),
        )  # fmt: skip

    def action_rows(self, evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> Iterable[tuple[Any, ...]]:
        """Rows of ``action_outcomes`` (as ``ACTION_COLUMNS``) for ``outcomes``."""
        for outcome in outcomes:
            yield (
                evidence_id,
                str(outcome.get("target", outcome.get("action", "")))[:64],
                str(outcome.get("status", ""))[:32],
                self._time(datetime.now(UTC)),
                orjson.dumps(outcome, default=str).decode(),
            )

    async def _update_findings(self, conn: AsyncConnection, run: _Statements, fresh: list[_Item]) -> None:
        """Apply the new verdicts to the findings of their subjects: a violated policy opens (or
        excepts) its finding; a later verdict without it resolves it. The verdicts are summed up
        here, one row per (policy, subject), and the database merges that with what it holds: no
        finding is read back into Python."""
        if self.postgresql:
            # Serialise writers per subject (sorted: no deadlock); SQLite's BEGIN IMMEDIATE already does.
            locks = sorted({_lock_key(item.key) for item in fresh})
            await conn.execute(
                text(
                    "SELECT count(pg_advisory_xact_lock(k)) "
                    "FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) s"
                ),
                {"keys": locks},
            )
        found: dict[tuple[str, str], _Finding] = {}
        judged: dict[tuple[str, str, datetime], None] = {}  # (subject, kind, time): ordered, unique
        # Latest first: a finding takes the state of the first verdict that names it (the latest),
        # and each earlier one only moves its first sighting back and counts.
        latest_first = sorted(fresh, key=lambda item: (item.at, item.id), reverse=True)
        for n, item in enumerate(latest_first, 1):
            if n % PACE == 0:
                await _yield()
            v, t, eid, key = item.record.verdict, item.at, item.id, item.key
            kind = v.kind.value
            judged[(key, kind, t)] = None
            violated: dict[str, list[Violation]] = {}
            for x in v.violations:
                violated.setdefault(x.policy, []).append(x)
            for policy, items in violated.items():
                f = found.get((policy, key))
                if f is None:
                    f = found[(policy, key)] = _Finding(
                        policy, key, kind, item.namespace, item.subject, "", "", t, t, 1, eid, eid, "",
                        "", None, t,
                    )  # fmt: skip
                    f.see(items, t, eid)
                    if item.redacted:
                        f.msg = redact_text(f.msg)
                else:
                    f.first_seen, f.first_evidence_id = t, eid
                    f.count += 1

        # Every time written is a new verdict's, converted once already.
        time = {item.at: item.stored_at for item in fresh}.__getitem__
        merged = sorted(found.values(), key=lambda f: (f.policy, f.subject_key))
        rows = await _paced(merged, lambda f: (f.row(time),), 4 * PACE)
        for i in range(0, len(rows), CHUNK):
            await run.run_many(self._findings_sql, rows[i : i + CHUNK])
        # Then the judgements: the latest time on each subject, and the first after a finding's last
        # violation resolves it. Chunks go oldest first, so the earliest resolving one is kept.
        judgements = [(key, kind, time(t)) for key, kind, t in reversed(judged)]
        for i in range(0, len(judgements), CHUNK):
            chunk = judgements[i : i + CHUNK]
            params: tuple[Any, ...]
            if self.postgresql:
                params = tuple(list(column) for column in zip(*chunk, strict=True))
            else:
                params = tuple(value for row in chunk for value in row)
            await run.run_many(self._judge_sql(len(chunk)), [params])

    def _judge_sql(self, rows: int) -> str:
        """The statement that applies judgements (subject, kind, time) to the subjects' findings:
        ``rows`` of them on SQLite, three arrays on PostgreSQL."""
        if self.postgresql:
            judged = (
                "SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS timestamptz[]))"
                " AS b(subject_key, kind, at)"
            )
        else:
            judged = f"VALUES {self._marks(rows, 3)}"
        return f"WITH judged(subject_key, kind, at) AS ({judged}) {_JUDGE_FINDINGS}"

    async def _update_rollups(self, run: _Statements, fresh: list[_Item]) -> None:
        activity: dict[tuple[date, str, str], list[int]] = {}
        for item in fresh:
            v = item.record.verdict
            counts = activity.setdefault((item.day, item.namespace, v.kind.value), [0, 0, 0])
            decision = v.decision.value
            counts[0] += 1
            counts[1] += decision == "deny"
            counts[2] += decision == "warn"
        per_policy = Counter(
            (item.day, item.namespace, x.policy) for item in fresh for x in item.record.verdict.violations
        )
        day = self._day
        await run.run_many(
            self._activity_sql, [(day(d), ns, k, *c) for (d, ns, k), c in sorted(activity.items())]
        )
        await run.run_many(
            self._daily_violations_sql,
            [(day(d), ns, p, n) for (d, ns, p), n in sorted(per_policy.items())],
        )


async def _yield() -> None:
    """Let the event loop run whatever else is ready (see PACE)."""
    await asyncio.sleep(0)


async def _paced(items: Sequence[T], build: Callable[[T], Iterable[R]], every: int = PACE) -> list[R]:
    """Everything ``build`` makes of ``items``, in one list, letting the loop turn every ``every`` items."""
    built: list[R] = []
    for i in range(0, len(items), every):
        for item in items[i : i + every]:
            built.extend(build(item))
        await _yield()
    return built


def _lock_key(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
