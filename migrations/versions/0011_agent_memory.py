"""Agent memory: each capability's episodic, semantic and procedural memories (pgvector).

Unlike the knowledge base, memories arrive one at a time, so the HNSW index is created
here and maintained row by row.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration describes the schema as it was at this revision.
_DIMENSION = 1536
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_memories",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.Text, nullable=False, comment="the capability that owns the memory"),
        sa.Column("kind", sa.Text, nullable=False, comment="episodic | semantic | procedural"),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("importance", sa.Float, nullable=False, comment="0 (trivial) to 1 (vital)"),
        sa.Column("access_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_accessed_at", _TS, nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("embedding", Vector(_DIMENSION), nullable=False),
        sa.CheckConstraint(
            "kind IN ('episodic', 'semantic', 'procedural')", name="agent_memories_kind"
        ),
        sa.CheckConstraint("importance >= 0 AND importance <= 1", name="agent_memories_importance"),
        sa.CheckConstraint("access_count >= 0", name="agent_memories_access_count"),
    )
    op.create_index(
        "agent_memories_agent_accessed", "agent_memories", ["agent", "last_accessed_at"]
    )
    op.create_index(
        "agent_memories_embedding_hnsw",
        "agent_memories",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_table("agent_memories")
