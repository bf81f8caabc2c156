"""The ``agent_memories`` table (SQLAlchemy Core). Migration 0011 creates it; a test checks
that the migrated schema and this metadata agree."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from waypost.embeddings import DEFAULT_DIMENSION

EMBEDDING_DIMENSION = DEFAULT_DIMENSION
"""Length of ``agent_memories.embedding``; the embedder must produce vectors this long."""

EMBEDDING_INDEX = "agent_memories_embedding_hnsw"

metadata = MetaData()

agent_memories = Table(
    "agent_memories",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("agent", Text, nullable=False, comment="the capability that owns the memory"),
    Column("kind", Text, nullable=False, comment="episodic | semantic | procedural"),
    Column("content", Text, nullable=False),
    Column("importance", Float, nullable=False, comment="0 (trivial) to 1 (vital)"),
    Column("access_count", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_accessed_at", DateTime(timezone=True), nullable=False),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("embedding", Vector(EMBEDDING_DIMENSION), nullable=False),
    CheckConstraint("kind IN ('episodic', 'semantic', 'procedural')", name="agent_memories_kind"),
    CheckConstraint("importance >= 0 AND importance <= 1", name="agent_memories_importance"),
    CheckConstraint("access_count >= 0", name="agent_memories_access_count"),
    Index("agent_memories_agent_accessed", "agent", "last_accessed_at"),
    Index(
        EMBEDDING_INDEX,
        "embedding",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
)
