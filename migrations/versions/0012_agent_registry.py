"""The agent registry: one row per agent worker and capability, kept fresh by heartbeats.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_instances",
        sa.Column("capability", sa.Text, primary_key=True),
        sa.Column("instance", sa.Text, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("input_schema", JSONB, nullable=False),
        sa.Column("output_schema", JSONB, nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat_interval_s", sa.Float, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("last_heartbeat", _TS, nullable=False),
        sa.Column("stopped_at", _TS),
        sa.Column("tasks_completed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("tasks_failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column(
            "tasks_per_min",
            sa.Float,
            nullable=False,
            server_default=sa.text("0"),
            comment="results per minute over about the last minute",
        ),
    )


def downgrade() -> None:
    op.drop_table("agent_instances")
