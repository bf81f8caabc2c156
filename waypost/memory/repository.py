"""All SQL of agent memory, as keyword-only functions taking the connection.

Every statement is scoped by ``agent``: a memory is only ever read, changed or deleted
by the capability that stored it.

Statements that change existing rows first lock them in ascending id order (``SELECT
... ORDER BY id FOR UPDATE``), so concurrent recalls and a consolidation of the same
agent wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from waypost.embeddings import Vectors
from waypost.memory.model import Memory, Merge

_COLUMNS = "id, kind, content, importance, access_count, created_at, last_accessed_at, metadata"
_LOCK = (
    "SELECT id FROM agent_memories WHERE agent = :agent AND id = ANY(:ids) ORDER BY id FOR UPDATE"
)
_FORGETTABLE = "importance < :below AND access_count <= :max_access AND last_accessed_at < :before"

NEAREST = text(
    f"SELECT {_COLUMNS}, 1 - (embedding <=> CAST(:embedding AS vector)) AS similarity "
    "FROM agent_memories WHERE agent = :agent AND kind = ANY(:kinds) "
    "ORDER BY embedding <=> CAST(:embedding AS vector) LIMIT :limit"
)
"""The k-NN query of ``recall``: the HNSW index serves its ORDER BY ... LIMIT."""

# The same ordering written so that no index can serve it: an exact scan of the agent's
# memories (found through the agent_memories_agent_accessed index).
_NEAREST_EXACT = text(
    f"SELECT {_COLUMNS}, 1 - (embedding <=> CAST(:embedding AS vector)) AS similarity "
    "FROM agent_memories WHERE agent = :agent AND kind = ANY(:kinds) "
    "ORDER BY (embedding <=> CAST(:embedding AS vector)) + 0 LIMIT :limit"
)


def vector_literal(vector: Vectors) -> str:
    """pgvector's text form ``[0.1,0.2,...]``, used both in COPY and as a query parameter."""
    return "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"


