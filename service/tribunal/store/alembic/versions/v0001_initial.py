"""evidence, verdicts, violations, action outcomes, findings

Schema version 1: the tables as the first release created them (frozen here; later revisions change
some of them)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("subject_key", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=True),
        sa.Column("raw_size", sa.Integer, nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_evidence_received_at", "received_at"),
    )
    op.create_table(
        "action_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("evidence_id", sa.String(256), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Index("ix_action_outcomes_evidence", "evidence_id"),
    )
    op.create_table(
        "verdicts",
        sa.Column("evidence_id", sa.String(256), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_key", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("policy_revision", sa.String(128), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Index("ix_verdicts_received_at", "received_at", "evidence_id"),
        sa.Index("ix_verdicts_namespace", "namespace", "received_at"),
    )
    op.create_table(
        "violations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("evidence_id", sa.String(256), nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("enforcement", sa.String(8), nullable=False),
        sa.Column("msg", sa.Text, nullable=False),
        sa.Column("controls", sa.Text, nullable=False),  # JSON list
        sa.Column("details", sa.Text, nullable=False),  # JSON object
        sa.Column("exception", sa.Text, nullable=True),
        sa.Index("ix_violations_evidence", "evidence_id"),
        sa.Index("ix_violations_policy", "policy"),
    )
    op.create_table(
        "findings",
        sa.Column("policy", sa.String(128), primary_key=True),
        sa.Column("subject_key", sa.Text, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_evidence_id", sa.String(256), nullable=False),
        sa.Column("last_evidence_id", sa.String(256), nullable=False),
        sa.Column("msg", sa.Text, nullable=False),
        sa.Column("controls", sa.Text, nullable=False),
        sa.Column("exception", sa.Text, nullable=True),
        sa.Column("last_judged", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_findings_status", "status", "namespace"),
        sa.Index("ix_findings_subject", "subject_key", "kind"),
    )
