"""Circuit breakers: one row per capability, shared by every orchestrator.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "circuit_breakers",
        sa.Column("capability", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False, comment="closed | open | half_open"),
        sa.Column(
            "failures",
            sa.Integer,
            nullable=False,
            server_default=sa.text("0"),
            comment="failures counted in the window when the last one happened",
        ),
        sa.Column(
            "failure_times",
            ARRAY(_TS),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="when those failures happened, oldest first",
        ),
        sa.Column("last_error", sa.Text),
        sa.Column("opened_at", _TS),
        sa.Column("open_until", _TS, comment="when a probe may go (open)"),
        sa.Column("probe_task_id", sa.Text, comment="the task let through (half_open)"),
        sa.Column("probe_until", _TS, comment="the probe's lease; then another may go"),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("circuit_breakers")
