"""The tables of the current schema (SQLAlchemy Core). The Alembic revisions in ``alembic/versions``
build them (``migrations.py`` runs them); this module only describes the latest version for queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# One row per schema version applied: the record of the releases before Alembic, still written for
# them to refuse a newer database (see migrations.py).
schema_version = Table(
    "tribunal_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

# Evidence as it arrived: the raw document zstd-compressed (zlib in bodies written by earlier
# releases; NULL once retention pruned it).
evidence = Table(
    "evidence",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("subject_key", Text, nullable=False),
    Column("namespace", String(253), nullable=False),  # '' when cluster-scoped or unknown
    Column("subject", Text, nullable=False),  # JSON
    Column("raw", LargeBinary, nullable=True),
    Column("raw_size", Integer, nullable=False),
    Column("pruned_at", UTCDateTime, nullable=True),
    Index("ix_evidence_received_at", "received_at"),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("evidence_id", String(256), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject_key", Text, nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("policy_revision", String(128), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("evaluated_at", UTCDateTime, nullable=False),
    Column("latency_ms", Float, nullable=False),
    # JSON list of the verdict's violations, each as the Violation model dumps it: policy, msg,
    # severity, controls, details, enforcement, exception (schema 4; a table of their own before).
    Column("violations", Text, nullable=False),
    Index("ix_verdicts_received_at", "received_at", "evidence_id"),
    Index("ix_verdicts_namespace", "namespace", "received_at"),
)

actions = Table(
    "action_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("evidence_id", String(256), nullable=False),
    Column("target", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("outcome", Text, nullable=False),  # JSON, the whole outcome as the dispatcher gave it
    Index("ix_action_outcomes_evidence", "evidence_id"),
)

# The action outbox of sources that record first and act after (Kafka, HTTP ingest): a row from the
# moment a verdict is recorded until its actions have run, so a crash in between is acted on at
# redelivery or by the outbox sweep. ``recorded_at`` is also the sweep's lease (see claim_unsettled).
pending_actions = Table(
    "pending_actions",
    metadata,
    Column("evidence_id", String(256), primary_key=True),
    Column("recorded_at", UTCDateTime, nullable=False),
)

# One row per (policy, subject): open, resolved (a later verdict no longer violates) or excepted.
findings = Table(
    "findings",
    metadata,
    Column("policy", String(128), primary_key=True),
    Column("subject_key", Text, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("subject", Text, nullable=False),  # JSON
    Column("severity", String(8), nullable=False),
    Column("status", String(8), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_evidence_id", String(256), nullable=False),
    Column("last_evidence_id", String(256), nullable=False),
    Column("msg", Text, nullable=False),
    Column("controls", Text, nullable=False),  # JSON list, of the latest violating verdict
    Column("exception", Text, nullable=True),
    Column("last_judged", UTCDateTime, nullable=False),  # the latest verdict on the subject, violating or not
    Column("resolved_at", UTCDateTime, nullable=True),  # schema 2
    Index("ix_findings_status", "status", "namespace"),
    Index("ix_findings_subject", "subject_key", "kind"),
)

# Rollups kept at write time so reports never scan every verdict (schema 2).
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

# State that replicas on one database share (schema 5; store/shared.py): a rule's dedupe window per
# key, claimed by the first replica to act; the destructive actions of the last minute, the
# blast-radius budget per namespace; the blocked images (block-image's policy data).
dedupe_windows = Table(
    "dedupe_windows",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 (hex) of the dedupe key
    Column("until", UTCDateTime, nullable=False),
    Column("repeats", Integer, nullable=False),
    Column("owner", String(256), nullable=True),  # the evidence whose actions started the window
    Index("ix_dedupe_windows_until", "until"),
)

destructive_actions = Table(
    "destructive_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(253), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Index("ix_destructive_actions_namespace", "namespace", "taken_at"),
)

blocked_images = Table(
    "blocked_images",
    metadata,
    Column("key", String(1024), primary_key=True),  # the digest when known, else the reference
    Column("entry", Text, nullable=False),  # JSON: the entry as data.tribunal.state.images holds it
    Column("updated_at", UTCDateTime, nullable=False),
)
