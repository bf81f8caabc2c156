"""Tasks remember from which attempt on results count (after a reviewer sent a step back).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tasks",
        sa.Column(
            "first_valid_attempt",
            sa.Integer,
            nullable=False,
            server_default=sa.text("1"),
            comment="results of earlier attempts no longer count",
        ),
    )


def downgrade() -> None:
    op.drop_column("tasks", "first_valid_attempt")
