"""The orchestrator's tables (SQLAlchemy Core). Alembic migrations create them; a test
checks that the migrated schema and this metadata agree."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("id", Text, primary_key=True, comment="the goal id (ce_id or Idempotency-Key)"),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("output", JSONB),
    Column("reason", Text, comment="why the workflow failed"),
    Column("failed_step", Text),
    Column("error", JSONB),
    Column("traceparent", Text),
    Column("tracestate", Text),
    Column("playbook_digest", Text, comment="the playbook version that planned it"),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("workflows_status_accepted", "status", "accepted_at"),
    Index("workflows_type_accepted", "type", "accepted_at"),
    Index("workflows_accepted", "accepted_at"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("step", Text, nullable=False),
    Column("position", Integer, nullable=False, comment="order of the step in its playbook"),
    Column("capability", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("input", JSONB),
    Column("output", JSONB),
    Column("confidence", Float),
    Column("reasoning", JSONB),
    Column("usage", JSONB),
    Column("agent", JSONB),
    Column("error", JSONB),
    Column("attempts", JSONB, nullable=False, comment="one entry per dispatch and its outcome"),
    Column("proposal", JSONB, comment="an output waiting for a reviewer"),
    Column(
        "first_valid_attempt",
        Integer,
        nullable=False,
        server_default=text("1"),
        comment="results of earlier attempts no longer count",
    ),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workflow_id", "step", name="tasks_workflow_step"),
    Index(
        "tasks_lease_due",
        "lease_expires_at",
        postgresql_where=text("status = 'dispatched'"),
    ),
    Index(
        "tasks_retry_due",
        "next_attempt_at",
        postgresql_where=text("status = 'retry_wait'"),
    ),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("headers", JSONB, nullable=False, comment="[[name, value], ...] (UTF-8 values)"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

playbook_versions = Table(
    "playbook_versions",
    metadata,
    Column("digest", Text, primary_key=True, comment="SHA-256 of the canonical document"),
    Column("type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

EMBEDDING_DIMENSION = 1536  # waypost.embeddings.DEFAULT_DIMENSION

escalations = Table(
    "escalations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow_id", Text, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("task_id", Text, nullable=False),
    Column("step", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("goal_type", Text, nullable=False),
    Column("capability", Text, nullable=False),
    Column("kind", Text, nullable=False, comment="agent_request | low_confidence | approval"),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False, comment="pending | decided | resolved"),
    Column("priority", Integer, nullable=False, comment="1 is the most urgent"),
    Column("group_name", Text, nullable=False),
    Column("assignee", Text),
    Column("claimed_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("digest", Text, nullable=False, comment="SHA-256 of the canonical content"),
    Column("content", JSONB, nullable=False, comment="exactly what the reviewer is shown"),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("warn_at", DateTime(timezone=True), nullable=False),
    Column("overdue", Boolean, nullable=False, server_default=text("false")),
    Column("decision", JSONB),
    Column("resolved_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("embedding", Vector(EMBEDDING_DIMENSION), comment="for similar past decisions"),
    Index("escalations_inbox", "status", "priority", "opened_at"),
    Index("escalations_workflow", "workflow_id"),
    Index(
        "escalations_due",
        "due_at",
        postgresql_where=text("status = 'pending' AND NOT overdue"),
    ),
    Index("escalations_decided", "updated_at", postgresql_where=text("status = 'decided'")),
    Index(
        "escalations_embedding",
        "embedding",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("escalation_id", Text),
    Column("workflow_id", Text),
    Column("version", Integer),
    Column("digest", Text),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("audit_events_escalation", "escalation_id", "at"),
    Index("audit_events_at", "at"),
)
