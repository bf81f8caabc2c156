"""Governance: the audit of policy decisions, and the counters rate limits and budgets
read (allowed actions; spend per agent and UTC day, and per agent and workflow).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False, comment="allow | deny | require_approval"),
        sa.Column("cause", sa.Text, nullable=False, comment="which check decided (engine Cause)"),
        sa.Column(
            "policy", sa.Text, comment="name of the deciding policy; NULL: no policy applied"
        ),
        sa.Column("policy_file", sa.Text),
        sa.Column("policy_version", sa.Integer),
        sa.Column("policy_digest", sa.Text, comment="SHA-256 of the policy document"),
        sa.Column("rule", sa.Text, comment="path of the deciding rule, e.g. actions.deny[1]"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "context_digest", sa.Text, nullable=False, comment="SHA-256 of proposal + context"
        ),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint(
            "outcome IN ('allow', 'deny', 'require_approval')", name="policy_decisions_outcome"
        ),
    )
    op.create_index("policy_decisions_agent_at", "policy_decisions", ["agent", "at"])
    op.create_index("policy_decisions_workflow", "policy_decisions", ["workflow_id", "at"])

    op.create_table(
        "agent_actions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("capability", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("workflow_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("decision_id", sa.BigInteger, comment="policy_decisions.id of the decision"),
    )
    op.create_index("agent_actions_agent_action_at", "agent_actions", ["agent", "action", "at"])
    op.create_index("agent_actions_at", "agent_actions", ["at"])

    op.create_table(
        "agent_spend",
        sa.Column("agent", sa.Text, primary_key=True),
        sa.Column("period_kind", sa.Text, primary_key=True, comment="day | workflow"),
        sa.Column(
            "period",
            sa.Text,
            primary_key=True,
            comment="UTC date (2025-01-31) or workflow id",
        ),
        sa.Column("tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("cost_usd", sa.Numeric(20, 8), nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("period_kind IN ('day', 'workflow')", name="agent_spend_period_kind"),
        sa.CheckConstraint("tokens >= 0 AND cost_usd >= 0", name="agent_spend_not_negative"),
    )


def downgrade() -> None:
    op.drop_table("agent_spend")
    op.drop_table("agent_actions")
    op.drop_table("policy_decisions")
