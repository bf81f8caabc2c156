"""Knowledge-base embeddings are 1536-dimensional.

Databases migrated before the embedder's dimension changed have vector(256): their
articles are dropped (the knowledge agent reloads them with new embeddings on its next
start) and the column and index rebuilt. On a database created with the current 0002
this does nothing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DIMENSION = 1536


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF (SELECT atttypmod FROM pg_attribute
                WHERE attrelid = 'kb_articles'::regclass AND attname = 'embedding')
               <> {DIMENSION} THEN
                DROP INDEX IF EXISTS kb_articles_embedding_hnsw;
                TRUNCATE kb_articles;
                ALTER TABLE kb_articles ALTER COLUMN embedding TYPE vector({DIMENSION});
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    pass  # the dimension of 0002 is the same
