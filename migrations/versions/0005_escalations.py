"""Escalations (results waiting for a reviewer) and the audit trail.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tasks", sa.Column("proposal", JSONB, comment="an output waiting for a reviewer"))
    op.create_table(
        "escalations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Text,
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("goal_type", sa.Text, nullable=False),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column(
            "kind", sa.Text, nullable=False, comment="agent_request | low_confidence | approval"
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, comment="pending | decided | resolved"),
        sa.Column("priority", sa.Integer, nullable=False, comment="1 is the most urgent"),
        sa.Column("group_name", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("claimed_at", _TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.Text, nullable=False, comment="SHA-256 of the canonical content"),
        sa.Column("content", JSONB, nullable=False, comment="exactly what the reviewer is shown"),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("warn_at", _TS, nullable=False),
        sa.Column("overdue", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("decision", JSONB),
        sa.Column("resolved_at", _TS),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("embedding", Vector(1536), comment="for similar past decisions"),
    )
    op.create_index("escalations_inbox", "escalations", ["status", "priority", "opened_at"])
    op.create_index("escalations_workflow", "escalations", ["workflow_id"])
    op.create_index(
        "escalations_due",
        "escalations",
        ["due_at"],
        postgresql_where=sa.text("status = 'pending' AND NOT overdue"),
    )
    op.create_index(
        "escalations_decided",
        "escalations",
        ["updated_at"],
        postgresql_where=sa.text("status = 'decided'"),
    )
    op.create_index(
        "escalations_embedding",
        "escalations",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("escalation_id", sa.Text),
        sa.Column("workflow_id", sa.Text),
        sa.Column("version", sa.Integer),
        sa.Column("digest", sa.Text),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("audit_events_escalation", "audit_events", ["escalation_id", "at"])
    op.create_index("audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("escalations")
    op.drop_column("tasks", "proposal")
