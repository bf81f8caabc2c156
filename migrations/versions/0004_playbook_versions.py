"""Playbook versions: a workflow runs to the end on the playbook version that planned it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playbook_versions",
        sa.Column("digest", sa.Text, primary_key=True, comment="SHA-256 of the canonical document"),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.add_column(
        "workflows",
        sa.Column("playbook_digest", sa.Text, comment="the playbook version that planned it"),
    )


def downgrade() -> None:
    op.drop_column("workflows", "playbook_digest")
    op.drop_table("playbook_versions")
