"""The agents' result ledger: what a worker answered for each task attempt, so a task
delivered again (after a crash, a freeze or a rebalance) is answered without running
its handler again.

UNLOGGED and without an index beyond its key: it is written once per task, so every
cost counts, and it guards against a crashed worker; PostgreSQL empties an unlogged
table after a crash of its own, which only means a handler may run once more.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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
            sa.LargeBinary,
            nullable=False,
            comment="the records published for the attempt (result and governance events), "
            "as JSON with base64 keys and values",
        ),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("agent_results")
