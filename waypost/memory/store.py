"""``AgentMemory``: one capability's memories, as a handler sees them (``ctx.memory``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from waypost.embeddings import Embedder
from waypost.errors import ConfigError
from waypost.memory import repository
from waypost.memory.model import (
    KINDS,
    Consolidation,
    Memory,
    MemoryKind,
    MemoryPolicy,
    Recalled,
    plan_merges,
    rank,
)
from waypost.memory.tables import EMBEDDING_DIMENSION


def _now() -> datetime:
    return datetime.now(UTC)


class AgentMemory:
    """The memories of one agent (capability), shared by all its workers and tasks.

    Every read and write is scoped to ``agent``: no call can see or change another
    agent's memories. Safe to share between threads.
    """

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        *,
        agent: str,
        policy: MemoryPolicy | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if embedder.dimension != EMBEDDING_DIMENSION:
            raise ConfigError(
                f"agent memory stores {EMBEDDING_DIMENSION}-dimensional embeddings "
                f"(agent_memories.embedding), but the configured embedder produces "
                f"{embedder.dimension}; configure a {EMBEDDING_DIMENSION}-dimensional embedder "
                "or add a migration that changes the column"
            )
        if not agent:
            raise ValueError("agent memory needs the agent's name (its capability)")
        self.agent = agent
        self.policy = policy or MemoryPolicy()
        self._engine = engine
        self._embedder = embedder
        self._clock = clock

    def remember(
        self,
        text: str,
        *,
        kind: MemoryKind = "episodic",
        importance: float = 0.5,
        metadata: Mapping[str, Any] | None = None,
    ) -> Memory:
        """Store a memory; ``importance`` from 0 (trivial) to 1 (vital)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not 0.0 <= importance <= 1.0:
            raise ValueError(f"importance must be between 0 and 1, got {importance}")
        embedding = self._embedder.embed([text])[0]
        if not np.any(embedding):
            raise ValueError(
                f"nothing to remember in {text[:80]!r}: it has no words the embedder uses "
                "(it is empty or only stop words and punctuation)"
            )
        with self._engine.begin() as connection:
            return repository.insert(
                connection=connection,
                agent=self.agent,
                kind=kind,
                content=text,
                importance=importance,
                metadata=dict(metadata or {}),
                embedding=embedding,
                at=self._clock(),
            )

    def recall(
        self,
        query: str,
        *,
        k: int = 5,
        kinds: MemoryKind | Iterable[MemoryKind] | None = None,
    ) -> list[Recalled]:
        """The ``k`` memories that best answer ``query``, best first; each access is counted.

        ``kinds``: one kind or several (default: all).

        Ranked by similarity x importance x recency (see ``waypost.memory.model``) among
        the ``policy.candidates`` memories most similar to the query.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if isinstance(kinds, str):
            kinds = [kinds]
        wanted = list(KINDS if kinds is None else kinds)
        unknown = [kind for kind in wanted if kind not in KINDS]
        if unknown:
            raise ValueError(f"kinds must be among {', '.join(KINDS)}, not {unknown}")
        embedding = self._embedder.embed([query])[0]
        if not np.any(embedding) or not wanted:
            # Nothing but stop words: a zero vector has no direction to compare.
            return []
        now = self._clock()
        with self._engine.begin() as connection:
            candidates = repository.nearest(
                connection=connection,
                agent=self.agent,
                embedding=embedding,
                kinds=wanted,
                limit=max(k, self.policy.candidates),
            )
            best = rank(candidates, now=now, policy=self.policy, k=k)
            touched = repository.touch(
                connection=connection,
                agent=self.agent,
                ids=[r.memory.id for r in best],
                at=now,
            )
        return [_refreshed(r, touched) for r in best if r.memory.id in touched]

    def forget(self, ids: Sequence[int]) -> list[int]:
        """Delete this agent's memories by id; the ids that were deleted."""
        if not ids:
            return []
        with self._engine.begin() as connection:
            return repository.delete(connection=connection, agent=self.agent, ids=ids)

    def count(self) -> int:
        """How many memories this agent has."""
        with self._engine.connect() as connection:
            return repository.count(connection=connection, agent=self.agent)

    def consolidate(self) -> Consolidation:
        """Merge near-duplicates, then forget unimportant, unused, old memories.

        The thresholds are the policy's: ``merge_similarity`` for near-duplicates (of
        the same kind; ``Merge`` says what is kept), and ``forget_below_importance``,
        ``forget_max_access_count`` and ``forget_after`` for forgetting, which all
        three must meet. Run it from time to time, for example in a setup function or a
        scheduled task; it takes one pass over the agent's memories.
        """
        policy = self.policy
        before = self._clock() - policy.forget_after
        with self._engine.begin() as connection:
            repository.lock_agent(connection=connection, agent=self.agent)
            pairs = repository.near_duplicate_pairs(
                connection=connection,
                agent=self.agent,
                min_similarity=policy.merge_similarity,
                neighbours=policy.merge_neighbours,
            )
            involved = sorted({i for pair in pairs for i in pair})
            merges = plan_merges(
                repository.by_ids(connection=connection, agent=self.agent, ids=involved), pairs
            )
            repository.lock_for_consolidation(
                connection=connection,
                agent=self.agent,
                ids=involved,
                below_importance=policy.forget_below_importance,
                max_access_count=policy.forget_max_access_count,
                before=before,
            )
            repository.merge(connection=connection, agent=self.agent, merges=merges)
            forgotten = repository.forget_unused(
                connection=connection,
                agent=self.agent,
                below_importance=policy.forget_below_importance,
                max_access_count=policy.forget_max_access_count,
                before=before,
            )
        return Consolidation(merged=tuple(merges), forgotten=tuple(forgotten))


def _refreshed(recalled: Recalled, touched: Mapping[int, tuple[int, datetime]]) -> Recalled:
    access_count, last_accessed_at = touched[recalled.memory.id]
    memory = replace(recalled.memory, access_count=access_count, last_accessed_at=last_accessed_at)
    return replace(recalled, memory=memory)
