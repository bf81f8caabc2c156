"""The LLM planner's tables: every plan it asked for (the audit of prompts and answers),
and which orchestrator is planning which workflow now (so replicas do not ask twice)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

plan_attempts = Table(
    "plan_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("workflow_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False, comment="1 for the first plan asked for"),
    Column("model", Text, nullable=False),
    Column("prompt", JSONB, nullable=False, comment="the chat messages sent, as sent"),
    Column("answer", Text, comment="the model's answer; null when it gave none"),
    Column(
        "outcome",
        Text,
        nullable=False,
        comment="accepted | refused (the plan failed its checks) | error (no usable answer)",
    ),
    Column("problems", JSONB, nullable=False, comment="why the plan was refused, or the error"),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("plan_attempts_workflow", "workflow_id", "attempt"),
)

planner_claims = Table(
    "planner_claims",
    metadata,
    Column(
        "workflow_id",
        Text,
        ForeignKey("workflows.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("claimed_by", Text, nullable=False, comment="the orchestrator instance planning it"),
    Column(
        "claimed_until",
        DateTime(timezone=True),
        nullable=False,
        comment="another orchestrator may plan it after this (its planner died)",
    ),
    Column("failures", Integer, nullable=False, server_default=text("0")),
)
