"""Schedules (orchestrator/schedules/tables.py): their definitions and state, and one
row per fired slot, whose primary key makes each slot fire exactly once however many
orchestrators run.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False, comment="file (synced from YAML) or api"),
        sa.Column("file", sa.Text, comment="the YAML file of a file-defined schedule"),
        sa.Column("definition", JSONB, nullable=False, comment="the schedule as written"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column(
            "fired_through",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="every slot up to here is decided (fired or skipped)",
        ),
        sa.Column(
            "next_fire_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the firing loop looks at it again",
        ),
        sa.Column("last_error", sa.Text, comment="why the last slot could not submit its goal"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
    )
    op.create_index(
        "schedules_due", "schedules", ["next_fire_at"], postgresql_where=sa.text("NOT paused")
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule", sa.Text, primary_key=True),
        sa.Column("slot", sa.DateTime(timezone=True), primary_key=True, comment="the slot's time"),
        sa.Column("workflow_id", sa.Text, comment="the goal it submitted (none if it could not)"),
        sa.Column("late", sa.Boolean, nullable=False, comment="a missed slot fired by catch-up"),
        sa.Column("error", sa.Text, comment="why no goal was submitted"),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_index("schedules_due", table_name="schedules")
    op.drop_table("schedules")
