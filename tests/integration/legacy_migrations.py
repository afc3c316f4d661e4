"""The store's hand-written migration runner as the releases before Alembic shipped it (schema
versions 1 to 5), frozen: the tests build a database at each of those versions with it, then check
that ``tribunal.store.migrate`` (Alembic) upgrades it to the schema of a fresh database. The tables it
took from ``tribunal.store.schema`` are copied here as they were at version 5."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tribunal.store.errors import StoreError
from tribunal.store.schema import UTCDateTime


class _Frozen:
    """The tables of ``tribunal.store.schema`` the runner used, as they were at schema version 5."""

    UTCDateTime = UTCDateTime
    metadata = MetaData()
    schema_version = Table(
        "tribunal_schema_version",
        metadata,
        Column("version", Integer, primary_key=True),
        Column("description", Text, nullable=False),
        Column("applied_at", UTCDateTime, nullable=False),
    )
    evidence = Table(
        "evidence",
        metadata,
        Column("id", String(256), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
        Column("source", Text, nullable=False),
        Column("subject_key", Text, nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("subject", Text, nullable=False),
        Column("raw", LargeBinary, nullable=True),
        Column("raw_size", Integer, nullable=False),
        Column("pruned_at", UTCDateTime, nullable=True),
        Index("ix_evidence_received_at", "received_at"),
    )
    actions = Table(
        "action_outcomes",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("evidence_id", String(256), nullable=False),
        Column("target", String(64), nullable=False),
        Column("status", String(32), nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("outcome", Text, nullable=False),
        Index("ix_action_outcomes_evidence", "evidence_id"),
    )
    daily_activity = Table(
        "daily_activity",
        metadata,
        Column("day", Date, primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("kind", String(16), primary_key=True),
        Column("verdicts", Integer, nullable=False),
        Column("denied", Integer, nullable=False),
        Column("warned", Integer, nullable=False),
    )
    daily_violations = Table(
        "daily_violations",
        metadata,
        Column("day", Date, primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("policy", String(128), primary_key=True),
        Column("violations", Integer, nullable=False),
    )


schema = _Frozen


# Any constant shared by every replica: the key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK_KEY = 0x7472_6962_756E_616C  # "tribunal"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """Evidence, verdicts, violations, action outcomes and findings."""
    m = MetaData()
    for table in (schema.evidence, schema.actions):
        table.to_metadata(m)
    verdicts_v1(m)
    violations_v1(m)
    _findings_v1(m)
    m.create_all(conn)


def verdicts_v1(m: MetaData) -> Table:
    """The verdicts table of schemas 1-3 (schema 4 added ``violations``)."""
    return Table(
        "verdicts",
        m,
        Column("evidence_id", String(256), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("subject_key", Text, nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("decision", String(8), nullable=False),
        Column("policy_revision", String(128), nullable=False),
        Column("engine", String(32), nullable=False),
        Column("received_at", schema.UTCDateTime, nullable=False),
        Column("evaluated_at", schema.UTCDateTime, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Index("ix_verdicts_received_at", "received_at", "evidence_id"),
        Index("ix_verdicts_namespace", "namespace", "received_at"),
    )


def violations_v1(m: MetaData) -> Table:
    """The violations table of schemas 1-3, one row per violation (schema 4 keeps them in the
    verdict's row)."""
    return Table(
        "violations",
        m,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("evidence_id", String(256), nullable=False),
        Column("policy", String(128), nullable=False),
        Column("severity", String(8), nullable=False),
        Column("enforcement", String(8), nullable=False),
        Column("msg", Text, nullable=False),
        Column("controls", Text, nullable=False),  # JSON list
        Column("details", Text, nullable=False),  # JSON object
        Column("exception", Text, nullable=True),
        Index("ix_violations_evidence", "evidence_id"),
        Index("ix_violations_policy", "policy"),
    )


def _findings_v1(m: MetaData) -> Table:
    return Table(
        "findings",
        m,
        Column("policy", String(128), primary_key=True),
        Column("subject_key", Text, primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("subject", Text, nullable=False),
        Column("severity", String(8), nullable=False),
        Column("status", String(8), nullable=False),
        Column("first_seen", schema.UTCDateTime, nullable=False),
        Column("last_seen", schema.UTCDateTime, nullable=False),
        Column("count", Integer, nullable=False),
        Column("first_evidence_id", String(256), nullable=False),
        Column("last_evidence_id", String(256), nullable=False),
        Column("msg", Text, nullable=False),
        Column("controls", Text, nullable=False),
        Column("exception", Text, nullable=True),
        Column("last_judged", schema.UTCDateTime, nullable=False),
        Index("ix_findings_status", "status", "namespace"),
        Index("ix_findings_subject", "subject_key", "kind"),
    )


def _v2_rollups(conn: Connection) -> None:
    """findings.resolved_at; daily rollups of verdicts and violations, backfilled from the record."""
    timestamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "TIMESTAMP"
    conn.execute(text(f"ALTER TABLE findings ADD COLUMN resolved_at {timestamp}"))
    conn.execute(
        text("UPDATE findings SET resolved_at = last_judged WHERE status = 'resolved'"),
    )
    schema.daily_activity.create(conn)
    schema.daily_violations.create(conn)
    day = (
        "CAST(v.received_at AT TIME ZONE 'UTC' AS DATE)"
        if conn.dialect.name == "postgresql"
        else "date(v.received_at)"
    )
    conn.execute(
        text(
            "INSERT INTO daily_activity (day, namespace, kind, verdicts, denied, warned) "
            f"SELECT {day}, v.namespace, v.kind, count(*), "
            "sum(CASE WHEN v.decision = 'deny' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN v.decision = 'warn' THEN 1 ELSE 0 END) "
            f"FROM verdicts v GROUP BY {day}, v.namespace, v.kind"
        )
    )
    conn.execute(
        text(
            "INSERT INTO daily_violations (day, namespace, policy, violations) "
            f"SELECT {day}, v.namespace, x.policy, count(*) FROM violations x "
            f"JOIN verdicts v ON v.evidence_id = x.evidence_id GROUP BY {day}, v.namespace, x.policy"
        )
    )


def _v3_pending_actions(conn: Connection) -> None:
    """The action outbox: verdicts recorded whose actions have not run yet."""
    m = MetaData()
    Table(
        "pending_actions",
        m,
        Column("evidence_id", String(256), primary_key=True),
        Column("recorded_at", schema.UTCDateTime, nullable=False),
    ).create(conn)


def _v4_violations_in_verdicts(conn: Connection) -> None:
    """Each verdict's violations as one JSON list in its row, moved from the violations table, which
    goes: a verdict took one row and its violations six more (the shared reviews' average), and
    writing those rows was the largest part of recording (docs/benchmarks.md)."""
    conn.execute(text("ALTER TABLE verdicts ADD COLUMN violations TEXT NOT NULL DEFAULT '[]'"))
    fields = "'policy', x.policy, 'msg', x.msg, 'severity', x.severity, {controls}, {details}, " \
        "'enforcement', x.enforcement, 'exception', x.exception"  # fmt: skip
    if conn.dialect.name == "postgresql":
        pairs = fields.format(
            controls="'controls', CAST(x.controls AS json)", details="'details', CAST(x.details AS json)"
        )
        conn.execute(
            text(
                "UPDATE verdicts SET violations = s.list FROM ("
                f"SELECT x.evidence_id, CAST(json_agg(json_build_object({pairs}) ORDER BY x.id) AS text) "
                "AS list FROM violations x GROUP BY x.evidence_id) s "
                "WHERE verdicts.evidence_id = s.evidence_id"
            )
        )
    else:
        pairs = fields.format(controls="'controls', json(x.controls)", details="'details', json(x.details)")
        conn.execute(
            text(
                "UPDATE verdicts SET violations = (SELECT json_group_array(json(o)) FROM ("
                f"SELECT json_object({pairs}) AS o FROM violations x "
                "WHERE x.evidence_id = verdicts.evidence_id ORDER BY x.id)) "
                "WHERE evidence_id IN (SELECT evidence_id FROM violations)"
            )
        )
    conn.execute(text("DROP TABLE violations"))


def _v5_shared_action_state(conn: Connection) -> None:
    """State the replicas on one database share: dedupe windows, the destructive actions of the
    last minute (the blast-radius budget), the blocked images."""
    m = MetaData()
    Table(
        "dedupe_windows",
        m,
        Column("key", String(64), primary_key=True),
        Column("until", schema.UTCDateTime, nullable=False),
        Column("repeats", Integer, nullable=False),
        Column("owner", String(256), nullable=True),
        Index("ix_dedupe_windows_until", "until"),
    )
    Table(
        "destructive_actions",
        m,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("namespace", String(253), nullable=False),
        Column("taken_at", schema.UTCDateTime, nullable=False),
        Index("ix_destructive_actions_namespace", "namespace", "taken_at"),
    )
    Table(
        "blocked_images",
        m,
        Column("key", String(1024), primary_key=True),
        Column("entry", Text, nullable=False),
        Column("updated_at", schema.UTCDateTime, nullable=False),
    )
    m.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "evidence, verdicts, violations, action outcomes, findings", _v1_initial),
    Migration(2, "findings.resolved_at and daily rollups", _v2_rollups),
    Migration(3, "the action outbox (pending_actions)", _v3_pending_actions),
    Migration(4, "violations kept in their verdict's row", _v4_violations_in_verdicts),
    Migration(5, "dedupe windows, blast radius and blocked images shared", _v5_shared_action_state),
)
LATEST = MIGRATIONS[-1].version


def _version_table() -> Table:
    return schema.schema_version


def current_version(conn: Connection) -> int:
    """The schema version of the database, 0 when it holds no Tribunal schema."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return 0
    found = conn.execute(select(schema.schema_version.c.version).order_by(text("version DESC"))).first()
    return int(found[0]) if found else 0


def _migrate(conn: Connection, target: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    version = current_version(conn)
    if version > LATEST:
        raise StoreError(
            f"the database's schema version {version} is newer than this Tribunal's ({LATEST}): "
            "upgrade Tribunal, or point TRIBUNAL_DATABASE_URL at another database"
        )
    if version == 0:
        _version_table().create(conn, checkfirst=True)
    applied = []
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            migration.apply(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(UTC),
                )
            )
            applied.append(migration.version)
    return applied


async def migrate(engine: AsyncEngine, target: int = LATEST) -> list[int]:
    """Upgrade the database in place to ``target``; returns the versions applied (often none)."""
    async with engine.connect() as conn:
        await conn.execution_options(tribunal_write=True)
        async with conn.begin():
            return await conn.run_sync(_migrate, target)


async def schema_version_of(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.run_sync(current_version)
