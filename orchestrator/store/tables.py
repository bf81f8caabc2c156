"""The orchestrator's tables (SQLAlchemy Core). Alembic migrations create them; a test
checks that the migrated schema and this metadata agree."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

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
    Column(
        "dead_letter",
        JSONB,
        comment="the dead letter whose replay resumes it: {topic, event_id, task_id, attempt}",
    ),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Workflow search (orchestrator/store/workflow_search.py, migration 0019).
    Index("workflows_status_accepted", "status", "accepted_at", "id"),
    Index("workflows_type_status", "type", "status", "accepted_at", "id"),
    Index("workflows_accepted", "accepted_at", "id"),
    Index("workflows_started", "started_at", "id"),
    Index("workflows_finished", "finished_at", "id"),
    Index("workflows_id_prefix", "id", postgresql_ops={"id": "text_pattern_ops"}),
    Index(
        "workflows_trigger_event_type",
        text("((input -> '_trigger') ->> 'event_type')"),
        "accepted_at",
        "id",
        postgresql_where=text("input ? '_trigger'"),
    ),
    Index(
        "workflows_trigger_source",
        text("((input -> '_trigger') ->> 'source')"),
        "accepted_at",
        "id",
        postgresql_where=text("input ? '_trigger'"),
    ),
    Index(
        "workflows_input_search",
        text(
            "jsonb_to_tsvector('simple'::regconfig, input - '_trigger'::text,"
            """ '["string", "numeric"]'::jsonb)"""
        ),
        postgresql_using="gin",
    ),
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
    # Recent work per capability (the agents page, decision quality's day ranges).
    Index("tasks_updated", "updated_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("headers", JSONB, nullable=False, comment='[[name, text | {"base64": ...}], ...]'),
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
    Column(
        "required_approvals",
        Integer,
        nullable=False,
        server_default=text("1"),
        comment="different reviewers who must approve (2: four eyes)",
    ),
    Column(
        "approvals",
        JSONB,
        nullable=False,
        server_default=text("'[]'::jsonb"),
        comment="approve/edit decisions given so far to the output awaiting approval",
    ),
    Index("escalations_inbox", "status", "priority", "opened_at"),
    Index("escalations_opened", "opened_at"),  # decision quality's day ranges
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
    Index("audit_events_workflow", "workflow_id", "at", "id"),  # a workflow's timeline
    Index("audit_events_actor", "actor", "at"),  # the audit log by actor
)

_TS = DateTime(timezone=True)
_SEARCH = (
    "to_tsvector('simple', coalesce(error_class, '') || ' ' || coalesce(error_message, '')"
    " || ' ' || coalesce(event_type, '') || ' ' || coalesce(payload::text, ''))"
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "fingerprint",
        Text,
        nullable=False,
        unique=True,
        comment="SHA-256 of key, value and headers: indexing twice stores once",
    ),
    Column("topic", Text, nullable=False, comment="the dead-letter topic"),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("source_topic", Text, nullable=False),
    Column("source_partition", Integer),
    Column("source_offset", BigInteger),
    Column("consumer_group", Text),
    Column("reason", Text, comment="undecodable | invalid | handler-error | exhausted"),
    Column("error_class", Text),
    Column("error_message", Text),
    Column("stack_digest", Text),
    Column("attempts", Integer),
    Column("first_failure_at", _TS),
    Column("last_failure_at", _TS),
    Column("dead_lettered_at", _TS, nullable=False),
    Column("event_type", Text, comment="ce_type, when the record has one"),
    Column("event_id", Text, comment="ce_id, when the record has one"),
    Column("workflow_id", Text),
    Column("task_id", Text),
    Column("capability", Text),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("headers", JSONB, nullable=False, comment="every header, byte for byte"),
    Column("payload", JSONB, comment="the value parsed, when it is JSON"),
    Column("replay_count", Integer, nullable=False, server_default=text("0")),
    Column("replay_of", Text, comment="the dead letter this message replayed"),
    Column(
        "status",
        Text,
        nullable=False,
        server_default=text("'pending'"),
        comment="pending | replayed | resolved | discarded",
    ),
    Column("status_by", Text),
    Column("status_at", _TS),
    Column("status_reason", Text),
    Column("replay_request_id", Text, comment="the request that replayed it"),
    Column("indexed_at", _TS, nullable=False, server_default=text("now()")),
    Column("search", TSVECTOR, Computed(_SEARCH, persisted=True)),
    Index("dead_letters_status", "status", "dead_lettered_at"),
    Index("dead_letters_source", "source_topic", "dead_lettered_at"),
    Index("dead_letters_error", "error_class"),
    Index("dead_letters_workflow", "workflow_id"),
    Index("dead_letters_capability", "capability"),
    Index("dead_letters_event", "event_id"),
    Index("dead_letters_search", "search", postgresql_using="gin"),
)

replay_requests = Table(
    "replay_requests",
    metadata,
    Column("id", Text, primary_key=True, comment="chosen by the client: retry-safe"),
    Column("actor", Text, nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("finished_at", _TS),
    Column("state", Text, nullable=False, comment="running | done | failed"),
    Column("selection", JSONB, nullable=False, comment="ids or a filter"),
    Column("target_topic", Text, comment="null: each dead letter's source topic"),
    Column("edit", JSONB, comment='{"replace" | "merge_patch": document}'),
    Column("rate", Float, comment="messages per second; null: unlimited"),
    Column("force", Boolean, nullable=False, server_default=text("false")),
    Column("total", Integer, nullable=False),
    Column("error", Text),
    Index("replay_requests_created", "created_at"),
)

replay_items = Table(
    "replay_items",
    metadata,
    Column(
        "request_id",
        Text,
        ForeignKey("replay_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "dead_letter_id",
        BigInteger,
        ForeignKey("dead_letters.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("outcome", Text, nullable=False, comment="pending | sent | noop | refused | invalid"),
    Column("detail", Text),
    Column("topic", Text),
    Column("at", _TS),
    Index("replay_items_dead_letter", "dead_letter_id"),
    Index(
        "replay_items_pending",
        "request_id",
        postgresql_where=text("outcome = 'pending'"),
    ),
)

circuit_breakers = Table(
    "circuit_breakers",
    metadata,
    Column("capability", Text, primary_key=True),
    Column("state", Text, nullable=False, comment="closed | open | half_open"),
    Column(
        "failures",
        Integer,
        nullable=False,
        server_default=text("0"),
        comment="failures counted in the window when the last one happened",
    ),
    Column(
        "failure_times",
        ARRAY(_TS),
        nullable=False,
        server_default=text("'{}'"),
        comment="when those failures happened, oldest first",
    ),
    Column("last_error", Text),
    Column("opened_at", _TS),
    Column("open_until", _TS, comment="when a probe may go (open)"),
    Column("probe_task_id", Text, comment="the task let through (half_open)"),
    Column("probe_until", _TS, comment="the probe's lease; then another may go"),
    Column("updated_at", _TS, nullable=False),
    Column(
        "opened_by",
        Text,
        comment="who opened the circuit by hand; NULL: the breaker did (or it is not open)",
    ),
    Column("open_reason", Text, comment="why they opened it by hand"),
)
