"""The help-centre articles in PostgreSQL: bulk load, HNSW index and nearest-article search.

All SQL of the knowledge agent lives here, as keyword-only functions taking the
connection. ``KnowledgeBase`` ties them to an engine and an embedder for the handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, text

from waypost.embeddings import DEFAULT_DIMENSION, Embedder, Vectors
from waypost.errors import ConfigError

EMBEDDING_DIMENSION = DEFAULT_DIMENSION
"""Length of ``kb_articles.embedding`` (migration 0002); the embedder must match it.

It follows the default embedder's dimension; changing that needs a migration that alters
the column (and rebuilds the HNSW index), which a test checks against the live table.
"""

INDEX_NAME = "kb_articles_embedding_hnsw"


class SourceArticle(BaseModel):
    """One help-centre article as shipped in ``agents/data/kb_articles.jsonl``."""

    id: str
    title: str
    summary: str
    body: str
    url: str
    tags: list[str] = []


class Article(BaseModel):
    """An article found for a query; ``score`` is the cosine similarity (higher is closer)."""

    id: str
    title: str
    summary: str
    url: str
    score: float


def article_text(article: SourceArticle) -> str:
    """The text embedded for an article: title, summary and tags twice, then the body.

    The body supplies the words customers actually use ("boiler", "spam folder"), but
    it is long and full of incidental words, so the heading lines are repeated to stay
    the strongest signal (term frequency is sub-linear: a second occurrence adds about
    0.7 of the first). Knowledge top-1 / top-3 hits on the queries of bench/quality.py
    (1536 dimensions, mean of 8 hash seeds): heading only 0.78 / 0.89, heading and body
    0.83 / 0.94, heading twice and body 0.85 / 0.95. Cutting the body to its first 40
    or 60 words did not help.
    """
    heading = "\n".join([article.title, article.summary, " ".join(article.tags)])
    return "\n".join([heading, heading, article.body])


def embed_articles(embedder: Embedder, articles: Sequence[SourceArticle]) -> Vectors:
    """One embedding row per article, as stored in ``kb_articles.embedding``.

    The loader and bench/quality.py (which ranks articles in numpy) both call this, so
    what is measured is what is stored.
    """
    return embedder.embed([article_text(article) for article in articles])


def vector_literal(vector: Vectors) -> str:
    """pgvector's text form ``[0.1,0.2,...]``, used both in COPY and as a query parameter."""
    return "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"


def lock_articles(*, connection: Connection) -> None:
    """Serialise loaders of this schema until the transaction ends.

    Two workers starting at once would both see an empty table and both load it; the lock
    makes the second wait and then see the first one's rows.
    """
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('waypost:kb_articles:' || current_schema()))")
    )


def count_articles(*, connection: Connection) -> int:
    """How many articles the table holds."""
    return int(connection.execute(text("SELECT count(*) FROM kb_articles")).scalar_one())


def copy_articles(
    *, connection: Connection, articles: Sequence[SourceArticle], embeddings: Vectors
) -> None:
    """Bulk-insert articles with their embeddings through COPY (one round trip)."""
    raw: Any = connection.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("copy_articles needs a psycopg 3 connection (postgresql+psycopg)")
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY kb_articles (id, title, summary, body, url, tags, embedding) FROM STDIN"
        ) as copy,
    ):
        for article, embedding in zip(articles, embeddings, strict=True):
            copy.write_row(
                (
                    article.id,
                    article.title,
                    article.summary,
                    article.body,
                    article.url,
                    article.tags,
                    vector_literal(embedding),
                )
            )


def create_embedding_index(*, connection: Connection) -> None:
    """The HNSW index for cosine distance; built after the bulk load, which is much faster."""
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} "
            "ON kb_articles USING hnsw (embedding vector_cosine_ops)"
        )
    )


def nearest_articles(*, connection: Connection, embedding: Vectors, k: int) -> list[Article]:
    """The ``k`` articles closest to ``embedding`` by cosine distance, closest first."""
    rows = connection.execute(
        text(
            "SELECT id, title, summary, url, 1 - (embedding <=> CAST(:embedding AS vector)) "
            "AS score FROM kb_articles "
            "ORDER BY embedding <=> CAST(:embedding AS vector) LIMIT :k"
        ),
        {"embedding": vector_literal(embedding), "k": k},
    )
    return [
        Article(id=r.id, title=r.title, summary=r.summary, url=r.url, score=float(r.score))
        for r in rows
    ]


class KnowledgeBase:
    """Help-centre articles searchable by meaning; one per worker, shared by all tasks."""

    def __init__(self, engine: Engine, embedder: Embedder) -> None:
        if embedder.dimension != EMBEDDING_DIMENSION:
            raise ConfigError(
                f"the knowledge agent stores {EMBEDDING_DIMENSION}-dimensional embeddings "
                f"(kb_articles.embedding), but the configured embedder produces "
                f"{embedder.dimension}; configure a {EMBEDDING_DIMENSION}-dimensional embedder "
                "or add a migration that changes the column and EMBEDDING_DIMENSION"
            )
        self._engine = engine
        self._embedder = embedder

    def load_if_empty(self, articles: Sequence[SourceArticle]) -> int:
        """Load ``articles`` if the table is empty; how many were loaded (0 if it was not)."""
        with self._engine.begin() as connection:
            lock_articles(connection=connection)
            # Checked under the lock: another worker may have loaded while we waited.
            loaded = 0
            if count_articles(connection=connection) == 0 and articles:
                embeddings = embed_articles(self._embedder, articles)
                copy_articles(connection=connection, articles=articles, embeddings=embeddings)
                loaded = len(articles)
            # Also on later starts, so a table loaded by hand still gets its index.
            create_embedding_index(connection=connection)
        return loaded

    def search(self, query: str, *, k: int) -> list[Article]:
        """The ``k`` articles closest in meaning to ``query``, best first."""
        embedding = self._embedder.embed([query])[0]
        if not np.any(embedding):
            # Nothing but stop words: a zero vector has no direction, and pgvector would
            # answer NaN distances, so there is nothing meaningful to rank.
            return []
        with self._engine.connect() as connection:
            return nearest_articles(connection=connection, embedding=embedding, k=k)
