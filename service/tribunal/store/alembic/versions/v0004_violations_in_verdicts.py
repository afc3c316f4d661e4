"""violations kept in their verdict's row

Schema version 4: each verdict's violations as one JSON list in its row, moved from the violations
table, which goes: a verdict took one row and its violations six more (the shared reviews' average),
and writing those rows was the largest part of recording (docs/benchmarks.md)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FIELDS = (
    "'policy', x.policy, 'msg', x.msg, 'severity', x.severity, {controls}, {details}, "
    "'enforcement', x.enforcement, 'exception', x.exception"
)


def upgrade() -> None:
    op.add_column(
        "verdicts", sa.Column("violations", sa.Text, nullable=False, server_default=sa.text("'[]'"))
    )
    if op.get_bind().dialect.name == "postgresql":
        pairs = _FIELDS.format(
            controls="'controls', CAST(x.controls AS json)", details="'details', CAST(x.details AS json)"
        )
        op.execute(
            "UPDATE verdicts SET violations = s.list FROM ("
            f"SELECT x.evidence_id, CAST(json_agg(json_build_object({pairs}) ORDER BY x.id) AS text) "
            "AS list FROM violations x GROUP BY x.evidence_id) s "
            "WHERE verdicts.evidence_id = s.evidence_id"
        )
    else:
        pairs = _FIELDS.format(controls="'controls', json(x.controls)", details="'details', json(x.details)")
        op.execute(
            "UPDATE verdicts SET violations = (SELECT json_group_array(json(o)) FROM ("
            f"SELECT json_object({pairs}) AS o FROM violations x "
            "WHERE x.evidence_id = verdicts.evidence_id ORDER BY x.id)) "
            "WHERE evidence_id IN (SELECT evidence_id FROM violations)"
        )
    op.drop_table("violations")
