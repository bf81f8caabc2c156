"""The agents' result ledger: what a worker answered for each task attempt, so a task
delivered again (after a crash, a freeze or a rebalance) is answered without running
its handler again.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_results",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column(
            "records",
            JSONB,
            nullable=False,
            comment="the records published for the attempt: result and governance events",
        ),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_index("agent_results_recorded_at", "agent_results", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("agent_results")
