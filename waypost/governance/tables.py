"""Governance tables (SQLAlchemy Core). Migration 0013 creates them; a test checks that
the migrated schema and this metadata agree.

- ``policy_decisions``: the audit trail, one row per decision, whatever its outcome.
- ``agent_actions``: the actions that were allowed, counted by the rate windows.
- ``agent_spend``: tokens and money per agent and UTC day, and per agent and workflow.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

policy_decisions = Table(
    "policy_decisions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("agent", Text, nullable=False),
    Column("capability", Text, nullable=False),
    Column("workflow_id", Text),
    Column("task_id", Text),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False, comment="allow | deny | require_approval"),
    Column("cause", Text, nullable=False, comment="which check decided (engine Cause)"),
    Column("policy", Text, comment="name of the deciding policy; NULL: no policy applied"),
    Column("policy_file", Text),
    Column("policy_version", Integer),
    Column("policy_digest", Text, comment="SHA-256 of the policy document"),
    Column("rule", Text, comment="path of the deciding rule, e.g. actions.deny[1]"),
    Column("reason", Text, nullable=False),
    Column("context_digest", Text, nullable=False, comment="SHA-256 of proposal + context"),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(
        "outcome IN ('allow', 'deny', 'require_approval')", name="policy_decisions_outcome"
    ),
    Index("policy_decisions_agent_at", "agent", "at"),
    Index("policy_decisions_at", "at", "id"),  # the governance page, newest first
    Index("policy_decisions_workflow", "workflow_id", "at"),
)

agent_actions = Table(
    "agent_actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("agent", Text, nullable=False),
    Column("capability", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("workflow_id", Text),
    Column("task_id", Text),
    # No foreign key: the audit trail and these counters are pruned independently.
    Column("decision_id", BigInteger, comment="policy_decisions.id of the decision"),
    Index("agent_actions_agent_action_at", "agent", "action", "at"),
    Index("agent_actions_at", "at"),
)

agent_spend = Table(
    "agent_spend",
    metadata,
    Column("agent", Text, primary_key=True),
    Column("period_kind", Text, primary_key=True, comment="day | workflow"),
    Column("period", Text, primary_key=True, comment="UTC date (2025-01-31) or workflow id"),
    Column("tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Numeric(20, 8), nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("period_kind IN ('day', 'workflow')", name="agent_spend_period_kind"),
    CheckConstraint("tokens >= 0 AND cost_usd >= 0", name="agent_spend_not_negative"),
)
