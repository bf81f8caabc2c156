"""Decision quality (orchestrator/quality/tables.py): the drift state of each agent
version's rejection and edit rates, which makes every crossing of a threshold announced
once however many orchestrators check; and the indexes that let the quality queries
read a range of days: tasks an agent answered by when they last changed, escalations by
when they opened.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_quality_drifts",
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False, comment="rejected | edited"),
        sa.Column(
            "drifted",
            sa.Boolean,
            nullable=False,
            comment="past the threshold at the last change",
        ),
        sa.Column("rate", sa.Float, nullable=False, comment="count / decided at the last change"),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("decided", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "capability", "version", "verdict", name="decision_quality_drifts_pkey"
        ),
    )
    op.create_index("escalations_opened", "escalations", ["opened_at"])


def downgrade() -> None:
    op.drop_index("escalations_opened", table_name="escalations")
    op.drop_table("decision_quality_drifts")
