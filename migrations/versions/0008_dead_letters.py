"""The dead-letter index and replay requests.

Dead letters are mirrored from every ``*.dlq`` topic so they survive a broker that loses
its data and can be searched; replay requests and their items make a replay idempotent
(a request id never sends twice, a dead letter is replayed at most once).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SEARCH = (
    "to_tsvector('simple', coalesce(error_class, '') || ' ' || coalesce(error_message, '')"
    " || ' ' || coalesce(event_type, '') || ' ' || coalesce(payload::text, ''))"
)


def upgrade() -> None:
    op.alter_column(
        "outbox",
        "headers",
        comment='[[name, text | {"base64": ...}], ...]',
        existing_type=JSONB,
        existing_nullable=False,
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "fingerprint",
            sa.Text,
            nullable=False,
            unique=True,
            comment="SHA-256 of key, value and headers: indexing twice stores once",
        ),
        sa.Column("topic", sa.Text, nullable=False, comment="the dead-letter topic"),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer),
        sa.Column("source_offset", sa.BigInteger),
        sa.Column("consumer_group", sa.Text),
        sa.Column("reason", sa.Text, comment="undecodable | invalid | handler-error | exhausted"),
        sa.Column("error_class", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("stack_digest", sa.Text),
        sa.Column("attempts", sa.Integer),
        sa.Column("first_failure_at", _TS),
        sa.Column("last_failure_at", _TS),
        sa.Column("dead_lettered_at", _TS, nullable=False),
        sa.Column("event_type", sa.Text, comment="ce_type, when the record has one"),
        sa.Column("event_id", sa.Text, comment="ce_id, when the record has one"),
        sa.Column("workflow_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("capability", sa.Text),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("headers", JSONB, nullable=False, comment="every header, byte for byte"),
        sa.Column("payload", JSONB, comment="the value parsed, when it is JSON"),
        sa.Column("replay_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("replay_of", sa.Text, comment="the dead letter this message replayed"),
        sa.Column(
            "status",
            sa.Text,
            nullable=False,
            server_default=sa.text("'pending'"),
            comment="pending | replayed | resolved | discarded",
        ),
        sa.Column("status_by", sa.Text),
        sa.Column("status_at", _TS),
        sa.Column("status_reason", sa.Text),
        sa.Column("replay_request_id", sa.Text, comment="the request that replayed it"),
        sa.Column("indexed_at", _TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("search", TSVECTOR, sa.Computed(_SEARCH, persisted=True)),
    )
    op.create_index("dead_letters_status", "dead_letters", ["status", "dead_lettered_at"])
    op.create_index("dead_letters_source", "dead_letters", ["source_topic", "dead_lettered_at"])
    op.create_index("dead_letters_error", "dead_letters", ["error_class"])
    op.create_index("dead_letters_workflow", "dead_letters", ["workflow_id"])
    op.create_index("dead_letters_capability", "dead_letters", ["capability"])
    op.create_index("dead_letters_event", "dead_letters", ["event_id"])
    op.create_index("dead_letters_search", "dead_letters", ["search"], postgresql_using="gin")
    op.create_table(
        "replay_requests",
        sa.Column("id", sa.Text, primary_key=True, comment="chosen by the client: retry-safe"),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
        sa.Column("state", sa.Text, nullable=False, comment="running | done | failed"),
        sa.Column("selection", JSONB, nullable=False, comment="ids or a filter"),
        sa.Column("target_topic", sa.Text, comment="null: each dead letter's source topic"),
        sa.Column("edit", JSONB, comment='{"replace" | "merge_patch": document}'),
        sa.Column("rate", sa.Float, comment="messages per second; null: unlimited"),
        sa.Column("force", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("replay_requests_created", "replay_requests", ["created_at"])
    op.create_table(
        "replay_items",
        sa.Column(
            "request_id",
            sa.Text,
            sa.ForeignKey("replay_requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "dead_letter_id",
            sa.BigInteger,
            sa.ForeignKey("dead_letters.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "outcome",
            sa.Text,
            nullable=False,
            comment="pending | sent | noop | refused | invalid",
        ),
        sa.Column("detail", sa.Text),
        sa.Column("topic", sa.Text),
        sa.Column("at", _TS),
    )
    op.create_index("replay_items_dead_letter", "replay_items", ["dead_letter_id"])
    op.create_index(
        "replay_items_pending",
        "replay_items",
        ["request_id"],
        postgresql_where=sa.text("outcome = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("replay_items")
    op.drop_table("replay_requests")
    op.drop_table("dead_letters")
    op.alter_column(
        "outbox",
        "headers",
        comment="[[name, value], ...] (UTF-8 values)",
        existing_type=JSONB,
        existing_nullable=False,
    )
