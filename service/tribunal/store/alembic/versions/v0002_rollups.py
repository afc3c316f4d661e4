"""findings.resolved_at and daily rollups

Schema version 2: findings.resolved_at; daily rollups of verdicts and violations, backfilled from the
record."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("findings", sa.Column("resolved_at", sa.TIMESTAMP(timezone=True), nullable=True))
    op.execute("UPDATE findings SET resolved_at = last_judged WHERE status = 'resolved'")
    op.create_table(
        "daily_activity",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("verdicts", sa.Integer, nullable=False),
        sa.Column("denied", sa.Integer, nullable=False),
        sa.Column("warned", sa.Integer, nullable=False),
    )
    op.create_table(
        "daily_violations",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("policy", sa.String(128), primary_key=True),
        sa.Column("violations", sa.Integer, nullable=False),
    )
    day = "CAST(v.received_at AT TIME ZONE 'UTC' AS DATE)" if postgres else "date(v.received_at)"
    op.execute(
        "INSERT INTO daily_activity (day, namespace, kind, verdicts, denied, warned) "
        f"SELECT {day}, v.namespace, v.kind, count(*), "
        "sum(CASE WHEN v.decision = 'deny' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN v.decision = 'warn' THEN 1 ELSE 0 END) "
        f"FROM verdicts v GROUP BY {day}, v.namespace, v.kind"
    )
    op.execute(
        "INSERT INTO daily_violations (day, namespace, policy, violations) "
        f"SELECT {day}, v.namespace, x.policy, count(*) FROM violations x "
        f"JOIN verdicts v ON v.evidence_id = x.evidence_id GROUP BY {day}, v.namespace, x.policy"
    )