def lock_agent(*, connection: Connection, agent: str) -> None:
    """Serialise consolidations of one agent's memories until the transaction ends."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('waypost:memory:' || current_schema() || :a))"),
        {"a": agent},
    )


def insert(
    *,
    connection: Connection,
    agent: str,
    kind: str,
    content: str,
    importance: float,
    metadata: dict[str, Any],
    embedding: Vectors,
    at: datetime,
) -> Memory:
    """Store one memory, created and last accessed ``at``."""
    row = connection.execute(
        text(
            "INSERT INTO agent_memories (agent, kind, content, importance, created_at, "
            "last_accessed_at, metadata, embedding) VALUES (:agent, :kind, :content, "
            ":importance, :at, :at, :metadata, CAST(:embedding AS vector)) "
            f"RETURNING {_COLUMNS}"
        ).bindparams(bindparam("metadata", type_=JSONB)),
        {
            "agent": agent,
            "kind": kind,
            "content": content,
            "importance": importance,
            "at": at,
            "metadata": metadata,
            "embedding": vector_literal(embedding),
        },
    ).one()
    return _memory(row)


def nearest(
    *,
    connection: Connection,
    agent: str,
    embedding: Vectors,
    kinds: Sequence[str],
    limit: int,
) -> list[tuple[Memory, float]]:
    """Up to ``limit`` of the agent's memories nearest ``embedding``, with similarities.

    pgvector 0.6 filters an HNSW scan's results after the scan, which yields at most
    ``hnsw.ef_search`` rows, so when other agents' memories crowd the neighbourhood
    fewer than ``limit`` can come back although the agent has more. Then the same
    query runs again exactly, without the index.
    """
    connection.execute(
        text("SELECT set_config('hnsw.ef_search', :value, true)"),
        {"value": str(max(40, min(limit, 1000)))},
    )
    parameters = {
        "agent": agent,
        "embedding": vector_literal(embedding),
        "kinds": list(kinds),
        "limit": limit,
    }
    rows = connection.execute(NEAREST, parameters).all()
    if len(rows) < limit:
        rows = connection.execute(_NEAREST_EXACT, parameters).all()
    return [(_memory(row), float(row.similarity)) for row in rows]


def touch(
    *, connection: Connection, agent: str, ids: Sequence[int], at: datetime
) -> dict[int, tuple[int, datetime]]:
    """Count one access of each memory at ``at``; their new (access count, last access)."""
    rows = connection.execute(
        text(
            f"WITH locked AS ({_LOCK}) UPDATE agent_memories SET "
            "access_count = access_count + 1, "
            "last_accessed_at = greatest(last_accessed_at, :at) "
            "WHERE id IN (SELECT id FROM locked) "
            "RETURNING id, access_count, last_accessed_at"
        ),
        {"agent": agent, "ids": list(ids), "at": at},
    )
    return {row.id: (row.access_count, row.last_accessed_at) for row in rows}


def delete(*, connection: Connection, agent: str, ids: Sequence[int]) -> list[int]:
    """Delete memories of the agent by id; the ids that existed."""
    rows = connection.execute(
        text(
            f"WITH locked AS ({_LOCK}) DELETE FROM agent_memories "
            "WHERE id IN (SELECT id FROM locked) RETURNING id"
        ),
        {"agent": agent, "ids": list(ids)},
    )
    return sorted(rows.scalars())


def count(*, connection: Connection, agent: str) -> int:
    """How many memories the agent has."""
    return int(
        connection.execute(
            text("SELECT count(*) FROM agent_memories WHERE agent = :agent"), {"agent": agent}
        ).scalar_one()
    )


def near_duplicate_pairs(
    *, connection: Connection, agent: str, min_similarity: float, neighbours: int
) -> list[tuple[int, int]]:
    """Pairs of the agent's memories of one kind more similar than ``min_similarity``.

    Each memory is compared with its ``neighbours`` nearest (through the HNSW index
    when the planner finds it cheaper), so this is approximate on large tables: a
    near-duplicate can be missed when more than that many memories are closer.
    """
    connection.execute(
        text("SELECT set_config('hnsw.ef_search', :value, true)"),
        {"value": str(max(40, min(neighbours * 2, 1000)))},
    )
    rows = connection.execute(
        text(
            "SELECT a.id AS a, near.id AS b FROM agent_memories AS a "
            "CROSS JOIN LATERAL ("
            "  SELECT b.id, b.embedding <=> a.embedding AS distance FROM agent_memories AS b "
            "  WHERE b.agent = a.agent AND b.kind = a.kind AND b.id <> a.id "
            "  ORDER BY b.embedding <=> a.embedding LIMIT :neighbours"
            ") AS near "
            "WHERE a.agent = :agent AND near.distance < :max_distance"
        ),
        {"agent": agent, "neighbours": neighbours, "max_distance": 1.0 - min_similarity},
    )
    return [(row.a, row.b) for row in rows]


def by_ids(*, connection: Connection, agent: str, ids: Sequence[int]) -> list[Memory]:
    """The agent's memories with these ids (others' are never returned)."""
    rows = connection.execute(
        text(f"SELECT {_COLUMNS} FROM agent_memories WHERE agent = :agent AND id = ANY(:ids)"),
        {"agent": agent, "ids": list(ids)},
    )
    return [_memory(row) for row in rows]


def lock_for_consolidation(
    *,
    connection: Connection,
    agent: str,
    ids: Sequence[int],
    below_importance: float,
    max_access_count: int,
    before: datetime,
) -> None:
    """Lock, in id order, the memories about to be merged and those that may be forgotten.

    Taken at once before any change, so no row lock is acquired while others are held
    in another order.
    """
    connection.execute(
        text(
            "SELECT id FROM agent_memories WHERE agent = :agent AND (id = ANY(:ids) OR ("
            f"{_FORGETTABLE})) ORDER BY id FOR UPDATE"
        ),
        {
            "agent": agent,
            "ids": list(ids),
            "below": below_importance,
            "max_access": max_access_count,
            "before": before,
        },
    )


def merge(*, connection: Connection, agent: str, merges: Sequence[Merge]) -> None:
    """Apply merges: delete the absorbed memories and fold their counts into the kept one.

    The absorbed rows' access counts and times are read as they are deleted, so a
    recall that counted an access meanwhile is not lost.
    """
    statement = text(
        "WITH absorbed AS ("
        "  DELETE FROM agent_memories WHERE agent = :agent AND id = ANY(:absorb) "
        "  RETURNING access_count, last_accessed_at"
        ") UPDATE agent_memories SET "
        "importance = :importance, metadata = :metadata, "
        "access_count = access_count + (SELECT coalesce(sum(access_count), 0) FROM absorbed), "
        "last_accessed_at = greatest(last_accessed_at, "
        "  (SELECT max(last_accessed_at) FROM absorbed)) "
        "WHERE agent = :agent AND id = :keep"
    ).bindparams(bindparam("metadata", type_=JSONB))
    for planned in merges:
        connection.execute(
            statement,
            {
                "agent": agent,
                "keep": planned.keep,
                "absorb": list(planned.absorb),
                "importance": planned.importance,
                "metadata": dict(planned.metadata),
            },
        )


def forget_unused(
    *,
    connection: Connection,
    agent: str,
    below_importance: float,
    max_access_count: int,
    before: datetime,
) -> list[int]:
    """Delete the agent's unimportant memories, rarely recalled and untouched since
    ``before``; their ids."""
    rows = connection.execute(
        text(f"DELETE FROM agent_memories WHERE agent = :agent AND {_FORGETTABLE} RETURNING id"),
        {
            "agent": agent,
            "below": below_importance,
            "max_access": max_access_count,
            "before": before,
        },
    )
    return sorted(rows.scalars())


def _memory(row: Row[Any]) -> Memory:
    return Memory(
        id=row.id,
        kind=row.kind,
        content=row.content,
        importance=float(row.importance),
        access_count=row.access_count,
        created_at=row.created_at,
        last_accessed_at=row.last_accessed_at,
        metadata=row.metadata,
    )
