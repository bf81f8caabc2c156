"""Knowledge base: help-centre articles with their embeddings (pgvector).

The HNSW index is not created here: the knowledge agent builds it after its first bulk
load, which is much faster than maintaining the index row by row.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration describes the schema as it was at this revision.
# agents.knowledge_base.EMBEDDING_DIMENSION must equal it (a test checks the live column).
_DIMENSION = 1536


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("tags", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("embedding", Vector(_DIMENSION), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kb_articles")
