"""The LLM planner: every plan it asked for, with the prompt and the answer (the audit
of what the model was told and said), and the claims that keep two orchestrators from
planning the same workflow (orchestrator/planning/tables.py).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("workflow_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, comment="1 for the first plan asked for"),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("prompt", JSONB, nullable=False, comment="the chat messages sent, as sent"),
        sa.Column("answer", sa.Text, comment="the model's answer; null when it gave none"),
        sa.Column(
            "outcome",
            sa.Text,
            nullable=False,
            comment="accepted | refused (the plan failed its checks) | error (no usable answer)",
        ),
        sa.Column(
            "problems",
            JSONB,
            nullable=False,
            comment="why the plan was refused, or the error",
        ),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("plan_attempts_workflow", "plan_attempts", ["workflow_id", "attempt"])
    op.create_table(
        "planner_claims",
        sa.Column(
            "workflow_id",
            sa.Text,
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "claimed_by",
            sa.Text,
            nullable=False,
            comment="the orchestrator instance planning it",
        ),
        sa.Column(
            "claimed_until",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="another orchestrator may plan it after this (its planner died)",
        ),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_table("planner_claims")
    op.drop_table("plan_attempts")
