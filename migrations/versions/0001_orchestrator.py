"""Orchestrator tables: workflows, tasks and the transactional outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column(
            "id", sa.Text, primary_key=True, comment="the goal id (ce_id or Idempotency-Key)"
        ),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("input", JSONB, nullable=False),
        sa.Column("output", JSONB),
        sa.Column("reason", sa.Text, comment="why the workflow failed"),
        sa.Column("failed_step", sa.Text),
        sa.Column("error", JSONB),
        sa.Column("traceparent", sa.Text),
        sa.Column("tracestate", sa.Text),
        sa.Column("accepted_at", _TS, nullable=False),
        sa.Column("started_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("workflows_status_accepted", "workflows", ["status", "accepted_at"])
    op.create_index("workflows_type_accepted", "workflows", ["type", "accepted_at"])
    op.create_index("workflows_accepted", "workflows", ["accepted_at"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Text,
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column(
            "position", sa.Integer, nullable=False, comment="order of the step in its playbook"
        ),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("input", JSONB),
        sa.Column("output", JSONB),
        sa.Column("confidence", sa.Float),
        sa.Column("reasoning", JSONB),
        sa.Column("usage", JSONB),
        sa.Column("agent", JSONB),
        sa.Column("error", JSONB),
        sa.Column(
            "attempts", JSONB, nullable=False, comment="one entry per dispatch and its outcome"
        ),
        sa.Column("lease_expires_at", _TS),
        sa.Column("next_attempt_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("workflow_id", "step", name="tasks_workflow_step"),
    )
    op.create_index(
        "tasks_lease_due",
        "tasks",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'dispatched'"),
    )
    op.create_index(
        "tasks_retry_due",
        "tasks",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'retry_wait'"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("headers", JSONB, nullable=False, comment="[[name, value], ...] (UTF-8 values)"),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("tasks")
    op.drop_table("workflows")
