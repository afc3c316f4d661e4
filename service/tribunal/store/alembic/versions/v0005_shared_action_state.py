"""dedupe windows, blast radius and blocked images shared

Schema version 5: state the replicas on one database share: dedupe windows, the destructive actions
of the last minute (the blast-radius budget), the blocked images."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dedupe_windows",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(256), nullable=True),
        sa.Index("ix_dedupe_windows_until", "until"),
    )
    op.create_table(
        "destructive_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_destructive_actions_namespace", "namespace", "taken_at"),
    )
    op.create_table(
        "blocked_images",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
