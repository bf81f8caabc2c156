"""What an agent's memory holds and how it decides: pure, no database.

Ranking (``rank``): a memory's score for a query is

    score = max(similarity, 0) * importance * 0.5 ** (age / half_life)

where ``similarity`` is the cosine similarity of the query and memory embeddings and
``age`` is the time since the memory was last recalled (or stored, if never). Recalling a
memory refreshes it, so what an agent keeps using stays fresh. Only the ``candidates``
memories nearest the query are ranked (the k-NN search narrows, the score orders).

Consolidation (``plan_merges``): near-duplicates of the same kind are merged into the
newest of them, which keeps its content; see ``Merge`` for how the rest is combined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

MemoryKind = Literal["episodic", "semantic", "procedural"]
"""episodic: what happened; semantic: facts; procedural: how to do something."""

KINDS: tuple[MemoryKind, ...] = get_args(MemoryKind)


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """The tunable numbers of recall and consolidation (defaults suit most agents)."""

    half_life: timedelta = timedelta(days=7)
    """A memory not recalled for this long counts half as much; two half-lives, a quarter."""
    candidates: int = 100
    """How many nearest memories (by similarity alone) a recall ranks; at most 1000."""
    min_similarity: float = 0.0
    """A recall returns only memories more similar to the query than this."""
    merge_similarity: float = 0.95
    """Memories of one kind more similar than this are near-duplicates and get merged."""
    merge_neighbours: int = 20
    """How many nearest memories consolidation checks per memory for near-duplicates."""
    forget_below_importance: float = 0.2
    """Consolidation forgets memories less important than this ..."""
    forget_max_access_count: int = 0
    """... recalled at most this many times ..."""
    forget_after: timedelta = timedelta(days=30)
    """... and neither recalled nor stored within this long."""

    def __post_init__(self) -> None:
        if self.half_life <= timedelta(0) or self.forget_after < timedelta(0):
            raise ValueError("half_life must be positive and forget_after not negative")
        if not 1 <= self.candidates <= 1000:
            raise ValueError(f"candidates must be between 1 and 1000, not {self.candidates}")
        if not 1 <= self.merge_neighbours <= 1000:
            raise ValueError(
                f"merge_neighbours must be between 1 and 1000, not {self.merge_neighbours}"
            )
        if not -1.0 <= self.min_similarity < 1.0 or not 0.0 < self.merge_similarity < 1.0:
            raise ValueError("min_similarity must be in [-1, 1) and merge_similarity in (0, 1)")
        if not 0.0 <= self.forget_below_importance <= 1.0 or self.forget_max_access_count < 0:
            raise ValueError(
                "forget_below_importance must be in [0, 1] and forget_max_access_count >= 0"
            )


@dataclass(frozen=True, slots=True)
class Memory:
    """One stored memory of one agent."""

    id: int
    kind: MemoryKind
    content: str
    importance: float
    access_count: int
    created_at: datetime
    last_accessed_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recalled:
    """A memory found by ``recall``, with the numbers that ranked it.

    ``memory`` shows the access count and time after this recall; ``recency`` was
    computed from the last access before it.
    """

    memory: Memory
    similarity: float
    recency: float
    score: float


@dataclass(frozen=True, slots=True)
class Merge:
    """Near-duplicates folded into one: the newest is kept, the others are deleted.

    The kept memory keeps its content, kind and creation time; its importance becomes
    the highest of the group, its access count the sum, its last access the latest, and
    its metadata the union (on a key clash the newer memory's value wins).
    """

    keep: int
    absorb: tuple[int, ...]
    importance: float
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Consolidation:
    """What ``consolidate`` did: the merges, then the ids of the memories it forgot."""

    merged: tuple[Merge, ...] = ()
    forgotten: tuple[int, ...] = ()

    @property
    def removed(self) -> int:
        """How many memories are gone, merged away or forgotten."""
        return sum(len(m.absorb) for m in self.merged) + len(self.forgotten)


def recency(*, last_accessed_at: datetime, now: datetime, half_life: timedelta) -> float:
    """``0.5 ** (age / half_life)``: 1.0 for a memory touched now, never above 1."""
    age = max((now - last_accessed_at) / half_life, 0.0)
    return float(0.5**age)


def score(*, similarity: float, importance: float, recency: float) -> float:
    """similarity x importance x recency, a negative similarity counting as none."""
    return max(similarity, 0.0) * importance * recency


def rank(
    candidates: Iterable[tuple[Memory, float]],
    *,
    now: datetime,
    policy: MemoryPolicy,
    k: int,
) -> list[Recalled]:
    """The ``k`` best of (memory, similarity) pairs, highest score first.

    Ties go to the more similar memory, then to the newer one.
    """
    ranked = []
    for memory, similarity in candidates:
        if not similarity > policy.min_similarity:  # also drops NaN
            continue
        fresh = recency(
            last_accessed_at=memory.last_accessed_at, now=now, half_life=policy.half_life
        )
        ranked.append(
            Recalled(
                memory=memory,
                similarity=similarity,
                recency=fresh,
                score=score(similarity=similarity, importance=memory.importance, recency=fresh),
            )
        )
    ranked.sort(key=lambda r: (r.score, r.similarity, r.memory.id), reverse=True)
    return ranked[:k]


def plan_merges(memories: Sequence[Memory], pairs: Iterable[tuple[int, int]]) -> list[Merge]:
    """Group near-duplicate ``pairs`` (ids of ``memories``) into merges.

    Greedy and deterministic: from the newest memory down, each memory not yet grouped
    keeps every ungrouped near-duplicate of its own. Similarity is not transitive (A
    like B and B like C does not make A like C), so chains are not merged through.
    """
    by_id = {m.id: m for m in memories}
    neighbours: dict[int, set[int]] = {}
    for a, b in pairs:
        if a != b and a in by_id and b in by_id and by_id[a].kind == by_id[b].kind:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
    grouped: set[int] = set()
    merges = []
    for keeper in sorted(by_id.values(), key=lambda m: (m.created_at, m.id), reverse=True):
        if keeper.id in grouped or keeper.id not in neighbours:
            continue
        absorbed = sorted(
            (by_id[i] for i in neighbours[keeper.id] if i not in grouped),
            key=lambda m: (m.created_at, m.id),
        )
        if not absorbed:
            continue
        grouped.add(keeper.id)
        grouped.update(m.id for m in absorbed)
        metadata: dict[str, Any] = {}
        for memory in [*absorbed, keeper]:  # oldest first: newer values win
            metadata.update(memory.metadata)
        merges.append(
            Merge(
                keep=keeper.id,
                absorb=tuple(m.id for m in absorbed),
                importance=max(m.importance for m in [keeper, *absorbed]),
                metadata=metadata,
            )
        )
    return merges
