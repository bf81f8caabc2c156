"""The A2A bridge's memory of remote tasks: which remote task each bridged Waypost task
follows, so a task delivered again, retried or approved goes on with the same remote
task instead of starting a second one (waypost/a2a/store.py).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "a2a_bridge_tasks",
        sa.Column("task_id", sa.Text, primary_key=True, comment="the Waypost task"),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column("remote_task_id", sa.Text, nullable=False, comment="the remote agent's task id"),
        sa.Column("context_id", sa.Text, nullable=False),
        sa.Column(
            "attempt", sa.Integer, nullable=False, comment="the attempt that last followed it"
        ),
        sa.Column(
            "answered_escalation_id",
            sa.Text,
            comment="the escalation whose approval was sent to the remote task (not again)",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )


def downgrade() -> None:
    op.drop_table("a2a_bridge_tasks")
