"""Failed workflows point to the dead letter whose replay resumes them.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "workflows",
        sa.Column(
            "dead_letter",
            JSONB,
            comment="the dead letter whose replay resumes it: {topic, event_id, task_id, attempt}",
        ),
    )


def downgrade() -> None:
    op.drop_column("workflows", "dead_letter")
